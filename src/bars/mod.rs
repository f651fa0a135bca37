//! Bars: [`Timeframe`]s and their boundaries in exchange time, the [`Aggregator`] that turns
//! trades (or finer bars) into bars, and the [`BarStore`] the engine writes and strategies read.
//!
//! Pure and clock-free: the engine feeds the aggregator `(price, size, time)` and the time of its
//! own clock, so a backtest drives the very same code on a simulated clock. The feed backfills
//! (`feed::bars`), the engine keeps the series current (`engine::bars`), `bot.bars` reads the
//! store without a trip to the engine loop.

mod aggregator;
mod store;
mod timeframe;

pub use aggregator::Aggregator;
pub use store::{BarStore, Series};
pub use timeframe::{Timeframe, TimeframeError, Unit};

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
