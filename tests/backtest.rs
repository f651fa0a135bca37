//! `moontick backtest` as a library call: a Lua strategy over a recording written here, through
//! the engine core, risk guard and the simulator's matching engine, on a simulated clock.

mod backtest_support;

use std::path::{Path, PathBuf};

use backtest_support::*;
use moontick::backtest::{self, BacktestConfig, Report};
use moontick::feed::record::Recorded;

fn strategy(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("strat.lua");
    std::fs::write(&path, body).unwrap();
    path
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
    // The summary, then trades.csv, equity.csv and report.html.
    let outs: Vec<(String, [Vec<u8>; 3])> = (0..2)
        .map(|i| {
            let report = run(&cfg);
            let out = dir.path().join(format!("out{i}"));
            backtest::write_outputs(&report, &out).unwrap();
            let read = |name: &str| std::fs::read(out.join(name)).unwrap();
            (
                report.summary(),
                [read("trades.csv"), read("equity.csv"), read("report.html")],
            )
        })
        .collect();
    assert_eq!(outs[0], outs[1]);
    // The page carries its data and its chart library: nothing fetched when it is opened.
    let html = String::from_utf8(outs[0].1[2].clone()).unwrap();
    assert!(
        html.contains("uPlot") && !html.contains("src=\"http") && !html.contains("href=\"http")
    );
    assert!(
        html.contains(r#""entry_price":20002.25"#),
        "the trade is in the page's data"
    );
    let trades = String::from_utf8(outs[0].1[0].clone()).unwrap();
    assert_eq!(trades.lines().count(), 2, "{trades}");
    assert!(
        trades.lines().nth(1).unwrap().starts_with(
            "2025-01-02T15:00:02.000Z,2025-01-02T15:00:07.000Z,CON.F.US.MNQ.H25,long,1,20002.25,20007,9.50,1.00,8.50"
        ),
        "{trades}"
    );
}

/// Several strategies step through each event one after another in file-name order, each
/// order answered before the next strategy runs: `a` (1 contract) always comes before `b`
/// (2), and with room for 2 in all the guard always refuses `b`'s.
#[test]
fn several_strategies_take_each_event_in_file_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), &rising());
    let body = |size: u32| {
        format!(
            r#"
local M = {{ symbols = {{ "MNQ" }} }}
local n, held = 0, false
function M.on_quote(q)
  n = n + 1
  if n == 3 then
    held = bot.buy{{ symbol = "MNQ", size = {size} }} ~= nil
  elseif n == 8 and held then
    bot.sell{{ symbol = "MNQ", size = {size} }}
  end
end
return M
"#
        )
    };
    let files = dir.path().join("two");
    std::fs::create_dir_all(&files).unwrap();
    // Written in the other order, so the directory's order is not what decides.
    std::fs::write(files.join("b.lua"), body(2)).unwrap();
    std::fs::write(files.join("a.lua"), body(1)).unwrap();
    let mut cfg = config(dir.path(), files.join("b.lua"), data);
    cfg.strategies.push(files.join("a.lua"));
    cfg.limits.max_position = 2;
    for _ in 0..3 {
        let report = run(&cfg);
        assert_eq!(report.fills, 2, "{}", report.summary());
        assert_eq!(report.trips.len(), 1);
        assert_eq!(report.trips[0].size, 1, "a's order went first");
    }
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

#[test]
fn two_strategy_files_of_one_name_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), &rising());
    let first = strategy(dir.path(), ROUND_TRIP);
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let second = strategy(&other_dir, ROUND_TRIP);
    let mut cfg = config(dir.path(), first, data);
    cfg.strategies.push(second);
    let err = backtest::run(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("have the same name") && err.contains("other"),
        "{err}"
    );
}

/// On the first quote: a buy limit at 19997 with a bracket (stop loss 20 ticks, take profit 16).
const LIMIT_WITH_BRACKET: &str = r#"
local M = { symbols = { "MNQ" } }
local n = 0
function M.on_quote(q)
  n = n + 1
  if n == 1 then
    local h, why = bot.buy{ symbol = "MNQ", size = 1, type = "limit", price = 19997,
                            stop_loss_ticks = 20, take_profit_ticks = 16 }
    assert(h, why)
  end
