//! What the engine tells the world as it happens ([`EngineEvent`]: fills, halts, strategy
//! trouble, feed state, the session's close), on a broadcast that never blocks the loop: a
//! subscriber that falls behind loses the oldest events and is told how many.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for a subscriber that has not read them yet; beyond that it lags.
pub const EVENT_CAPACITY: usize = 1024;

/// One fill as the journal and notifications need it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FillRecord {
    /// When the gateway executed it.
    pub time: DateTime<Utc>,
    /// The strategy whose order filled; empty for a fill of an order placed outside moontick.
    pub strategy: String,
    pub account_id: i32,
    /// The gateway's contract id (`CON.F.US.MNQ.Z25`).
    pub contract: String,
    /// What the strategy calls it (`MNQ`), or the contract id.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: &'static str,
    pub size: i64,
    pub price: f64,
    /// The contract's tick, so prices print on its grid.
    pub tick_size: f64,
    /// Realised P&L the gateway reports for it (gross of fees); `None` for an opening fill.
    pub pnl: Option<f64>,
    /// Exchange and clearing fees.
    pub fees: f64,
    /// Broker commissions, when the gateway reports them apart from the fees.
    pub commissions: f64,
    /// The gateway's order id and fill id.
    pub order_id: i64,
    pub fill_id: i64,
    /// The strategy's own tag on the order (set by Lua: untrusted text); a bracket leg's fill
    /// adds the leg (`stop_loss`, `take_profit`).
    pub tag: Option<String>,
}

/// One strategy's share of a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StrategyTally {
    pub strategy: String,
    pub fills: u32,
    /// Realised P&L net of fees.
    pub net_pnl: f64,
}

/// The day's numbers when the CME trading day ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionSummary {
    /// The CME trading day that ended.
    pub day: NaiveDate,
    pub fills: u32,
    /// Realised P&L net of fees, every fill of the account counted.
    pub net_pnl: f64,
    pub fees: f64,
    pub balance: f64,
    pub strategies: Vec<StrategyTally>,
}

/// Something that happened in the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    Fill(FillRecord),
    /// The kill switch fired (the operator, the daily loss limit).
    Halted {
        reason: String,
    },
    /// An operator lifted the halt.
    Resumed {
        was: Option<String>,
    },
    /// A strategy's run state changed (`running`, `paused`, `stuck`, `crashed`, ...); `detail`
    /// says why (the handler it is stuck in, the panic, the last error).
    Strategy {
        name: String,
        state: &'static str,
        detail: Option<String>,
    },
    /// A save of a strategy file did not load; the last good version keeps running.
    ReloadFailed {
        strategy: String,
        /// `file:line: message`.
        error: String,
    },
    /// A hub connection is down (`market` or `user`).
    FeedDown {
        hub: &'static str,
        state: String,
    },
    FeedUp {
        hub: &'static str,
    },
    /// The CME trading day rolled over (17:00 Chicago).
    SessionClosed(SessionSummary),
}

impl EngineEvent {
    /// The short name the event has in `NOTIFY_EVENTS` terms and in JSON (`fill`, `halted`...).
    pub fn kind(&self) -> &'static str {
        match self {
            EngineEvent::Fill(_) => "fill",
            EngineEvent::Halted { .. } => "halted",
            EngineEvent::Resumed { .. } => "resumed",
            EngineEvent::Strategy { .. } => "strategy",
            EngineEvent::ReloadFailed { .. } => "reload_failed",
            EngineEvent::FeedDown { .. } => "feed_down",
            EngineEvent::FeedUp { .. } => "feed_up",
            EngineEvent::SessionClosed(_) => "session_closed",
        }
    }
}

/// The sending side of the engine's events; cheap to clone. Sending never waits: with no
/// subscriber the event is dropped, and a slow subscriber lags instead of holding the loop.
#[derive(Debug, Clone)]
pub struct EventBus(broadcast::Sender<EngineEvent>);

impl Default for EventBus {
    fn default() -> Self {
        Self(broadcast::channel(EVENT_CAPACITY).0)
    }
}

