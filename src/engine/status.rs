//! What the engine publishes about itself for `/readyz`, `/status` and tests: hub states,
//! whether strategies and their contracts are ready, risk state, positions and working orders.

use serde::Serialize;

use super::core::Core;

/// A snapshot, republished by the loop when something changes (and four times a second for
/// open P&L).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EngineStatus {
    /// The strategy host finished its first loads.
    pub strategies_loaded: bool,
    /// Symbols the strategies declared that are not resolved and subscribed yet.
    pub symbols_pending: Vec<String>,
    pub market_hub: String,
    pub user_hub: String,
    pub halted: Option<String>,
    pub realized_pnl: f64,
    pub open_pnl: f64,
    pub positions: Vec<PositionStatus>,
    pub open_orders: Vec<OrderStatusView>,
}

impl EngineStatus {
    /// Ready to trade: strategies loaded, every declared symbol quoted, both hubs live.
    ///
    /// # Errors
    /// The first reason it is not.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.strategies_loaded {
            return Err("strategies are still loading".into());
        }
        if self.market_hub != "live" {
            return Err(format!("market hub is {}", self.market_hub));
        }
        if self.user_hub != "live" {
            return Err(format!("user hub is {}", self.user_hub));
        }
        if !self.symbols_pending.is_empty() {
            return Err(format!(
                "waiting for contracts: {}",
                self.symbols_pending.join(", ")
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PositionStatus {
    pub contract: String,
    pub symbol: String,
    pub size: i32,
    pub avg_price: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderStatusView {
    pub id: u64,
    pub strategy: String,
    pub custom_tag: String,
    pub broker_id: Option<i64>,
    pub symbol: String,
    pub side: &'static str,
    pub size: i64,
    pub filled: i32,
    pub status: &'static str,
    /// For a bracket entry: both children confirmed working.
    pub protected: Option<bool>,
}

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
            market_hub: self.market_label.clone(),
            user_hub: self.user_label.clone(),
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
