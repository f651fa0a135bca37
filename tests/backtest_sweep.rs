//! Parameter sweeps: a grid of a strategy's `params` run in parallel over a recording written
//! here; each row is what that combination gives alone, the rows do not depend on the threads,
//! bad params are refused before anything runs, and the CLI writes `sweep.csv`.

mod backtest_support;

use std::path::{Path, PathBuf};

use moontick::backtest::sweep::{self, Metrics, SortBy};
use moontick::backtest::{self, BacktestConfig, ParamAxis};

/// One quote a second, the bid zigzagging so that the entry and exit quote matter.
fn zigzag(dir: &Path) -> PathBuf {
    let bids = [
        20_000.0, 20_003.0, 20_001.0, 20_006.0, 20_002.0, 20_008.0, 20_004.0, 20_010.0, 20_005.0,
        20_007.0, 20_003.0, 20_009.0,
    ];
    backtest_support::record(dir, &bids)
}

/// Buys on quote `enter`, sells on quote `exit`, `size` contracts. `enter` is read when the
/// file loads, as indicators' periods are: a sweep must reach it there too.
fn strategy(enter: &str, exit: &str, size: &str) -> String {
    format!(
        r#"
local M = {{
  symbols = {{ "MNQ" }},
  params = {{ enter = {enter}, exit = {exit}, size = {size}, note = "x" }},
}}
local enter_at = M.params.enter
local p = M.params
local n = 0
function M.on_quote(q)
  n = n + 1
  if n == enter_at then
    bot.buy{{ symbol = "MNQ", size = p.size }}
  elseif n == p.exit then
    bot.sell{{ symbol = "MNQ", size = p.size }}
  end
end
return M
"#
    )
}

fn config(dir: &Path, source: &str, data: PathBuf) -> BacktestConfig {
    let path = dir.join("strat.lua");
    std::fs::write(&path, source).unwrap();
    backtest_support::config(dir, path, data)
}

fn axes(specs: &[&str]) -> Vec<ParamAxis> {
    specs.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn each_row_is_what_its_combination_gives_alone_sorted_best_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = zigzag(dir.path());
    let cfg = config(dir.path(), &strategy("3", "8", "1"), data.clone());
    let grid = axes(&["enter=2,4,6", "exit=8,10", "size=1,2"]);
    let sweep = sweep::sweep(&cfg, &grid, SortBy::NetPnl, None).unwrap();
    assert_eq!(sweep.names, ["enter", "exit", "size"]);
    assert_eq!(sweep.rows.len(), 12);
    for row in &sweep.rows {
        let v = |k: &str| {
            row.params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        // The same file with the values written in by hand, run alone.
        let alone = tempfile::tempdir().unwrap();
        let one = config(
            alone.path(),
            &strategy(&v("enter"), &v("exit"), &v("size")),
            data.clone(),
        );
        let report = backtest::run(&one).unwrap();
        assert_eq!(report.trips.len(), 1, "{:?}", row.params);
        assert_eq!(row.metrics, Metrics::of(&report), "{:?}", row.params);
    }
    let nets: Vec<f64> = sweep.rows.iter().map(|r| r.metrics.net_pnl).collect();
    assert!(nets.windows(2).all(|w| w[0] >= w[1]), "{nets:?}");
    // Bought at quote 2's ask (20003.25), sold at quote 8's bid (20010), two contracts:
    // 6.75 points × $2 × 2 less $2 of commission.
    assert_eq!(
        sweep.rows[0].params,
        [("enter", "2"), ("exit", "8"), ("size", "2")].map(|(k, v)| (k.into(), v.into()))
    );
    assert!((sweep.rows[0].metrics.net_pnl - 25.0).abs() < 1e-9);

    let by_drawdown = sweep::sweep(&cfg, &grid, SortBy::MaxDrawdown, Some(2)).unwrap();
    let dd: Vec<f64> = by_drawdown
        .rows
        .iter()
        .map(|r| r.metrics.max_drawdown)
        .collect();
    assert!(dd.windows(2).all(|w| w[0] <= w[1]), "{dd:?}");
}

#[test]
fn the_csv_is_the_same_bytes_on_one_thread_or_many() {
    let dir = tempfile::tempdir().unwrap();
    let data = zigzag(dir.path());
    let cfg = config(dir.path(), &strategy("3", "8", "1"), data);
    let grid = axes(&["enter=1,2,3,4", "exit=7,9,11"]);
    let one = sweep::sweep(&cfg, &grid, SortBy::WinRate, Some(1)).unwrap();
    let many = sweep::sweep(&cfg, &grid, SortBy::WinRate, Some(5)).unwrap();
    assert_eq!(one.csv(), many.csv());
    assert_eq!(one.csv().lines().count(), 13);
    assert!(
        one.csv().starts_with(
            "enter,exit,net_pnl,gross_pnl,commissions,trades,win_rate_pct,profit_factor,\
             max_drawdown,sharpe,time_in_market_pct\n"
        ),
        "{}",
        one.csv()
    );
    assert!(!dir.path().join("out/.strategies").exists());
}

#[test]
fn unknown_params_and_wrong_types_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = zigzag(dir.path());
    let cfg = config(dir.path(), &strategy("3", "8", "1"), data);
    let err = |grid: &[&str]| {
        sweep::sweep(&cfg, &axes(grid), SortBy::NetPnl, None)
            .unwrap_err()
            .to_string()
    };
    let e = err(&["enter=2", "lookback=10"]);
    assert!(e.contains("unknown param `lookback`"), "{e}");
    assert!(e.contains("enter, exit, note, size"), "{e}");
    let e = err(&["enter=2.5"]);
    assert!(e.contains("`2.5` is not an integer"), "{e}");
    let e = err(&["note=1", "size=big"]);
    assert!(e.contains("`big` is not an integer"), "{e}");
    assert!(!dir.path().join("out").exists(), "nothing ran");

    let mut two = cfg.clone();
    two.strategies.push(two.strategies[0].clone());
    let e = sweep::sweep(&two, &axes(&["enter=2"]), SortBy::NetPnl, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("one strategy file"), "{e}");
}

#[test]
fn the_cli_prints_the_table_and_writes_sweep_csv() {
    let dir = tempfile::tempdir().unwrap();
    zigzag(dir.path());
    std::fs::write(dir.path().join("strat.lua"), strategy("3", "8", "1")).unwrap();
    let run = |args: &[&str]| {
        let common = [
            "backtest",
            "strat.lua",
            "--data",
            "data",
            "--commission",
            "0.5",
        ];
        backtest_support::moontick(dir.path(), &[&common[..], args].concat())
    };
    let ok = run(&[
        "--param",
        "enter=2,4",
        "--param",
        "exit=8,10",
        "--sort",
        "profit_factor",
        "--out",
        "out",
    ]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("enter  exit  net_pnl"), "{stdout}");
    assert!(stdout.contains("sweep.csv in out"), "{stdout}");
    let csv = std::fs::read_to_string(dir.path().join("out/sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().starts_with("2,8,12.50,"),
        "{csv}"
    );

    let bad = run(&["--param", "entr=2"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("unknown param `entr`"), "{stderr}");
    let bad = run(&["--param", "enter=2", "--sort", "luck"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("sort by net_pnl"), "{stderr}");
}