end
return M
"#;

#[test]
fn a_limit_fills_once_the_market_crosses_it_and_its_take_profit_closes_the_trade() {
    let dir = tempfile::tempdir().unwrap();
    let bids = [
        20000.0, 20000.0, 20000.0, 19999.0, 19998.0, 19997.0, 19996.0, 19998.0, 20000.0, 20002.0,
        20004.0, 20006.0,
    ];
    let data = record(dir.path(), &bids);
    let cfg = config(dir.path(), strategy(dir.path(), LIMIT_WITH_BRACKET), data);
    let report = run(&cfg);
    assert_eq!(report.trips.len(), 1, "{}", report.summary());
    let t = &report.trips[0];
    // The ask first reaches the limit at the 7th quote (19996.25, through it: filled at the
    // touch); the take profit 16 ticks above the entry (20000.25) at the 10th (bid 20002).
    assert_eq!((t.entry_ms, t.exit_ms), (T0_MS + 6000, T0_MS + 9000));
    assert_eq!((t.entry_price, t.exit_price), (19_996.25, 20_002.0));
    assert_eq!(report.fills, 2);
}

#[test]
fn the_bracket_stop_loss_closes_a_losing_trade() {
    let dir = tempfile::tempdir().unwrap();
    let bids = [
        20000.0, 20000.0, 20000.0, 19999.0, 19998.0, 19997.0, 19996.0, 19995.0, 19993.0, 19991.0,
        19990.0, 19989.0,
    ];
    let data = record(dir.path(), &bids);
    let cfg = config(dir.path(), strategy(dir.path(), LIMIT_WITH_BRACKET), data);
    let report = run(&cfg);
    assert_eq!(report.trips.len(), 1, "{}", report.summary());
    let t = &report.trips[0];
    // Stop 20 ticks under 19996.25 is 19991.25: the bid is through it at the 10th quote.
    assert_eq!((t.entry_price, t.exit_price), (19_996.25, 19_991.0));
    assert_eq!(t.exit_ms, T0_MS + 9000);
    assert!((t.gross - -10.5).abs() < 1e-9, "{t:?}");
    assert!(report.summary().contains("win rate         0.0%"));
}

#[test]
fn a_stop_entry_triggers_when_the_market_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(dir.path(), &rising());
    let body = r#"
local M = { symbols = { "MNQ" } }
local n = 0
function M.on_quote(q)
  n = n + 1
  if n == 1 then assert(bot.buy{ symbol = "MNQ", size = 1, type = "stop", stop_price = 20003 }) end
  if n == 8 then assert(bot.sell{ symbol = "MNQ", size = 1 }) end
end
return M
"#;
    let cfg = config(dir.path(), strategy(dir.path(), body), data);
    let report = run(&cfg);
    let t = &report.trips[0];
    assert_eq!((t.entry_ms, t.entry_price), (T0_MS + 3000, 20_003.25));
    assert_eq!(t.exit_price, 20_007.0);
}

#[test]
fn timers_fire_at_their_time_between_recorded_quotes() {
    let dir = tempfile::tempdir().unwrap();
    // Quotes for five seconds, then a minute of silence.
    let quotes = [
        (0, 20_000.0),
        (1000, 20_001.0),
        (2000, 20_002.0),
        (3000, 20_003.0),
        (4000, 20_004.0),
        (60_000, 20_100.0),
    ];
    let data = record_at(dir.path(), &quotes);
    let body = r#"
local M = { symbols = { "MNQ" } }
function M.on_start()
  local t0 = bot.now()
  bot.after(2.5, function()
    assert(bot.now() - t0 == 2.5, "bot.now in the timer")
    assert(bot.buy{ symbol = "MNQ", size = 1 })
  end)
  bot.after(30, function() assert(bot.sell{ symbol = "MNQ", size = 1 }) end)
end
return M
"#;
    let cfg = config(dir.path(), strategy(dir.path(), body), data);
    let report = run(&cfg);
    assert_eq!(report.trips.len(), 1, "{}", report.summary());
    let t = &report.trips[0];
    // Each at the touch standing when it fired: the quote at 2 s, then the one at 4 s (not
    // the one that ends the silence).
    assert_eq!((t.entry_ms, t.entry_price), (T0_MS + 2500, 20_002.25));
    assert_eq!((t.exit_ms, t.exit_price), (T0_MS + 30_000, 20_004.0));
}

