//! Bars in the engine: the series strategies declare (one per contract and timeframe, shared),
//! backfilled once through [`crate::feed::bars`], then kept current from the live trade stream
//! by an [`Aggregator`] each, closed bars written to the [`BarStore`] and sent to `on_bar`.
//!
//! Where backfill meets live data: a new series waits for its first trade and takes the next
//! whole second of that trade's (gateway) time as the cut; trades before the cut are dropped
//! (the history holds them), later ones are buffered. Once the engine's clock is a second past
//! the cut, history up to the cut is requested (its partial bar included) and folded into the
//! aggregator, then the buffer is replayed: every trade counted once. A quiet market (no trade
//! for 2 s) cuts at the current second instead.
//!
//! Prints sent while the market hub is down never reach the live stream, so when it drops every
//! series goes back to waiting (the open bar is dropped, not closed half-built) and waits for
//! the hub: a new cut once it is back, history up to it, and the bars after the last one already
//! stored are rebuilt from that history and sent to `on_bar` (the bar that was open at the drop
//! included), then live trades continue. A backfill asked before the drop is ignored when it
//! comes back (each wait has its own epoch).
//!
//! Trades subscribe automatically for every contract with bars. When a contract has had no
//! trade for 5 s while its quotes show volume growing, quotes stand in: a quote whose session
//! volume rose counts as a trade of that many contracts at its last price.
//!
//! Bars close on the first trade past their end, or, in a quiet market, on the engine tick once
//! its clock is [`CLOSE_GRACE_MS`] past the end (late prints are folded as the aggregator says).

use std::sync::Arc;

use super::bar_state::{ContractBars, Phase, SeriesState, waiting};
use super::core::Core;
use super::input::Input;
use crate::bars::{Aggregator, Bar, BarEvent, Series, Timeframe};
use crate::feed::bars::beyond_backfill;
use crate::market::{Quote, Trade};
use crate::script::Event;

/// How long after a bar's end the clock closes it when no trade did: room for prints stamped
/// just before the boundary that arrive a little late.
pub const CLOSE_GRACE_MS: i64 = 250;
/// A new series in a market with no trade waits this long before cutting at the current second.
const QUIET_CUT_MS: i64 = 2_000;
/// The backfill is requested this long after the cut, so the gateway has recorded it.
const CUT_SETTLE_MS: i64 = 1_000;
/// A failed backfill is tried again after this long.
const RETRY_MS: i64 = 5_000;
/// No trade for this long (with volume moving in quotes): quotes stand in for trades.
const QUOTE_FALLBACK_MS: i64 = 5_000;

impl Core {
    /// Brings the series in line with what the strategies declare: new series (a reload that
    /// adds a timeframe) are created and wait for their backfill; trades are subscribed for
    /// their contracts. Symbols not resolved yet are picked up on a later tick.
    pub(super) fn sync_bars(&mut self) {
        let Some(host) = self.host.clone() else {
            return;
        };
        let now = self.now_ms();
        for (symbol, tf, history) in host.bar_series() {
            let Some(info) = self.contract_for(&symbol) else {
                continue;
            };
            self.bars.store.name(&symbol, &info.id);
            let name = self
                .contracts
                .get(&info.id)
                .map_or_else(|| info.symbol.clone(), |c| c.symbol.clone());
            let store = self.bars.store.ensure(&info.id, tf, history);
            let cb = match self.bars.contracts.get_mut(&info.id) {
                Some(cb) => cb,
                None => {
                    self.ensure_trades(&info.id);
                    self.bars
                        .contracts
                        .entry(info.id.clone())
                        .or_insert(ContractBars {
                            contract: info.id.clone(),
                            symbol: name,
                            subscribed_ms: now,
                            last_trade_ms: None,
                            last_volume: None,
                            series: Vec::new(),
                        })
                }
            };
            match cb.series.iter_mut().find(|s| s.tf == tf) {
                Some(s) => s.history = s.history.max(history),
                None => {
                    tracing::info!("bars {symbol} {tf}: backfilling {history} bar(s)");
                    cb.series.push(SeriesState {
                        tf,
                        epoch: 0,
                        history,
                        store,
                        phase: waiting(now),
                    });
                }
            }
        }
        self.bars_from_own_history();
    }

