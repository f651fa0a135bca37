//! The bar aggregator of one series: a pure state machine fed trades (or finer bars) and the
//! engine's time, never the wall clock.
//!
//! - A trade at or after the open bar's end closes it (and opens the next): with trades flowing,
//!   a bar closes on the first trade of the next one.
//! - [`Aggregator::close_until`] closes the open bar once the caller's clock has passed its end,
//!   so a bar closes even when no trade follows it (the engine calls it from its tick).
//! - An interval with no trade has no bar (as `History/retrieveBars` has none for it).
//! - Late or out-of-order trades: one stamped inside the open bar joins it wherever it arrives
//!   (open and close follow arrival order); one stamped before the end of the last closed bar
//!   cannot change a bar strategies have already seen, so it joins the bar open after it (its
//!   price and volume are kept, its time is moved forward) and is counted in [`Aggregator::late`].

use super::bar::Bar;
use super::timeframe::Timeframe;

#[derive(Debug, Clone)]
pub struct Aggregator {
    tf: Timeframe,
    open: Option<(Bar, i64)>,
    /// End of the last closed bar: no bar may start before it.
    closed_end: i64,
    late: u64,
}

impl Aggregator {
    pub fn new(tf: Timeframe) -> Self {
        Aggregator {
            tf,
            open: None,
            closed_end: i64::MIN,
            late: 0,
        }
    }

    pub fn timeframe(&self) -> Timeframe {
        self.tf
    }

    /// The bar being built, if any trade fell in it yet.
    pub fn open_bar(&self) -> Option<&Bar> {
        self.open.as_ref().map(|(b, _)| b)
    }

    /// Trades that arrived after the bar they belong to had closed.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// One trade; bars it closes are appended to `closed`.
    pub fn trade(&mut self, price: f64, size: i64, time_ms: i64, closed: &mut Vec<Bar>) {
        self.fold(
            Bar {
                time_ms,
                open: price,
                high: price,
                low: price,
                close: price,
                volume: size,
            },
            closed,
        );
    }

    /// A finer bar (from a backfill), folded as the trades it stands for; its time must be
    /// inside one of our bars, which [`Timeframe::history_base`] guarantees.
    pub fn fold(&mut self, piece: Bar, closed: &mut Vec<Bar>) {
        let mut t = piece.time_ms;
        if t < self.closed_end {
            self.late += 1;
            t = self.closed_end;
        }
        if let Some((_, end)) = self.open
            && t >= end
        {
            self.close(closed);
        }
        match &mut self.open {
            Some((bar, _)) => {
                bar.high = bar.high.max(piece.high);
                bar.low = bar.low.min(piece.low);
                bar.close = piece.close;
                bar.volume += piece.volume;
            }
            None => {
                let (start, end) = self.tf.bucket(t);
                self.open = Some((
                    Bar {
                        time_ms: start,
                        ..piece
                    },
                    end,
                ));
            }
        }
    }

    /// Closes the open bar when `now_ms` has reached its end.
    pub fn close_until(&mut self, now_ms: i64, closed: &mut Vec<Bar>) {
        if self.open.is_some_and(|(_, end)| now_ms >= end) {
            self.close(closed);
        }
    }

    fn close(&mut self, closed: &mut Vec<Bar>) {
        if let Some((bar, end)) = self.open.take() {
            self.closed_end = end;
            closed.push(bar);
        }
    }
}

#[cfg(test)]
#[path = "aggregator_tests.rs"]
mod tests;
