//! The bar itself, and the closed bar with the names `on_bar` hands to strategies.

use super::timeframe::Timeframe;

/// A closed bar of one series, as the engine hands it to `on_bar`.
#[derive(Debug, Clone, PartialEq)]
pub struct BarEvent {
    pub contract: std::sync::Arc<str>,
    /// The name strategies know the contract by, as on quotes.
    pub symbol: std::sync::Arc<str>,
    pub timeframe: Timeframe,
    pub bar: Bar,
}

/// One bar: its open time (ms since the epoch, the bar's start in exchange time) and OHLCV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub time_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Contracts traded.
    pub volume: i64,
}
