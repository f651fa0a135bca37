//! Tests of the bar aggregator: boundaries, the daily roll at 17:00 Chicago, empty intervals,
//! late and out-of-order prints, folding finer bars.

use super::*;

fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

fn agg(tf: &str) -> Aggregator {
    Aggregator::new(Timeframe::parse(tf).unwrap())
}

#[test]
fn ohlcv_are_the_trades_of_the_bar_and_the_next_trade_closes_it() {
    let mut a = agg("1m");
    let mut out = Vec::new();
    let t0 = ms("2025-12-01T14:00:00Z");
    for (i, (p, v)) in [(10.0, 1), (12.0, 2), (9.5, 1), (11.0, 3)]
        .iter()
        .enumerate()
    {
        a.trade(*p, *v, t0 + i as i64 * 10_000, &mut out);
    }
    assert!(out.is_empty(), "still open");
    a.trade(11.25, 1, t0 + 60_000, &mut out);
    assert_eq!(
        out,
        [Bar {
            time_ms: t0,
            open: 10.0,
            high: 12.0,
            low: 9.5,
            close: 11.0,
            volume: 7
        }]
    );
    assert_eq!(a.open_bar().unwrap().time_ms, t0 + 60_000);
}

#[test]
fn the_clock_closes_a_bar_without_a_trade_and_empty_intervals_have_no_bar() {
    let mut a = agg("1m");
    let mut out = Vec::new();
    let t0 = ms("2025-12-01T14:00:00Z");
    a.trade(10.0, 1, t0 + 5_000, &mut out);
    a.close_until(t0 + 59_999, &mut out);
    assert!(out.is_empty());
    a.close_until(t0 + 60_000, &mut out);
    assert_eq!(out.len(), 1);
    a.close_until(t0 + 10 * 60_000, &mut out);
    assert_eq!(out.len(), 1, "nothing traded, no bar");
    // The next trade, five minutes on, opens its own minute: no filler bars in between.
    a.trade(10.5, 1, t0 + 5 * 60_000 + 1, &mut out);
    a.trade(10.75, 1, t0 + 6 * 60_000, &mut out);
    assert_eq!(out[1].time_ms, t0 + 5 * 60_000);
    assert_eq!(out.len(), 2);
}

#[test]
fn daily_bars_roll_at_five_pm_chicago() {
    let mut a = agg("1d");
    let mut out = Vec::new();
    a.trade(100.0, 1, ms("2025-12-01T22:59:59Z"), &mut out); // 16:59:59 CST
    a.trade(101.0, 1, ms("2025-12-01T23:00:00Z"), &mut out); // 17:00 CST: the next day
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].time_ms, ms("2025-11-30T23:00:00Z"));
    assert_eq!(a.open_bar().unwrap().time_ms, ms("2025-12-01T23:00:00Z"));
}

#[test]
fn late_and_out_of_order_trades_are_kept_and_never_reopen_a_closed_bar() {
    let mut a = agg("1m");
    let mut out = Vec::new();
    let t0 = ms("2025-12-01T14:00:00Z");
    a.trade(10.0, 1, t0 + 30_000, &mut out);
    // Out of order inside the open bar: joins it, close follows arrival.
    a.trade(9.0, 2, t0 + 10_000, &mut out);
    a.close_until(t0 + 60_000, &mut out);
    assert_eq!(out[0].close, 9.0);
    assert_eq!(out[0].volume, 3);
    // Stamped in the closed minute: joins the next bar, counted late.
    a.trade(8.0, 4, t0 + 59_000, &mut out);
    assert_eq!(a.late(), 1);
    let open = *a.open_bar().unwrap();
    assert_eq!((open.time_ms, open.low, open.volume), (t0 + 60_000, 8.0, 4));
    a.trade(8.5, 1, t0 + 120_000, &mut out);
    assert!(out.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
}

#[test]
fn finer_bars_fold_into_ours_like_their_trades() {
    let mut a = agg("5m");
    let mut out = Vec::new();
    let t0 = ms("2025-12-01T14:00:00Z");
    for i in 0..7 {
        let p = 100.0 + i as f64;
        let piece = Bar {
            time_ms: t0 + i * 60_000,
            open: p,
            high: p + 2.0,
            low: p - 1.0,
            close: p + 1.0,
            volume: 10,
        };
        a.fold(piece, &mut out);
    }
    assert_eq!(
        out,
        [Bar {
            time_ms: t0,
            open: 100.0,
            high: 106.0,
            low: 99.0,
            close: 105.0,
            volume: 50
        }]
    );
    assert_eq!(a.open_bar().unwrap().volume, 20);
}
