//! What the engine publishes about itself for `/readyz`, `/status` and tests: hub states,
//! whether strategies and their contracts are ready, risk state, positions and working orders.
//! (The loop builds it in `publish.rs`.)

use serde::Serialize;

use crate::feed::ConnectionState;

/// A snapshot, republished by the loop when something changes (and four times a second for
/// open P&L).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStatus {
    /// The strategy host finished its first loads.
    pub strategies_loaded: bool,
    /// Symbols the strategies declared that are not resolved and subscribed yet.
    pub symbols_pending: Vec<String>,
    /// The hub connections' states; `/status` renders them as words.
    pub market_hub: ConnectionState,
    pub user_hub: ConnectionState,
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
        if !self.market_hub.is_live() {
            return Err(format!("market hub is {}", self.market_hub.label()));
        }
        if !self.user_hub.is_live() {
            return Err(format!("user hub is {}", self.user_hub.label()));
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
    /// At the last price (the mid when there is none); 0 before the first quote.
    pub open_pnl: f64,
    /// The working stop-loss leg closest to the market, if any.
    pub stop_price: Option<f64>,
    /// The working take-profit leg closest to the market, if any.
    pub target_price: Option<f64>,
    /// Working stop-loss legs on the other side cover the whole position.
    pub protected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderStatusView {
    /// The local id (`bot.orders()` ids; a leg has its own).
    pub id: u64,
    pub strategy: String,
    /// `entry`, `stop_loss` or `take_profit`.
    pub kind: &'static str,
    /// For a leg: the entry's local id.
    pub parent: Option<u64>,
    pub custom_tag: String,
    pub broker_id: Option<i64>,
    pub symbol: String,
    pub side: &'static str,
    pub size: i64,
    pub filled: i32,
    /// Limit price of a limit entry or take profit, stop price of a stop entry or stop loss.
    pub price: Option<f64>,
    pub status: &'static str,
    /// For a bracket entry: both children confirmed working.
    pub protected: Option<bool>,
}
