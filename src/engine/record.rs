//! What the loop records and announces beside trading: each fill into the journal and onto the
//! event bus, strategy state changes and reload errors as events, and the session summary when
//! the CME trading day rolls over.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::book::{AttributedFill, strategy_of_tag};
use super::core::Core;
use super::events::{EngineEvent, FillRecord};
use crate::gateway::wire::{Order, Trade};
use crate::market::Side;
use crate::script::{RunState, StrategyStatus};

impl Core {
    /// Journals and announces a fill attributed to a strategy (unless it was already journaled
    /// without one), and counts it toward the session.
    pub(super) fn record_fill(&mut self, fill: &AttributedFill) {
        let t = &fill.trade;
        if !self.pending_fills.attributed(t.id) {
            return;
        }
        let base = self
            .book
            .get(fill.local_id)
            .and_then(|o| o.intent.tag.clone());
        let tag = match (base, fill.leg) {
            (Some(tag), Some(leg)) => Some(format!("{tag} {}", leg.as_str())),
            (None, Some(leg)) => Some(leg.as_str().to_string()),
            (tag, None) => tag,
        };
        let record = self.fill_record(t, &fill.strategy, tag);
        self.write(record);
    }

    /// A fill no order of ours accounts for yet: journaled once attributed, or after
    /// [`UNATTRIBUTED_JOURNAL_GRACE`] without a strategy.
    pub(super) fn hold_unattributed(&mut self, trade: &Trade) {
        self.pending_fills.hold(trade, Instant::now());
    }

    /// Journals the fills held longer than `grace` without a strategy (all of them for zero,
    /// at shutdown).
    pub(super) fn journal_unattributed(&mut self, grace: Duration) {
        for t in self.pending_fills.due(Instant::now(), grace) {
            let record = self.fill_record(&t, "", None);
            self.write(record);
        }
    }

    fn fill_record(&self, t: &Trade, strategy: &str, tag: Option<String>) -> FillRecord {
        let contract = self.contracts.get(t.contract_id.as_str());
        FillRecord {
            time: t.creation_timestamp.0,
            strategy: strategy.to_string(),
            account_id: self.account.id,
            contract: t.contract_id.clone(),
            symbol: contract.map_or_else(|| t.contract_id.clone(), |c| c.symbol.to_string()),
            side: Side::from(t.side).as_str(),
            size: i64::from(t.size),
            price: t.price,
            tick_size: contract.map_or(0.0, |c| c.tick_size),
            pnl: t.profit_and_loss,
            fees: t.fees,
            commissions: t.commissions.unwrap_or(0.0),
            order_id: t.order_id,
            fill_id: t.id,
            tag,
        }
    }

    fn write(&mut self, record: FillRecord) {
        let cost = record.fees + record.commissions;
        self.session
            .add(&record.strategy, record.pnl.unwrap_or(0.0) - cost, cost);
        if let Some(journal) = &mut self.journal
            && let Err(e) = journal.append(&record)
        {
            tracing::error!("the trade journal missed fill {}: {e}", record.fill_id);
        }
        self.events.send(EngineEvent::Fill(record));
    }

    /// At start: today's fills the journal lacks (made while moontick was stopped, or lost in
    /// a crash before their line was written) are appended, attributed by their order's
    /// customTag. No event: they are not news.
    pub(super) fn journal_missed(&mut self, orders: &[Order], trades: &[Trade]) {
        let Some(dir) = self.journal.as_ref().map(|j| j.dir().to_path_buf()) else {
            return;
        };
        let mut known: HashMap<chrono::NaiveDate, HashSet<i64>> = HashMap::new();
        let mut missed: Vec<&Trade> = Vec::new();
        for t in trades.iter().filter(|t| !t.voided) {
            let day = crate::cme::trading_day(t.creation_timestamp.0);
            let ids = known.entry(day).or_insert_with(|| {
                crate::journal::fill_ids(&dir, day).unwrap_or_else(|e| {
                    tracing::error!("reading the journal of {day}: {e}");
                    // Unreadable: add nothing rather than write every fill twice.
                    trades.iter().map(|t| t.id).collect()
                })
            });
            if !ids.contains(&t.id) {
                missed.push(t);
            }
        }
        if missed.is_empty() {
            return;
        }
        missed.sort_by_key(|t| (t.creation_timestamp.0, t.id));
        tracing::info!(
            "{} fill(s) of today were not in the journal; adding them",
            missed.len()
        );
        for t in missed {
            let strategy = orders
                .iter()
                .find(|o| o.id == t.order_id)
                .and_then(|o| o.custom_tag.as_deref())
                .and_then(strategy_of_tag)
                .unwrap_or("");
            let record = self.fill_record(t, strategy, None);
            if let Some(journal) = &mut self.journal
                && let Err(e) = journal.append(&record)
            {
                tracing::error!("the trade journal missed fill {}: {e}", record.fill_id);
            }
        }
    }