#[test]
fn the_daily_loss_limit_halts_and_flattens_as_live() {
    let dir = tempfile::tempdir().unwrap();
    // Falling a point a second for a minute: a long loses $2 a second.
    let bids: Vec<f64> = (0..60).map(|i| 20_000.0 - f64::from(i)).collect();
    let data = record(dir.path(), &bids);
    let body = r#"
local M = { symbols = { "MNQ" } }
local n = 0
function M.on_quote(q)
  n = n + 1
  if n == 2 or n == 40 then bot.buy{ symbol = "MNQ", size = 1 } end
end
return M
"#;
    let mut cfg = config(dir.path(), strategy(dir.path(), body), data);
    cfg.limits.daily_loss_limit = 20.0;
    let report = run(&cfg);
    // Closed by the kill switch once the loss passed $20 (ten points down), and the second
    // entry refused: the engine is halted.
    assert_eq!(report.trips.len(), 1, "{}", report.summary());
    assert_eq!(report.fills, 2);
    let t = &report.trips[0];
    assert!(t.net() <= -20.0 && t.net() > -30.0, "{t:?}");
}

#[test]
fn the_cli_prints_the_summary_and_writes_the_csv_files() {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), &rising());
    strategy(dir.path(), ROUND_TRIP);
    let run = |args: &[&str]| moontick(dir.path(), &[&["backtest"], args].concat());
    let ok = run(&[
        "strat.lua",
        "--data",
        "data",
        "--commission",
        "0.5",
        "--out",
        "out",
    ]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("net P&L          8.50"), "{stdout}");
    assert!(stdout.contains("trades           1"), "{stdout}");
    let trades = std::fs::read_to_string(dir.path().join("out/trades.csv")).unwrap();
    assert_eq!(trades.lines().count(), 2, "{trades}");
    assert!(dir.path().join("out/equity.csv").exists());
    assert!(!dir.path().join("out/.strategies").exists());

    let bad = run(&["strat.lua", "--data", "data", "--commission=-1"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("--commission must be"), "{stderr}");
    let missing = run(&["strat.lua", "--data", "nowhere"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("nowhere"), "{stderr}");
}

/// Bars in a backtest come from the recording's trades (its history too: no gateway to
/// backfill from): each `on_bar` equals the trade that made it, and a strategy can trade on
/// them.
#[test]
fn bars_are_built_from_the_recorded_trades() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = open(dir.path(), "2025-01-02", T0_MS);
    for k in 0..12i64 {
        let price = 20_000.0 + k as f64;
        let q_ms = T0_MS + k * 1000;
        assert!(f.push(q_ms * 1000, &Recorded::Quote(quote(q_ms, price))));
        // One print of 2 contracts in the middle of second k, at that second's bid.
        let t_ms = q_ms + 500;
        let t = moontick::market::Trade {
            contract: C.into(),
            symbol: "MNQ".into(),
            price,
            size: 2.0,
            side: None,
            time_ms: t_ms,
        };
        assert!(f.push(t_ms * 1000, &Recorded::Trades(vec![t])));
    }
    f.flush();
    let body = format!(
        r#"
local M = {{ symbols = {{ "MNQ" }}, bars = {{ "1s" }} }}
local n, bad = 0, false
function M.on_bar(b)
  n = n + 1
  local want = 20000 + (b.time - {t0})
  if b.open ~= want or b.high ~= want or b.low ~= want or b.close ~= want or b.volume ~= 2
     or b.timeframe ~= "1s" or b.symbol ~= "MNQ" then
    bad = true
    bot.log.error("bar", b.time, b.open, b.close, b.volume)
  end
  if bad then return end
  if n == 3 then bot.buy{{ symbol = "MNQ", size = 1 }} end
  if n == 6 then bot.sell{{ symbol = "MNQ", size = 1 }} end
end
return M
"#,
        t0 = T0_MS / 1000
    );
    let cfg = config(
        dir.path(),
        strategy(dir.path(), &body),
        dir.path().join("data"),
    );
    let report = run(&cfg);
    assert_eq!(report.trips.len(), 1, "{}", report.summary());
    let t = &report.trips[0];
    // Second 0's print is before the cut where live bars begin: it is the history's partial
    // bar, completed and closed live as any other. So the 3rd bar is second 2's; it closes when
    // second 3's print arrives, and the buy fills at second 3's ask.
    assert_eq!(
        (t.entry_price, t.exit_price),
        (20_003.25, 20_006.0),
        "{t:?}"
    );
}