impl EventBus {
    /// A subscription to every event sent from now on. `recv` answers
    /// `Err(RecvError::Lagged(n))` when `n` events were lost because it fell behind.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.0.subscribe()
    }

    pub fn send(&self, event: EngineEvent) {
        let _ = self.0.send(event);
    }
}

/// The running tally of a CME trading day, turned into a [`SessionSummary`] when it ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionTally {
    pub day: NaiveDate,
    pub fills: u32,
    pub net_pnl: f64,
    pub fees: f64,
    pub strategies: Vec<StrategyTally>,
}

impl SessionTally {
    pub fn new(day: NaiveDate) -> Self {
        Self {
            day,
            fills: 0,
            net_pnl: 0.0,
            fees: 0.0,
            strategies: Vec::new(),
        }
    }

    /// Counts one fill (`strategy` empty for a fill of an order placed outside moontick).
    pub fn add(&mut self, strategy: &str, net: f64, fees: f64) {
        self.fills += 1;
        self.net_pnl += net;
        self.fees += fees;
        if strategy.is_empty() {
            return;
        }
        match self.strategies.iter_mut().find(|s| s.strategy == strategy) {
            Some(s) => {
                s.fills += 1;
                s.net_pnl += net;
            }
            None => self.strategies.push(StrategyTally {
                strategy: strategy.to_string(),
                fills: 1,
                net_pnl: net,
            }),
        }
    }

    /// The summary of the day that ended when `now` falls in a later CME trading day (the
    /// tally then starts over); `None` within the same day.
    pub fn roll(&mut self, now: DateTime<Utc>, balance: f64) -> Option<SessionSummary> {
        let today = crate::cme::trading_day(now);
        (today != self.day).then(|| self.close(today, balance))
    }

    /// The summary of the day that ended; the tally starts over for `next`.
    pub fn close(&mut self, next: NaiveDate, balance: f64) -> SessionSummary {
        let ended = std::mem::replace(self, SessionTally::new(next));
        SessionSummary {
            day: ended.day,
            fills: ended.fills,
            net_pnl: ended.net_pnl,
            fees: ended.fees,
            balance,
            strategies: ended.strategies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lagging_subscriber_is_told_how_many_it_lost_and_the_sender_never_waits() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        for i in 0..EVENT_CAPACITY + 10 {
            bus.send(EngineEvent::Halted {
                reason: i.to_string(),
            });
        }
        assert_eq!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        );
        assert_eq!(
            rx.try_recv().unwrap(),
            EngineEvent::Halted {
                reason: "10".into()
            }
        );
    }

    #[test]
    fn the_session_tally_sums_per_strategy_and_starts_over() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let mut t = SessionTally::new(day);
        t.add("breakout", -10.0, 1.0);
        t.add("breakout", 25.0, 1.0);
        t.add("", 5.0, 0.5);
        let s = t.close(day.succ_opt().unwrap(), 50_020.0);
        assert_eq!((s.day, s.fills, s.net_pnl, s.fees), (day, 3, 20.0, 2.5));
        assert_eq!(
            s.strategies,
            vec![StrategyTally {
                strategy: "breakout".into(),
                fills: 2,
                net_pnl: 15.0
            }]
        );
        assert_eq!(t.fills, 0);
        assert_eq!(t.day, day.succ_opt().unwrap());
    }

    #[test]
    fn the_session_closes_at_five_pm_chicago() {
        use chrono::TimeZone;
        // 2026-11-27 is a Friday in CST (UTC-6): the day rolls at 23:00 UTC.
        let mut t = SessionTally::new(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
        t.add("breakout", 10.0, 0.5);
        let before = Utc.with_ymd_and_hms(2026, 11, 27, 22, 59, 59).unwrap();
        assert_eq!(t.roll(before, 50_010.0), None);
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 23, 0, 0).unwrap();
        let s = t.roll(at, 50_010.0).expect("the day closed");
        assert_eq!((s.fills, s.net_pnl, s.balance), (1, 10.0, 50_010.0));
        // Friday evening is already Monday's trading day (the weekend belongs to the week ahead).
        assert_eq!(t.day, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
        assert_eq!(t.roll(at, 50_010.0), None, "once");
    }
}
