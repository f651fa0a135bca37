//! Bars played as market data, for a backtest from bars: each bar becomes four prints and
//! four quotes on the simulated clock inside its interval — open, the extreme nearer the open,
//! the other extreme, close — so `on_bar` (the engine aggregates the prints, as live) sees the
//! bar itself and `on_quote` sees its path as far as a bar can tell it.
//!
//! The rule, documented in README ("Backtesting from bars"): at the bar's open time the open;
//! a quarter into its interval the high when it is no farther from the open than the low is
//! (a tie goes to the high), else the low; halfway the other extreme; three quarters in the
//! close. A derived quote has bid = ask = last = that price (no spread: `--slippage` models
//! one) and no session volume. Each price is printed before it is quoted, so the print that
//! opens a bar closes the one before it and `on_bar` comes before the new bar's first quote.

use std::sync::Arc;

use crate::bars::{Bar, Timeframe};
use crate::feed::record::{Recorded, RecordedEvent};
use crate::market::{Quote, Trade};

/// One derived print: price, size, exchange time (ms).
pub(crate) type Print = (f64, i64, i64);

/// The four prices a bar is played as, in order (see the module documentation).
pub(crate) fn path(b: &Bar) -> [f64; 4] {
    let (first, second) = if b.high - b.open <= b.open - b.low {
        (b.high, b.low)
    } else {
        (b.low, b.high)
    };
    [b.open, first, second, b.close]
}

/// A bar's prints: at its open and a quarter, half and three quarters into `tf`'s interval;
/// the volume split so the four add up to the bar's (the close takes the remainder).
pub(crate) fn prints(b: &Bar, tf: Timeframe) -> [Print; 4] {
    let (start, end) = tf.bucket(b.time_ms);
    let step = (end - start) / 4;
    let quarter = b.volume.max(0) / 4;
    let prices = path(b);
    std::array::from_fn(|k| {
        let size = if k == 3 {
            b.volume.max(0) - 3 * quarter
        } else {
            quarter
        };
        (prices[k], size, b.time_ms + step * k as i64)
    })
}

/// Every print of `bars` (oldest first), in time order.
pub(crate) fn all_prints(bars: &[Bar], tf: Timeframe) -> Vec<Print> {
    bars.iter().flat_map(|b| prints(b, tf)).collect()
}

/// The market events one bar is played as: for each print, the print then its quote,
/// received at the print's time.
pub(crate) fn events(
    contract: &Arc<str>,
    symbol: &Arc<str>,
    tf: Timeframe,
    b: &Bar,
) -> Vec<RecordedEvent> {
    let mut out = Vec::with_capacity(8);
    {
        for (price, size, time_ms) in prints(b, tf) {
            let recv_us = time_ms * 1000;
            out.push(RecordedEvent {
                recv_us,
                event: Recorded::Trades(vec![Trade {
                    contract: contract.clone(),
                    symbol: symbol.clone(),
                    price,
                    size: size as f64,
                    side: None,
                    time_ms,
                }]),
            });
            out.push(RecordedEvent {
                recv_us,
                event: Recorded::Quote(Quote {
                    bid: Some(price),
                    ask: Some(price),
                    last: Some(price),
                    time_ms,
                    ..Quote::empty(contract.clone(), symbol.clone())
                }),
            });
        }
    }
    out
}

/// One contract's bars as events, made a bar at a time.
struct Played {
    contract: Arc<str>,
    symbol: Arc<str>,
    tf: Timeframe,
    bars: std::vec::IntoIter<Bar>,
    ready: std::collections::VecDeque<RecordedEvent>,
}

impl Played {
    fn peek(&mut self) -> Option<&RecordedEvent> {
        if self.ready.is_empty() {
            let b = self.bars.next()?;
            self.ready
                .extend(events(&self.contract, &self.symbol, self.tf, &b));
        }
        self.ready.front()
    }
}

/// Several contracts' bars (each oldest first) played as one stream in time order (a tie goes
/// to the contract given first), made as it is read, then `last`.
pub(crate) struct Merged {
    sources: Vec<Played>,
    last: Option<RecordedEvent>,
}

impl Merged {
    pub(crate) fn new(
        series: Vec<(Arc<str>, Arc<str>, Vec<Bar>)>,
        tf: Timeframe,
        last: RecordedEvent,
    ) -> Self {
        let sources = series
            .into_iter()
            .map(|(contract, symbol, bars)| Played {
                contract,
                symbol,
                tf,
                bars: bars.into_iter(),
                ready: Default::default(),
            })
            .collect();
        Merged {
            sources,
            last: Some(last),
        }
    }
}

impl Iterator for Merged {
    type Item = RecordedEvent;

