//! The trading day's record for the dashboard: the last fills, each strategy's realised P&L and
//! the equity curve. Pure state, bounded in size, reset when a new trading day starts (17:00
//! Chicago, as the risk guard's tally is).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::status::{EquityPoint, FillView, Snapshot};
use crate::gateway::wire::Trade;
use crate::market::Side;

/// Fills kept for the dashboard.
pub const RECENT_FILLS: usize = 50;
/// Points the equity curve keeps; beyond it every other point is dropped (half the resolution,
/// the whole day still covered).
const EQUITY_POINTS: usize = 1500;
/// How often the curve takes a point when nothing fills.
const SAMPLE_EVERY_MS: i64 = 60_000;

/// The day's record. Owned by the engine loop.
#[derive(Debug)]
pub struct Day {
    start: DateTime<Utc>,
    /// When the day ends: [`Day::roll`] compares against the span instead of working out the
    /// trading day (time zone arithmetic) on every tick.
    end: DateTime<Utc>,
    realized: HashMap<String, f64>,
    fills: VecDeque<FillView>,
    /// What was last published (rebuilt only when a fill changes the list).
    fills_view: Snapshot<Vec<FillView>>,
    equity: Snapshot<Vec<EquityPoint>>,
}

/// A fill's net P&L: the gateway's realised P&L less fees and commissions.
pub fn net_pnl(t: &Trade) -> f64 {
    t.profit_and_loss.unwrap_or(0.0) - t.fees - t.commissions.unwrap_or(0.0)
}

impl Day {
    pub fn new(now: DateTime<Utc>) -> Self {
        let (start, end) = crate::cme::trading_day_span(now);
        Day {
            start,
            end,
            realized: HashMap::new(),
            fills: VecDeque::new(),
            fills_view: Snapshot::default(),
            equity: Snapshot::default(),
        }
    }

    /// Today's fills known at start-up, listed and drawn as the realised curve they made;
    /// `strategy_of` names the strategy whose order a fill filled (from the order's customTag,
    /// an earlier run's included), so each strategy's realised P&L survives a restart.
    pub fn seed(
        &mut self,
        trades: &[Trade],
        symbol_of: impl Fn(&str) -> String,
        strategy_of: impl Fn(i64) -> Option<String>,
    ) {
        let mut sorted: Vec<&Trade> = trades.iter().filter(|t| !t.voided).collect();
        sorted.sort_by_key(|t| t.creation_timestamp.0);
        let mut total = 0.0;
        let mut curve = Vec::new();
        for t in sorted {
            total += net_pnl(t);
            curve.push(EquityPoint {
                time_ms: t.creation_timestamp.0.timestamp_millis(),
                pnl: crate::money::cents(total),
            });
            let strategy = strategy_of(t.order_id);
            if let Some(s) = &strategy {
                *self.realized.entry(s.clone()).or_default() += net_pnl(t);
            }
            self.push_fill(t, strategy.as_deref(), symbol_of(&t.contract_id));
        }
        self.equity = Snapshot(Arc::new(curve));
        self.fills_view = Snapshot(Arc::new(self.fills.iter().cloned().collect()));
    }

    /// Starts a new day when `now` is past the current one's end; returns whether it did.
    pub fn roll(&mut self, now: DateTime<Utc>) -> bool {
        if (self.start..self.end).contains(&now) {
            return false;
        }
        *self = Day::new(now);
        true
    }

    /// A fill seen for the first time; `strategy` once it is attributed.
    pub fn fill(&mut self, t: &Trade, strategy: Option<&str>, symbol: String) {
        if let Some(s) = strategy {
            *self.realized.entry(s.to_owned()).or_default() += net_pnl(t);
        }
        self.push_fill(t, strategy, symbol);
        self.fills_view = Snapshot(Arc::new(self.fills.iter().cloned().collect()));
    }

    /// A fill listed before its order was known to be ours is now attributed.
    pub fn attributed_late(&mut self, t: &Trade, strategy: &str) {
        *self.realized.entry(strategy.to_owned()).or_default() += net_pnl(t);
        if let Some(f) = self.fills.iter_mut().find(|f| f.trade_id == t.id) {
            f.strategy = Some(strategy.to_owned());
            self.fills_view = Snapshot(Arc::new(self.fills.iter().cloned().collect()));
        }
    }

    fn push_fill(&mut self, t: &Trade, strategy: Option<&str>, symbol: String) {
        if self.fills.len() >= RECENT_FILLS {
            self.fills.pop_front();
        }
        self.fills.push_back(FillView {
            time_ms: t.creation_timestamp.0.timestamp_millis(),
            strategy: strategy.map(str::to_owned),
            symbol,
            side: Side::from(t.side).as_str(),
            size: t.size,
            price: t.price,
            pnl: t.profit_and_loss,
            fees: t.fees + t.commissions.unwrap_or(0.0),
            order_id: t.order_id,
            trade_id: t.id,
        });
    }