    /// A backtest (no gateway, a history of its own): new series cut at the clock's time and
    /// take their history at once, so they are live before the next event.
    fn bars_from_own_history(&mut self) {
        let (None, Some(f)) = (&self.client, self.bars.history.clone()) else {
            return;
        };
        let now = self.now_ms();
        let mut due = Vec::new();
        for (contract, cb) in &mut self.bars.contracts {
            for s in &mut cb.series {
                if let Phase::Waiting {
                    cut_ms, requested, ..
                } = &mut s.phase
                    && !*requested
                {
                    *requested = true;
                    let cut = *cut_ms.get_or_insert(now);
                    due.push((contract.clone(), s.tf, s.history, cut, s.epoch));
                }
            }
        }
        for (contract, tf, history, cut, epoch) in due {
            let bars = f(&contract, tf, history, cut);
            self.on_backfilled(&contract, tf, epoch, Ok(bars));
        }
    }

    pub(super) fn bars_on_trades(&mut self, trades: &[Trade]) {
        let now = self.now_ms();
        let mut out = Vec::new();
        for t in trades {
            let Some(cb) = self.bars.contracts.get_mut(&t.contract) else {
                continue;
            };
            cb.last_trade_ms = Some(now);
            let size = t.size.round() as i64;
            feed(cb, t.price, size, t.time_ms, &mut out);
        }
        self.emit_bars(out);
    }

    /// Quotes stand in for trades on a contract whose trades are silent (see the module
    /// documentation).
    pub(super) fn bars_on_quote(&mut self, q: &Quote) {
        let now = self.now_ms();
        let Some(cb) = self.bars.contracts.get_mut(&q.contract) else {
            return;
        };
        let Some(volume) = q.volume else { return };
        let before = cb.last_volume.replace(volume);
        let silent = trades_silent(now, cb.last_trade_ms, cb.subscribed_ms);
        if let Some((price, size)) = stand_in(before, volume, q.last).filter(|_| silent) {
            let mut out = Vec::new();
            feed(cb, price, size, q.time_ms, &mut out);
            self.emit_bars(out);
        }
    }