    fn next(&mut self) -> Option<RecordedEvent> {
        let mut best: Option<(i64, usize)> = None;
        for (i, s) in self.sources.iter_mut().enumerate() {
            if let Some(e) = s.peek()
                && best.is_none_or(|(t, _)| e.recv_us < t)
            {
                best = Some((e.recv_us, i));
            }
        }
        match best {
            Some((_, i)) => self.sources[i].ready.pop_front(),
            None => self.last.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(o: f64, h: f64, l: f64, c: f64, v: i64) -> Bar {
        Bar {
            time_ms: 1_793_000_040_000,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
        }
    }

    #[test]
    fn the_extreme_nearer_the_open_comes_first_and_a_tie_goes_to_the_high() {
        assert_eq!(path(&bar(10.0, 11.0, 5.0, 7.0, 1)), [10.0, 11.0, 5.0, 7.0]);
        assert_eq!(
            path(&bar(10.0, 15.0, 9.0, 14.0, 1)),
            [10.0, 9.0, 15.0, 14.0]
        );
        assert_eq!(path(&bar(10.0, 12.0, 8.0, 9.0, 1)), [10.0, 12.0, 8.0, 9.0]);
        assert_eq!(path(&bar(10.0, 10.0, 10.0, 10.0, 1)), [10.0; 4]);
    }

    #[test]
    fn prints_sit_inside_the_interval_and_add_up_to_the_volume() {
        let tf = Timeframe::parse("1m").unwrap();
        let b = bar(10.0, 11.0, 5.0, 7.0, 11);
        let p = prints(&b, tf);
        let t = b.time_ms;
        assert_eq!(
            p,
            [
                (10.0, 2, t),
                (11.0, 2, t + 15_000),
                (5.0, 2, t + 30_000),
                (7.0, 5, t + 45_000)
            ]
        );
        // Aggregated as the engine does, they give the bar back.
        let mut agg = crate::bars::Aggregator::new(tf);
        let mut closed = Vec::new();
        for (price, size, time) in p {
            agg.trade(price, size, time, &mut closed);
        }
        agg.close_until(t + 60_000, &mut closed);
        assert_eq!(closed, vec![b]);
    }

    #[test]
    fn each_price_is_printed_then_quoted_at_the_same_time() {
        let tf = Timeframe::parse("1m").unwrap();
        let e = events(&"C".into(), &"S".into(), tf, &bar(1.0, 2.0, 0.5, 1.5, 4));
        assert_eq!(e.len(), 8);
        for pair in e.chunks(2) {
            let (Recorded::Trades(t), Recorded::Quote(q)) = (&pair[0].event, &pair[1].event) else {
                panic!("a print then a quote: {pair:?}")
            };
            assert_eq!(pair[0].recv_us, pair[1].recv_us);
            assert_eq!(
                (q.bid, q.ask, q.last),
                (Some(t[0].price), Some(t[0].price), Some(t[0].price))
            );
            assert_eq!(
                q.volume, None,
                "no session volume: quotes never stand in for prints"
            );
        }
    }

    #[test]
    fn contracts_interleave_by_time_each_in_its_own_order_and_the_last_event_comes_last() {
        let tf = Timeframe::parse("1m").unwrap();
        let a = bar(1.0, 2.0, 0.5, 1.5, 4);
        let b = Bar {
            time_ms: a.time_ms + 15_000,
            ..a
        };
        let last = RecordedEvent {
            recv_us: i64::MAX,
            event: Recorded::Trades(Vec::new()),
        };
        let merged: Vec<(i64, String, bool)> = Merged::new(
            vec![
                ("B".into(), "B".into(), vec![b]),
                ("A".into(), "A".into(), vec![a]),
            ],
            tf,
            last,
        )
        .map(|e| match e.event {
            Recorded::Trades(t) if t.is_empty() => (e.recv_us, "end".into(), true),
            Recorded::Trades(t) => (e.recv_us, t[0].contract.to_string(), true),
            Recorded::Quote(q) => (e.recv_us, q.contract.to_string(), false),
            Recorded::Depth(_) => unreachable!(),
        })
        .collect();
        assert_eq!(merged.len(), 17);
        assert!(merged.windows(2).all(|w| w[0].0 <= w[1].0), "{merged:?}");
        // At a shared time the contract given first (B) goes first, print before quote.
        let t = (a.time_ms + 15_000) * 1000;
        let at: Vec<(&str, bool)> = merged
            .iter()
            .filter(|e| e.0 == t)
            .map(|e| (e.1.as_str(), e.2))
            .collect();
        assert_eq!(at, [("B", true), ("B", false), ("A", true), ("A", false)]);
        assert_eq!(merged[16].1, "end");
    }
}
