//! `moontick backtest` as a library call: a Lua strategy over a recording written here, through
//! the engine core, risk guard and the simulator's matching engine, on a simulated clock.

use std::path::{Path, PathBuf};

use moontick::backtest::{self, BacktestConfig, Report};
use moontick::feed::record::{RecordFile, Recorded};
use moontick::market::Quote;
use moontick::risk::RiskLimits;

const C: &str = "CON.F.US.MNQ.H25";
/// 2025-01-02 15:00:00 UTC, a Thursday in the session.
const T0_MS: i64 = 1_735_830_000_000;

/// One quote a second; the bid walks `bids`, the ask a tick above, last at the bid.
fn record(dir: &Path, bids: &[f64]) -> PathBuf {
    let path = dir
        .join("data/2025-01-02")
        .join(moontick::feed::record::recorder::file_name(C));
    let (mut f, _) = RecordFile::open(&path, u64::MAX, T0_MS * 1000, C, "MNQ").unwrap();
    for (i, &bid) in bids.iter().enumerate() {
        let ms = T0_MS + i as i64 * 1000;
        let q = Quote {
            bid: Some(bid),
            ask: Some(bid + 0.25),
            last: Some(bid),
            time_ms: ms,
            ..Quote::empty(C.into(), "MNQ".into())
        };
        assert!(f.push(ms * 1000, &Recorded::Quote(q)));
    }
    f.flush();
    dir.join("data")
}

fn strategy(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("strat.lua");
    std::fs::write(&path, body).unwrap();
    path
}

fn limits() -> RiskLimits {
    RiskLimits {
        max_order_size: 5,
        max_position: 5,
        daily_loss_limit: 10_000.0,
        max_orders_per_minute: 60,
    }
}

fn config(dir: &Path, strategy: PathBuf, data: PathBuf) -> BacktestConfig {
    BacktestConfig {
        strategies: vec![strategy],
        data,
        commission: Some(0.5),
        slippage_ticks: 0,
        limits: limits(),
        balance: 50_000.0,
        work_dir: dir.join("out/.strategies"),
    }
}

/// Buys on the 3rd quote, sells on the 8th: both at market.
const ROUND_TRIP: &str = r#"
local M = { symbols = { "MNQ" }, params = { size = 1 } }
local n = 0
function M.on_quote(q)
  n = n + 1
  if n == 3 then
    local h, why = bot.buy{ symbol = "MNQ", size = M.params.size }
    if not h then bot.log.warn("refused: " .. tostring(why)) end
  elseif n == 8 then
    bot.sell{ symbol = "MNQ", size = M.params.size }
  end
end
return M
"#;

fn rising() -> Vec<f64> {
    (0..12).map(|i| 20_000.0 + f64::from(i)).collect()
}

fn run(cfg: &BacktestConfig) -> Report {
    backtest::run(cfg).expect("the backtest runs")
}

#[test]
fn market_orders_fill_at_the_touch_with_commission_per_side() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), &rising());
    let cfg = config(dir.path(), strategy(dir.path(), ROUND_TRIP), data);
    let report = run(&cfg);
    assert_eq!(report.fills, 2, "{}", report.summary());
    assert_eq!(report.trips.len(), 1);
    let t = &report.trips[0];
    // Bought at the 3rd quote's ask (20002 + a tick), sold at the 8th's bid.
    assert_eq!((t.side, t.size), ("long", 1));
    assert_eq!((t.entry_price, t.exit_price), (20_002.25, 20_007.0));
    assert_eq!((t.entry_ms, t.exit_ms), (T0_MS + 2000, T0_MS + 7000));
    // 4.75 points × $2 a point on MNQ; $0.50 a side.
    assert!((t.gross - 9.5).abs() < 1e-9, "{t:?}");
    assert!((t.commission - 1.0).abs() < 1e-9, "{t:?}");
    let summary = report.summary();
    assert!(summary.contains("net P&L          8.50"), "{summary}");
    assert!(summary.contains("win rate         100.0%"), "{summary}");
    assert_eq!(report.quotes, 12);
}

#[test]
fn slippage_worsens_market_fills_by_whole_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), &rising());
    let mut cfg = config(dir.path(), strategy(dir.path(), ROUND_TRIP), data);
    cfg.slippage_ticks = 2;
    let report = run(&cfg);
    let t = &report.trips[0];
    assert_eq!((t.entry_price, t.exit_price), (20_002.75, 20_006.5));
}

#[test]
fn the_same_inputs_give_byte_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), &rising());
    let cfg = config(dir.path(), strategy(dir.path(), ROUND_TRIP), data);
    let outs: Vec<(String, Vec<u8>, Vec<u8>)> = (0..2)
        .map(|i| {
            let report = run(&cfg);
            let out = dir.path().join(format!("out{i}"));
            backtest::write_csv(&report, &out).unwrap();
            (
                report.summary(),
                std::fs::read(out.join("trades.csv")).unwrap(),
                std::fs::read(out.join("equity.csv")).unwrap(),
            )
        })
        .collect();
    assert_eq!(outs[0], outs[1]);
    let trades = String::from_utf8(outs[0].1.clone()).unwrap();
    assert_eq!(trades.lines().count(), 2, "{trades}");
    assert!(
        trades.lines().nth(1).unwrap().starts_with(
            "2025-01-02T15:00:02.000Z,2025-01-02T15:00:07.000Z,CON.F.US.MNQ.H25,long,1,20002.25,20007,9.50,1.00,8.50"
        ),
        "{trades}"
    );
}

#[test]
fn an_order_the_risk_guard_refuses_stays_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), &rising());
    let body = ROUND_TRIP.replace("size = 1 }", "size = 2 }");
    let mut cfg = config(dir.path(), strategy(dir.path(), &body), data);
    cfg.limits.max_order_size = 1;
    let report = run(&cfg);
    assert_eq!(report.fills, 0, "{}", report.summary());
    assert!(report.trips.is_empty());
    // The same orders within the limit fill.
    cfg.limits.max_order_size = 2;
    assert_eq!(run(&cfg).fills, 2);
}

#[test]
fn no_recording_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let cfg = config(
        dir.path(),
        strategy(dir.path(), ROUND_TRIP),
        dir.path().join("data"),
    );
    let err = backtest::run(&cfg).unwrap_err().to_string();
    assert!(err.contains("no recordings under"), "{err}");
}

#[test]
fn a_strategy_that_does_not_load_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), &rising());
    let cfg = config(dir.path(), strategy(dir.path(), "return {"), data);
    let err = backtest::run(&cfg).unwrap_err().to_string();
    assert!(err.contains("strategy strat did not load"), "{err}");
}