/// Item 2's "bars backfilled from earlier data, like live": a backtest of day two starts its
/// bar series with day one's bars, read from the same RECORD_DIR, trimmed to `bars_history`,
/// and a strategy sees them on its very first quote.
#[test]
fn bar_series_start_with_the_earlier_recorded_days() {
    const DAY_MS: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    // Day one: five minutes, each with two prints (open, then a point higher).
    let mut f = open(dir.path(), "2025-01-02", T0_MS);
    for k in 0..5i64 {
        for (offset, price) in [(10_000, 20_000 + 10 * k), (40_000, 20_001 + 10 * k)] {
            let t_ms = T0_MS + k * 60_000 + offset;
            let t = moontick::market::Trade {
                contract: C.into(),
                symbol: "MNQ".into(),
                price: price as f64,
                size: 1.0,
                side: None,
                time_ms: t_ms,
            };
            assert!(f.push(t_ms * 1000, &Recorded::Trades(vec![t])));
        }
    }
    f.flush();
    // Day two: quotes only.
    let t1 = T0_MS + DAY_MS;
    let mut f = open(dir.path(), "2025-01-03", t1);
    for i in 0..5i64 {
        let ms = t1 + i * 1000;
        assert!(f.push(ms * 1000, &Recorded::Quote(quote(ms, 20_100.0 + i as f64))));
    }
    f.flush();
    // Buys on its first quote if and only if `bot.bars` already holds day one's last three
    // minutes (bars_history = 3), sells on the third.
    let body = format!(
        r#"
local M = {{ symbols = {{ "MNQ" }}, bars = {{ "1m" }}, bars_history = 3 }}
local n, bought = 0, false
function M.on_quote(q)
  n = n + 1
  if n == 1 then
    local b = bot.bars("MNQ", "1m", 10)
    if #b == 3 and b[1].time == {first} and b[1].open == 20020 and b[1].close == 20021
       and b[3].close == 20041 and b[3].volume == 2 then
      bought = bot.buy{{ symbol = "MNQ", size = 1 }} ~= nil
    else
      bot.log.error("history", #b, b[1] and b[1].time)
    end
  elseif n == 3 and bought then
    bot.sell{{ symbol = "MNQ", size = 1 }}
  end
end
return M
"#,
        first = (T0_MS + 2 * 60_000) / 1000
    );
    let day_two = dir.path().join("data/2025-01-03");
    let cfg = config(dir.path(), strategy(dir.path(), &body), day_two.clone());
    let report = run(&cfg);
    assert_eq!(report.trips.len(), 1, "{}", report.summary());
    assert_eq!(report.trips[0].entry_ms, t1, "on the first quote");
    // Without day one the same strategy sees no history and does not trade.
    std::fs::remove_dir_all(dir.path().join("data/2025-01-02")).unwrap();
    let report = run(&cfg);
    assert_eq!(report.fills, 0, "{}", report.summary());
}