    /// At the CME trading day's roll: the day's summary.
    pub(super) fn close_session_if_due(&mut self) {
        if let Some(summary) = self.session.roll(Utc::now(), self.account.balance) {
            tracing::info!(
                "trading day {} closed: {} fill(s), net P&L {}",
                summary.day,
                summary.fills,
                crate::money::Money(summary.net_pnl)
            );
            self.events.send(EngineEvent::SessionClosed(summary));
        }
    }

    /// Turns a strategy's changed state or new load error into events.
    pub(super) fn announce_strategy(&mut self, s: &StrategyStatus, new_load_error: bool) {
        if new_load_error && let Some(error) = &s.load_error {
            self.events.send(EngineEvent::ReloadFailed {
                strategy: s.name.clone(),
                error: error.clone(),
            });
        }
        // Looked up before inserting: this runs on every publish, a change is rare.
        let before = self.seen_states.get(&s.name).copied();
        if before == Some(s.state) {
            return;
        }
        self.seen_states.insert(s.name.clone(), s.state);
        let detail = match s.state {
            RunState::Stuck => s
                .stalled
                .as_ref()
                .map(|st| format!("inside {} for {} ms", st.handler, st.for_ms)),
            RunState::Crashed => s.crash.clone(),
            RunState::Paused => s.last_error.clone(),
            RunState::Failed => s.load_error.clone(),
            _ => None,
        };
        // A strategy seen for the first time running, starting or stopped is no news.
        let news = matches!(
            s.state,
            RunState::Stuck | RunState::Crashed | RunState::Paused
        ) || before
            .is_some_and(|b| matches!(b, RunState::Stuck | RunState::Crashed | RunState::Paused));
        if news {
            self.events.send(EngineEvent::Strategy {
                name: s.name.clone(),
                state: s.state.as_str(),
                detail,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pending_fills::{PendingFills, UNATTRIBUTED_JOURNAL_GRACE};

    fn trade(id: i64) -> Trade {
        serde_json::from_value(serde_json::json!({
            "id": id, "accountId": 7, "contractId": "CON.F.US.MNQ.Z25",
            "creationTimestamp": "2026-11-27T15:30:03Z", "price": 21000.25, "fees": 0.37,
            "side": 0, "size": 1, "voided": false, "orderId": 99
        }))
        .unwrap()
    }

    #[test]
    fn a_fill_attributed_within_the_grace_is_journaled_once_with_its_strategy() {
        let mut p = PendingFills::default();
        let t0 = Instant::now();
        p.hold(&trade(1), t0);
        assert!(
            p.due(t0 + Duration::from_secs(2), UNATTRIBUTED_JOURNAL_GRACE)
                .is_empty()
        );
        assert!(p.attributed(1), "written now, with its strategy");
        assert!(
            p.due(t0 + Duration::from_secs(10), UNATTRIBUTED_JOURNAL_GRACE)
                .is_empty()
        );
    }

    #[test]
    fn a_fill_past_the_grace_is_journaled_without_a_strategy_and_never_twice() {
        let mut p = PendingFills::default();
        let t0 = Instant::now();
        p.hold(&trade(2), t0);
        p.hold(&trade(1), t0 + Duration::from_secs(1));
        let due = p.due(t0 + Duration::from_secs(4), UNATTRIBUTED_JOURNAL_GRACE);
        assert_eq!(due.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2]);
        assert!(
            !p.attributed(2),
            "a late attribution does not write it again"
        );
        assert!(
            p.attributed(3),
            "a fill never held is written when attributed"
        );
        assert!(p.due(t0, Duration::ZERO).is_empty());
    }

    #[test]
    fn shutdown_writes_every_held_fill() {
        let mut p = PendingFills::default();
        let now = Instant::now();
        p.hold(&trade(5), now);
        assert_eq!(p.due(now, Duration::ZERO).len(), 1);
    }
}
