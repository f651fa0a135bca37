//! Shared by the backtest, sweep and replay tests: recordings of MNQ quotes written with the
//! recorder's own writer, and the configuration a test backtest runs with.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use moontick::backtest::BacktestConfig;
use moontick::feed::record::{RecordFile, Recorded};
use moontick::market::Quote;
use moontick::risk::RiskLimits;

pub const C: &str = "CON.F.US.MNQ.H25";
/// 2025-01-02 15:00:00 UTC, a Thursday in the session.
pub const T0_MS: i64 = 1_735_830_000_000;

/// A quote of [`C`] at `ms`: the bid, the ask a tick above, last at the bid.
pub fn quote(ms: i64, bid: f64) -> Quote {
    Quote {
        bid: Some(bid),
        ask: Some(bid + 0.25),
        last: Some(bid),
        time_ms: ms,
        ..Quote::empty(C.into(), "MNQ".into())
    }
}

/// The recording file of [`C`] for `day` under `dir/data`, opened to append from `t0_ms`.
pub fn open(dir: &Path, day: &str, t0_ms: i64) -> RecordFile {
    let path = dir
        .join("data")
        .join(day)
        .join(moontick::feed::record::recorder::file_name(C));
    RecordFile::open(&path, u64::MAX, t0_ms * 1000, C, "MNQ")
        .unwrap()
        .0
}

/// Quotes at `(ms after T0, bid)`, received when stamped; returns the data directory.
pub fn record_at(dir: &Path, quotes: &[(i64, f64)]) -> PathBuf {
    let mut f = open(dir, "2025-01-02", T0_MS);
    for &(offset, bid) in quotes {
        let ms = T0_MS + offset;
        assert!(f.push(ms * 1000, &Recorded::Quote(quote(ms, bid))));
    }
    f.flush();
    dir.join("data")
}

/// One quote a second, the bid walking `bids`; returns the data directory.
pub fn record(dir: &Path, bids: &[f64]) -> PathBuf {
    let at: Vec<(i64, f64)> = bids
        .iter()
        .enumerate()
        .map(|(i, &b)| (i as i64 * 1000, b))
        .collect();
    record_at(dir, &at)
}

pub fn limits() -> RiskLimits {
    RiskLimits {
        max_order_size: 5,
        max_position: 5,
        daily_loss_limit: 10_000.0,
        max_orders_per_minute: 60,
    }
}

/// One strategy over `data`: $0.50 a side, no slippage, a $50,000 account, run from
/// `dir/out/.strategies`.
pub fn config(dir: &Path, strategy: PathBuf, data: PathBuf) -> BacktestConfig {
    BacktestConfig {
        strategies: vec![strategy],
        data,
        bars: None,
        commission: Some(0.5),
        slippage_ticks: 0,
        limits: limits(),
        balance: 50_000.0,
        work_dir: dir.join("out/.strategies"),
    }
}

/// Runs the `moontick` binary in `dir` with `args` and a clean environment (warnings logged, an
/// HTTP server on a free loopback port when the command has one).
pub fn moontick(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("PORT", "0")
        .env("BIND_ADDR", "127.0.0.1")
        .output()
        .unwrap()
}