    /// Takes a point of the curve when one is due (a minute after the last), or at once when
    /// `force` (a fill changed the realised P&L).
    pub fn sample(&mut self, now: DateTime<Utc>, pnl: f64, force: bool) {
        let time_ms = now.timestamp_millis();
        let due = self
            .equity
            .last()
            .is_none_or(|p| time_ms - p.time_ms >= SAMPLE_EVERY_MS);
        if !(due || force) {
            return;
        }
        let mut curve: Vec<EquityPoint> = self.equity.0.as_ref().clone();
        if curve.len() >= EQUITY_POINTS {
            let last = curve.pop();
            curve = curve.into_iter().step_by(2).collect();
            curve.extend(last);
        }
        curve.push(EquityPoint {
            time_ms,
            pnl: crate::money::cents(pnl),
        });
        self.equity = Snapshot(Arc::new(curve));
    }

    /// A strategy's realised P&L today (after fees).
    pub fn realized(&self, strategy: &str) -> f64 {
        self.realized.get(strategy).copied().unwrap_or(0.0)
    }

    pub fn strategies(&self) -> impl Iterator<Item = &str> {
        self.realized.keys().map(String::as_str)
    }

    pub fn fills(&self) -> Snapshot<Vec<FillView>> {
        self.fills_view.clone()
    }

    pub fn equity(&self) -> Snapshot<Vec<EquityPoint>> {
        self.equity.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(id: i64, pnl: Option<f64>, at: &str) -> Trade {
        serde_json::from_value(serde_json::json!({
            "id": id, "accountId": 7, "contractId": "CON.F.US.MNQ.Z25",
            "creationTimestamp": at, "price": 21000.25,
            "profitAndLoss": pnl, "fees": 0.5, "side": 0,
            "size": 1, "voided": false, "orderId": 100 + id
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2025-12-01T15:30:00Z".parse().unwrap()
    }

    #[test]
    fn fills_are_kept_bounded_and_realised_pnl_is_per_strategy() {
        let mut d = Day::new(now());
        for i in 0..60 {
            d.fill(
                &trade(i, Some(10.0), "2025-12-01T15:30:03Z"),
                Some(if i % 2 == 0 { "a" } else { "b" }),
                "MNQ".into(),
            );
        }
        assert_eq!(d.fills().len(), RECENT_FILLS);
        assert_eq!(d.fills()[0].trade_id, 10, "the oldest go first");
        assert_eq!(d.realized("a"), 30.0 * 9.5);
        assert_eq!(d.realized("b"), 30.0 * 9.5);
        d.fill(&trade(99, None, "2025-12-01T15:31:00Z"), None, "MNQ".into());
        let before = d.fills();
        d.attributed_late(&trade(99, None, "2025-12-01T15:31:00Z"), "a");
        assert_eq!(d.fills().last().unwrap().strategy.as_deref(), Some("a"));
        assert!(before != d.fills(), "a changed list is a new snapshot");
        assert_eq!(d.realized("a"), 30.0 * 9.5 - 0.5);
    }

    #[test]
    fn the_curve_samples_once_a_minute_or_on_a_fill_and_stays_bounded() {
        let mut d = Day::new(now());
        d.sample(now(), 1.0, false);
        let same = d.equity();
        d.sample(now() + chrono::Duration::seconds(30), 2.0, false);
        assert!(same == d.equity(), "not due: nothing changes");
        d.sample(now() + chrono::Duration::seconds(30), 2.0, true);
        d.sample(now() + chrono::Duration::seconds(91), 3.0, false);
        assert_eq!(d.equity().len(), 3);
        for i in 0..5000 {
            d.sample(
                now() + chrono::Duration::seconds(i),
                f64::from(i as i32),
                true,
            );
        }
        assert!(d.equity().len() <= EQUITY_POINTS);
        assert_eq!(d.equity().last().unwrap().pnl, 4999.0);
    }

    #[test]
    fn seeded_trades_draw_the_realised_curve_and_a_new_day_starts_clean() {
        let mut d = Day::new(now());
        d.seed(
            &[
                trade(2, Some(-20.0), "2025-12-01T15:00:00Z"),
                trade(1, Some(10.0), "2025-12-01T14:00:00Z"),
            ],
            |_| "MNQ".into(),
            |order| (order == 102).then(|| "a".to_string()),
        );
        let curve: Vec<f64> = d.equity().iter().map(|p| p.pnl).collect();
        assert_eq!(curve, vec![9.5, -11.0]);
        assert_eq!(d.fills().len(), 2);
        assert_eq!(d.fills()[1].strategy.as_deref(), Some("a"));
        assert_eq!(d.fills()[0].strategy, None);
        assert_eq!(
            d.realized("a"),
            -20.5,
            "a strategy's P&L survives a restart"
        );
        assert!(!d.roll(now() + chrono::Duration::hours(1)));
        assert!(d.roll(now() + chrono::Duration::hours(24)));
        assert!(d.fills().is_empty() && d.equity().is_empty());
    }
}
