//! Bars: [`Timeframe`]s and their boundaries in exchange time, the [`Aggregator`] that turns
//! trades (or finer bars) into bars, and the [`BarStore`] the engine writes and strategies read.
//!
//! Pure and clock-free: the engine feeds the aggregator `(price, size, time)` and the time of its
//! own clock, so a backtest drives the very same code on a simulated clock. The feed backfills
//! (`feed::bars`), the engine keeps the series current (`engine::bars`), `bot.bars` reads the
//! store without a trip to the engine loop.

mod aggregator;
mod bar;
mod store;
mod timeframe;

pub use aggregator::Aggregator;
pub use bar::{Bar, BarEvent};
pub use store::{BarStore, Series};
pub use timeframe::{Timeframe, TimeframeError, Unit};