    /// The engine tick: closes bars whose time has passed, and asks for backfills that are due.
    pub(super) fn bars_on_tick(&mut self) {
        let now = self.now_ms();
        let live = self.market_state.is_live();
        let mut out = Vec::new();
        let mut requests = Vec::new();
        for (contract, cb) in &mut self.bars.contracts {
            for s in &mut cb.series {
                match &mut s.phase {
                    Phase::Live(agg) => {
                        let mut closed = Vec::new();
                        agg.close_until(now - CLOSE_GRACE_MS, &mut closed);
                        collect(&cb.symbol, contract, s.tf, &s.store, closed, &mut out);
                    }
                    Phase::Waiting {
                        since_ms,
                        cut_ms,
                        requested,
                        retry_at_ms,
                        ..
                    } => {
                        // A silent hub is no quiet market: its prints are lost, not absent.
                        if live && cut_ms.is_none() && now - *since_ms >= QUIET_CUT_MS {
                            *cut_ms = Some(now.div_euclid(1000) * 1000);
                        }
                        if let Some(cut) = *cut_ms
                            && !*requested
                            && now >= cut + CUT_SETTLE_MS
                            && now >= *retry_at_ms
                        {
                            *requested = true;
                            let latest = s.store.latest().map(|b| b.time_ms);
                            let ask = bars_to_ask(s.history, s.tf, latest, cut);
                            if latest.is_some() && beyond_backfill(ask, s.tf) {
                                tracing::warn!(
                                    "bars {} {}: the outage spans about {ask} bars, more than a \
                                     backfill fetches: on_bar misses the older ones",
                                    cb.symbol,
                                    s.tf
                                );
                            }
                            requests.push((contract.clone(), s.tf, ask, cut, s.epoch));
                        }
                    }
                }
            }
        }
        self.emit_bars(out);
        for (contract, tf, history, cut, epoch) in requests {
            // A backtest has no gateway (and its series with a history of their own never
            // wait for one): its bars start at the cut.
            let Some(client) = self.client.clone() else {
                self.on_backfilled(&contract, tf, epoch, Ok(Vec::new()));
                continue;
            };
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let result =
                    crate::feed::bars::backfill(&client, &contract, tf, history, cut).await;
                let _ = tx
                    .send(Input::Backfilled {
                        contract,
                        timeframe: tf,
                        epoch,
                        result: result.map_err(|e| e.to_string()),
                    })
                    .await;
            });
        }
    }

    /// The market hub dropped or came back: every series waits again and rebuilds what it
    /// missed (see the module documentation).
    pub(super) fn bars_reset(&mut self) {
        let now = self.now_ms();
        for cb in self.bars.contracts.values_mut() {
            cb.last_trade_ms = None;
            cb.last_volume = None;
            cb.subscribed_ms = now;
            for s in &mut cb.series {
                s.phase = waiting(now);
                s.epoch += 1;
            }
        }
    }

    /// A backfill came back: history into the store, then the trades buffered since the cut,
    /// whose closed bars go to `on_bar`. The first history of a series is not replayed through
    /// `on_bar` (strategies read it with `bot.bars`); after a reconnect, the bars newer than the
    /// last stored one are.
    pub(super) fn on_backfilled(
        &mut self,
        contract: &Arc<str>,
        tf: Timeframe,
        epoch: u64,
        result: Result<Vec<Bar>, String>,
    ) {
        let now = self.now_ms();
        let Some(cb) = self.bars.contracts.get_mut(contract) else {
            return;
        };
        let symbol = cb.symbol.clone();
        let Some(s) = cb
            .series
            .iter_mut()
            .find(|s| s.tf == tf && s.epoch == epoch)
        else {
            return;
        };
        let history = match result {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("bars {symbol} {tf}: backfill failed ({e}); trying again");
                if let Phase::Waiting {
                    requested,
                    retry_at_ms,
                    ..
                } = &mut s.phase
                {
                    *requested = false;
                    *retry_at_ms = now + RETRY_MS;
                }
                return;
            }
        };
        let Phase::Waiting { buffer, cut_ms, .. } = std::mem::replace(&mut s.phase, waiting(0))
        else {
            return;
        };
        let mut agg = Aggregator::new(tf);
        let mut closed = Vec::new();
        let stored = s.store.latest().map(|b| b.time_ms);
        for piece in history {
            if stored.is_some_and(|t| tf.bucket(piece.time_ms).0 <= t) {
                continue;
            }
            agg.fold(piece, &mut closed);
        }
        // A last bar over by the cut is history too: no live trade can join it.
        if let Some(cut) = cut_ms {
            agg.close_until(cut, &mut closed);
        }
        if stored.is_none() {
            for b in closed.drain(..) {
                s.store.push(b);
            }
            tracing::info!("bars {symbol} {tf}: {} bar(s) of history", s.store.len());
        } else {
            tracing::info!(
                "bars {symbol} {tf}: {} bar(s) rebuilt after a reconnect",
                closed.len()
            );
        }
        for (price, size, time) in buffer {
            agg.trade(price, size, time, &mut closed);
        }
        agg.close_until(now - CLOSE_GRACE_MS, &mut closed);
        let mut out = Vec::new();
        collect(&symbol, contract, tf, &s.store, closed, &mut out);
        s.phase = Phase::Live(agg);
        self.emit_bars(out);
    }

    fn emit_bars(&self, out: Vec<BarEvent>) {
        for b in out {
            self.dispatch(Event::Bar(b));
        }
    }
}

/// How many bars a backfill asks for: the declared history, or, when the series already has
/// bars (a reconnect), every bar from its latest stored one to the cut if that is more: an
/// outage longer than `bars_history` bars must not leave a hole `on_bar` never hears of.
fn bars_to_ask(history: usize, tf: Timeframe, latest_ms: Option<i64>, cut_ms: i64) -> usize {
    let Some(latest) = latest_ms else {
        return history;
    };
    let gap = (cut_ms - latest).div_euclid(tf.fixed_ms()).max(0) as usize + 1;
    history.max(gap)
}

/// Whether a contract's trades are silent: none for [`QUOTE_FALLBACK_MS`] since the last one,
/// or since trades were subscribed when none came yet.
fn trades_silent(now_ms: i64, last_trade_ms: Option<i64>, subscribed_ms: i64) -> bool {
    now_ms - last_trade_ms.unwrap_or(subscribed_ms) > QUOTE_FALLBACK_MS
}

