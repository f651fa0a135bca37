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

/// The market events `bars` (oldest first) are played as: for each print, the print then its
/// quote, received at the print's time.
pub(crate) fn events(
    contract: &Arc<str>,
    symbol: &Arc<str>,
    tf: Timeframe,
    bars: &[Bar],
) -> Vec<RecordedEvent> {
    let mut out = Vec::with_capacity(bars.len() * 8);
    for b in bars {
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
        let e = events(&"C".into(), &"S".into(), tf, &[bar(1.0, 2.0, 0.5, 1.5, 4)]);
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
}
