//! Backtest speed: a synthetic recording of MNQ-like quotes (a random walk on the tick grid,
//! every field a real quote carries), written with the recorder's own file writer so the real
//! reader decodes it, run through [`moontick::backtest`] into one strategy whose `on_quote`
//! updates an EMA. Prints recorded quotes per second, best and median of `RUNS` runs.
//!
//! Then a parameter sweep of `SWEEP` combinations of the same strategy (EMA periods), on one
//! thread and on every core, to show how it scales.
//!
//! `cargo bench --bench backtest` (env `N`, quotes, default 1,000,000; `RUNS`, default 3;
//! `SWEEP`, combinations, default 4; `SWEEP_N`, quotes for the sweep, default `N / 4`).

use std::path::Path;
use std::time::Instant;

use moontick::backtest::sweep::SortBy;
use moontick::backtest::{self, BacktestConfig, ParamAxis};
use moontick::feed::record::{RecordFile, Recorded};
use moontick::market::Quote;
use moontick::risk::RiskLimits;

const C: &str = "CON.F.US.MNQ.H25";
/// 2025-01-02 14:30:00 UTC, a Thursday in the session.
const T0_MS: i64 = 1_735_828_200_000;

const STRATEGY: &str = r#"
local M = { symbols = { "MNQ" }, params = { n = 20 } }
local ema = ta.ema(M.params.n)
local last
function M.on_quote(q)
  if q.bid then last = ema:update(q.bid) end
end
function M.on_stop()
  bot.log.info("ema", last)
end
return M
"#;

/// `n` quotes, one every 20 ms on average (a busy MNQ session), into `dir/data`.
fn record(dir: &Path, n: usize) -> std::path::PathBuf {
    let path = dir
        .join("data/2025-01-02")
        .join(moontick::feed::record::recorder::file_name(C));
    let (mut f, _) = RecordFile::open(&path, u64::MAX, T0_MS * 1000, C, "MNQ").unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut mid = 84_000i64; // ticks of 0.25
    let mut volume = 100_000i64;
    let mut us = T0_MS * 1000;
    for _ in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        mid += (state % 3) as i64 - 1;
        if state.is_multiple_of(4) {
            volume += 1 + (state >> 8) as i64 % 3;
        }
        us += 1 + (state >> 16) as i64 % 40_000;
        let q = Quote {
            bid: Some(mid as f64 * 0.25),
            ask: Some((mid + 1) as f64 * 0.25),
            last: Some((mid + (state >> 4) as i64 % 2) as f64 * 0.25),
            volume: Some(volume),
            open: Some(20_950.25),
            high: Some(21_100.0),
            low: Some(20_900.5),
            change: Some((mid - 83_800) as f64 * 0.25),
            time_ms: us / 1000,
            ..Quote::empty(C.into(), "MNQ".into())
        };
        assert!(f.push(us, &Recorded::Quote(q)));
        if f.pending_bytes() >= 1 << 20 {
            f.flush();
        }
    }
    f.flush();
    dir.join("data")
}

fn config(dir: &Path, data: std::path::PathBuf) -> BacktestConfig {
    let strategy = dir.join("ema.lua");
    std::fs::write(&strategy, STRATEGY).unwrap();
    BacktestConfig {
        strategies: vec![strategy],
        data,
        bars: None,
        commission: None,
        slippage_ticks: 0,
        limits: RiskLimits {
            max_order_size: 5,
            max_position: 5,
            daily_loss_limit: 10_000.0,
            max_orders_per_minute: 60,
        },
        balance: 50_000.0,
        work_dir: dir.join("out/.strategies"),
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env("N", 1_000_000);
    let runs = env("RUNS", 3).max(1);
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), n);
    let cfg = config(dir.path(), data);

    let mut rates = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let report = backtest::run(&cfg).expect("the backtest runs");
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(report.quotes, n as u64);
        rates.push(n as f64 / secs);
        println!(
            "run: {n} quotes in {secs:.2} s: {:.0} quotes/s",
            n as f64 / secs
        );
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "backtest, one EMA strategy: best {:.0} quotes/s, median {:.0} quotes/s ({runs} runs of {n})",
        rates[runs - 1],
        rates[runs / 2]
    );

    // A sweep: the same strategy with `SWEEP` EMA periods, on one thread and on every core.
    let combos = env("SWEEP", 4).max(1);
    let sweep_n = env("SWEEP_N", n / 4).max(1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), record(dir.path(), sweep_n));
    let periods: Vec<String> = (1..=combos).map(|i| (10 * i).to_string()).collect();
    let axes = [ParamAxis {
        name: "n".into(),
        values: periods,
    }];
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut last = None;
    for threads in [1, cores] {
        let start = Instant::now();
        let sweep = backtest::sweep::sweep(&cfg, &axes, SortBy::NetPnl, Some(threads)).unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(sweep.rows.len(), combos);
        let total = (combos * sweep_n) as f64;
        println!(
            "sweep of {combos} x {sweep_n} quotes on {threads} thread(s): {secs:.2} s, {:.0} quotes/s in all{}",
            total / secs,
            last.map_or(String::new(), |one: f64| format!(
                ", {:.2}x one thread",
                one / secs
            )),
        );
        last = Some(secs);
    }
}
