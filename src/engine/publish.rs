//! Building and republishing the engine's [`EngineStatus`] from the loop's state, and turning the
//! host's per-strategy counters into metric increments.

use super::core::Core;
use super::status::{EngineStatus, OrderStatusView, PositionStatus};

impl Core {
    /// Republishes the status snapshot when it changed.
    pub(super) fn publish(&mut self) {
        self.count_strategy_changes();
        let declared = self.host.as_ref().map(|h| h.symbols()).unwrap_or_default();
        let status = EngineStatus {
            strategies_loaded: self.host.is_some(),
            symbols_pending: declared
                .into_iter()
                .filter(|s| {
                    !self
                        .contract_for(s)
                        .is_some_and(|c| self.subscribed.contains(&c.id))
                })
                .collect(),
            market_hub: self.market_state.clone(),
            user_hub: self.user_state.clone(),
            halted: self.guard.halted().map(str::to_string),
            realized_pnl: self.guard.realized_pnl(),
            open_pnl: (self.open_pnl() * 100.0).round() / 100.0,
            positions: self
                .book
                .positions()
                .map(|p| PositionStatus {
                    contract: p.contract_id.clone(),
                    symbol: self
                        .contracts
                        .get(p.contract_id.as_str())
                        .map_or_else(|| p.contract_id.clone(), |c| c.symbol.to_string()),
                    size: p.net_size(),
                    avg_price: p.average_price,
                })
                .collect(),
            open_orders: self
                .book
                .orders()
                .filter(|o| !o.state.is_terminal())
                .map(|o| OrderStatusView {
                    id: o.local_id,
                    strategy: o.strategy.clone(),
                    custom_tag: o.custom_tag.clone(),
                    broker_id: o.broker_id,
                    symbol: o.contract.symbol.to_string(),
                    side: o.intent.side.as_str(),
                    size: o.intent.size,
                    filled: o.filled,
                    status: o.state.label(),
                    protected: o.bracket.as_ref().map(|b| b.protects()),
                })
                .collect(),
        };
        self.status.send_if_modified(|old| {
            let changed = *old != status;
            if changed {
                *old = status;
            }
            changed
        });
    }

    /// Turns the host's per-strategy counters into metric increments.
    fn count_strategy_changes(&mut self) {
        let Some(host) = &self.host else { return };
        for s in host.status() {
            let seen =
                self.seen_strategies
                    .entry(s.name.clone())
                    .or_insert((s.generation, None, 0));
            if s.generation > seen.0 {
                for _ in seen.0..s.generation {
                    self.metrics.reload(&s.name, true);
                }
            }
            if s.load_error.is_some() && s.load_error != seen.1 {
                self.metrics.reload(&s.name, false);
            }
            if s.quotes_coalesced > seen.2 {
                self.metrics
                    .quotes_coalesced(&s.name, s.quotes_coalesced - seen.2);
            }
            *seen = (s.generation, s.load_error.clone(), s.quotes_coalesced);
        }
    }
}