/// The trade a quote stands for: the rise of the session volume since the last quote, at the
/// quote's last price. None for the first quote seen, a volume that did not rise (a new
/// session resets it) or no last price.
fn stand_in(before: Option<i64>, volume: i64, last: Option<f64>) -> Option<(f64, i64)> {
    let (before, price) = (before?, last?);
    (volume > before).then_some((price, volume - before))
}

/// One trade into every series of a contract.
fn feed(cb: &mut ContractBars, price: f64, size: i64, time_ms: i64, out: &mut Vec<BarEvent>) {
    for s in &mut cb.series {
        let mut closed = Vec::new();
        s.trade(price, size, time_ms, &mut closed);
        collect(&cb.symbol, &cb.contract, s.tf, &s.store, closed, out);
    }
}

/// Closed bars into the store and out as events.
fn collect(
    symbol: &Arc<str>,
    contract: &Arc<str>,
    tf: Timeframe,
    store: &Series,
    closed: Vec<Bar>,
    out: &mut Vec<BarEvent>,
) {
    for bar in closed {
        store.push(bar);
        out.push(BarEvent {
            contract: contract.clone(),
            symbol: symbol.clone(),
            timeframe: tf,
            bar,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::BarStore;

    #[test]
    fn quotes_stand_in_for_trades_only_after_five_silent_seconds_and_only_for_volume_added() {
        assert!(!trades_silent(10_000, None, 6_000), "just subscribed");
        assert!(trades_silent(11_001, None, 6_000), "none since subscribing");
        assert!(
            !trades_silent(11_001, Some(9_000), 0),
            "a trade two seconds ago"
        );
        assert_eq!(
            stand_in(Some(100), 103, Some(21_000.25)),
            Some((21_000.25, 3))
        );
        assert_eq!(stand_in(None, 103, Some(1.0)), None, "first quote: no base");
        assert_eq!(stand_in(Some(103), 103, Some(1.0)), None, "nothing traded");
        assert_eq!(stand_in(Some(900), 2, Some(1.0)), None, "new session");
        assert_eq!(stand_in(Some(1), 2, None), None, "no price");
    }

    #[test]
    fn a_rebuild_after_an_outage_asks_for_the_whole_gap_not_just_the_declared_history() {
        let tf = Timeframe::parse("1s").unwrap();
        assert_eq!(
            bars_to_ask(5, tf, None, 60_000),
            5,
            "first backfill: the history"
        );
        assert_eq!(bars_to_ask(5, tf, Some(57_000), 60_000), 5, "short outage");
        assert_eq!(
            bars_to_ask(5, tf, Some(40_000), 60_000),
            21,
            "20 s down, 1 s bars"
        );
        let m = Timeframe::parse("1m").unwrap();
        assert_eq!(bars_to_ask(500, m, Some(0), 3_600_000), 500);
        // Six hours of 1 s bars takes two requests, which a backfill pages through; sixty
        // hours is more than it fetches: said in the log.
        assert!(!beyond_backfill(
            bars_to_ask(5, tf, Some(0), 6 * 3_600_000),
            tf
        ));
        assert!(beyond_backfill(
            bars_to_ask(5, tf, Some(0), 60 * 3_600_000),
            tf
        ));
        assert!(!beyond_backfill(500, m));
        assert!(!beyond_backfill(900, Timeframe::parse("1d").unwrap()));
        assert!(beyond_backfill(9_000, Timeframe::parse("1d").unwrap()));
    }

    #[test]
    fn a_waiting_series_cuts_at_the_next_second_and_keeps_only_trades_from_it() {
        let mut s = SeriesState {
            tf: Timeframe::parse("1m").unwrap(),
            epoch: 0,
            history: 10,
            store: BarStore::new().ensure(&"C".into(), Timeframe::parse("1m").unwrap(), 10),
            phase: waiting(0),
        };
        let mut closed = Vec::new();
        for (t, p) in [(5_400, 1.0), (5_999, 2.0), (6_000, 3.0), (6_500, 4.0)] {
            s.trade(p, 1, t, &mut closed);
        }
        let Phase::Waiting { cut_ms, buffer, .. } = &s.phase else {
            panic!("still waiting")
        };
        assert_eq!(*cut_ms, Some(6_000));
        assert_eq!(
            buffer,
            &[(3.0, 1, 6_000), (4.0, 1, 6_500)],
            "history holds the rest"
        );
        assert!(closed.is_empty());
    }
}
