//! What the engine publishes about itself for `/readyz`, `/status`, the dashboard and tests: hub
//! states, whether strategies and their contracts are ready, risk state, positions and working
//! orders, each strategy's P&L, the day's recent fills and equity curve. (The loop builds it in
//! `publish.rs`.)

use std::sync::Arc;

use serde::{Serialize, Serializer};

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
    /// The account's balance as the gateway last reported it.
    pub balance: f64,
    /// The risk guard's daily loss limit (realised plus open), in dollars.
    pub daily_loss_limit: f64,
    /// Each strategy's own P&L today, from the fills attributed to it, sorted by name.
    pub strategy_pnl: Vec<StrategyPnl>,
    /// When the latest quote of each subscribed contract was stamped, sorted by symbol.
    pub quotes: Vec<QuoteSeen>,
    /// The day's last fills, oldest first (at most `RECENT_FILLS`).
    pub fills: Snapshot<Vec<FillView>>,
    /// The day's equity curve: realised plus open P&L over time.
    pub equity: Snapshot<Vec<EquityPoint>>,
}

/// A value the loop replaces (never mutates in place) when it changes: cloned by reference
/// count, and compared by identity, so republishing the status stays cheap however long the
/// day's history grows.
#[derive(Debug, Default)]
pub struct Snapshot<T>(pub Arc<T>);

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Snapshot(Arc::clone(&self.0))
    }
}

impl<T> PartialEq for Snapshot<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> std::ops::Deref for Snapshot<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> Serialize for Snapshot<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// One strategy's P&L today: realised from its attributed fills (after fees), open on what it
/// holds now at the last price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyPnl {
    pub strategy: String,
    pub realized_pnl: f64,
    pub open_pnl: f64,
}

/// The latest quote of one contract: its age tells whether the feed is alive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuoteSeen {
    pub symbol: String,
    pub contract: String,
    /// The quote's timestamp, ms since the epoch.
    pub time_ms: i64,
    pub last: Option<f64>,
}

/// One fill as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FillView {
    pub time_ms: i64,
    /// The strategy whose order it filled; `None` for an order not placed by moontick.
    pub strategy: Option<String>,
    pub symbol: String,
    pub side: &'static str,
    pub size: i32,
    pub price: f64,
    /// The gateway's realised P&L of the fill, before fees (`None` for an opening fill).
    pub pnl: Option<f64>,
    pub fees: f64,
    pub order_id: i64,
    #[serde(skip)]
    pub trade_id: i64,
}

/// One point of the equity curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EquityPoint {
    pub time_ms: i64,
    /// Realised plus open P&L of the day, in dollars.
    pub pnl: f64,
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
