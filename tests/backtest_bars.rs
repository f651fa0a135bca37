//! `moontick backtest --bars TF --from DAY --to DAY` against the built-in simulator over
//! loopback: the range fetched through `History/retrieveBars` and cached under RECORD_DIR
//! (a second run makes no request: the simulator is gone by then), `on_bar` sees exactly the
//! simulator's bars, derived quotes follow the documented order, a trade placed on a bar fills
//! at the derived price, a day still trading is never cached, and bad input is a clear error.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Days, NaiveDate, Utc};
use moontick::backtest::{self, BacktestConfig, BarsRange, Report};
use moontick::bars::Timeframe;
use moontick::config::Config;
use moontick::gateway::requests::RetrieveBarsRequest;
use moontick::gateway::wire::BarUnit;
use moontick::gateway::{Credentials, Endpoint, TransportOptions};
use moontick::risk::RiskLimits;
use moontick::secret::Secret;
use moontick::sim::{SimConfig, Simulator};

/// Every strategy log line of this test binary (tests tag their own).
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_env_filter("moontick::strategy=info")
            .with_ansi(false)
            .without_time()
            .with_writer(|| Sink)
            .init();
    });
}

/// The fields of the log lines starting with `tag|`.
fn logged(tag: &str) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    let prefix = format!("{tag}|");
    text.lines()
        .filter_map(|l| l.find(&prefix).map(|at| &l[at + prefix.len()..]))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or("")
                .split('|')
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn gateway_config(url: &str) -> Config {
    Config::from_vars(&HashMap::from([
        ("PROJECT_X_API_URL".to_string(), url.to_string()),
        ("PROJECT_X_USERNAME".to_string(), "demo".to_string()),
        ("PROJECT_X_API_KEY".to_string(), "demo".to_string()),
    ]))
    .unwrap()
}

fn start_sim(rt: &tokio::runtime::Runtime) -> Simulator {
    rt.block_on(Simulator::start(SimConfig {
        quote_rate: 0.0,
        ..SimConfig::default()
    }))
    .unwrap()
}

/// A weekday a week or more before today: the simulator's synthetic history, over.
fn past_day() -> NaiveDate {
    let mut d = Utc::now().date_naive() - Days::new(9);
    while matches!(d.format("%a").to_string().as_str(), "Sat" | "Sun") {
        d = d.pred_opt().unwrap();
    }
    d
}

/// The instants CME trading day `day` spans.
fn span(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    moontick::cme::trading_day_span(day.and_hms_opt(12, 0, 0).unwrap().and_utc())
}

fn config(dir: &Path, body: &str, range: BarsRange) -> BacktestConfig {
    let path = dir.join("strat.lua");
    std::fs::write(&path, body).unwrap();
    BacktestConfig {
        strategies: vec![path],
        data: PathBuf::new(),
        bars: Some(range),
        commission: Some(0.0),
        slippage_ticks: 0,
        limits: RiskLimits {
            max_order_size: 5,
            max_position: 5,
            daily_loss_limit: 1e9,
            max_orders_per_minute: 60,
        },
        balance: 50_000.0,
        work_dir: dir.join("out/.strategies"),
    }
}

fn range(tf: &str, from: NaiveDate, to: NaiveDate, cache: &Path, gateway: Config) -> BarsRange {
    BarsRange {
        timeframe: Timeframe::parse(tf).unwrap(),
        from,
        to,
        cache: Some(cache.to_owned()),
        gateway,
    }
}

/// Logs every bar and quote it sees; buys on the 3rd bar, sells on the 6th.
fn witness(tag: &str) -> String {
    format!(
        r#"
local M = {{ symbols = {{ "MNQ" }}, bars = {{ "1m" }}, bars_history = 5 }}
local n = 0
function M.on_bar(b)
  n = n + 1
  bot.log.info(string.format("{tag}|bar|%.0f|%.2f|%.2f|%.2f|%.2f|%d", b.time, b.open, b.high,
    b.low, b.close, b.volume))
  if n == 3 then bot.buy{{ symbol = "MNQ", size = 1 }} end
  if n == 6 then bot.sell{{ symbol = "MNQ", size = 1 }} end
end
function M.on_quote(q)
  bot.log.info(string.format("{tag}|quote|%.3f|%.2f|%.2f|%.2f", q.time, q.bid, q.ask, q.last))
end
return M
"#
    )
}

fn run(cfg: &BacktestConfig) -> Report {
    backtest::run(cfg).unwrap_or_else(|e| panic!("the backtest runs: {e:#}"))
}

#[test]
fn a_range_is_fetched_once_cached_and_played_as_bars_and_derived_quotes() {
    capture_logs();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = start_sim(&rt);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("rec");
    let day = past_day();
    let gateway = gateway_config(&sim.url());
    let cfg = config(
        dir.path(),
        &witness("first"),
        range("1m", day, day, &cache, gateway.clone()),
    );
    let report = run(&cfg);
    // One request for the day and one for the day before it (five bars of history).
    let requests = sim.stats().calls(Endpoint::RetrieveBars);
    assert_eq!(requests, 2);

    // The simulator's own bars of that day, oldest first.
    let contract = sim.contract_id("MNQ").unwrap();
    let (start, end) = span(day);
    let client = moontick::gateway::connect(
        &sim.url(),
        None,
        Some(Credentials {
            username: "demo".into(),
            api_key: Secret::new("demo"),
        }),
        TransportOptions::default(),
    )
    .unwrap();
    let mut want = rt
        .block_on(client.retrieve_bars(&RetrieveBarsRequest {
            contract_id: contract.clone(),
            live: false,
            start_time: start.into(),
            end_time: end.into(),
            unit: BarUnit::Minute,
            unit_number: 1,
            limit: 20_000,
            include_partial_bar: false,
        }))
        .unwrap();
    want.reverse();
    assert!(want.len() > 1000, "{} bars", want.len());
    let row = |b: &moontick::gateway::wire::Bar| {
        vec![
            "bar".to_string(),
            b.t.0.timestamp().to_string(),
            format!("{:.2}", b.o),
            format!("{:.2}", b.h),
            format!("{:.2}", b.l),
            format!("{:.2}", b.c),
            b.v.to_string(),
        ]
    };
    let seen = logged("first");
    let bars: Vec<&Vec<String>> = seen.iter().filter(|r| r[0] == "bar").collect();
    let expected: Vec<Vec<String>> = want.iter().map(row).collect();
    assert_eq!(bars.len(), expected.len(), "one on_bar per bar of the day");
    for (got, want) in bars.iter().zip(&expected) {
        assert_eq!(*got, want);
    }

    // Four derived quotes per bar, 15 s apart: open, the extreme nearer the open, the
    // other, close; bid = ask = last.
    let quotes: Vec<&Vec<String>> = seen.iter().filter(|r| r[0] == "quote").collect();
    assert_eq!(quotes.len(), 4 * want.len());
    for (b, four) in want.iter().zip(quotes.chunks(4)) {
        let nearer_high = b.h - b.o <= b.o - b.l;
        let path = if nearer_high {
            [b.o, b.h, b.l, b.c]
        } else {
            [b.o, b.l, b.h, b.c]
        };
        for (k, q) in four.iter().enumerate() {
            let t = b.t.0.timestamp() + 15 * k as i64;
            let p = format!("{:.2}", path[k]);
            assert_eq!(**q, ["quote", &format!("{t}.000"), &p, &p, &p], "{b:?}");
        }
    }

    // The buy on the 3rd bar fills at its close (the touch until the next bar opens), the
    // sell on the 6th at that one's.
    assert_eq!(report.trips.len(), 1, "{}", report.summary());
    let t = &report.trips[0];
    assert_eq!(
        (t.entry_price, t.exit_price),
        (want[2].c, want[5].c),
        "{t:?}"
    );

    // Cached in the documented layout: the day's bars, as fetched.
    let file = cache
        .join("bars/127.0.0.1_".to_string() + &sim.addr().port().to_string())
        .join(&contract)
        .join("1m")
        .join(format!("{day}.csv"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text.lines().count(),
        want.len() + 1,
        "a header and a line a bar"
    );
    assert!(text.starts_with("time,open,high,low,close,volume\n"));

    // The simulator gone, the same run reads the cache and makes no request at all.
    rt.block_on(sim.shutdown());
    let mut again = cfg.clone();
    std::fs::write(&again.strategies[0], witness("second")).unwrap();
    again.work_dir = dir.path().join("out2/.strategies");
    let second = run(&again);
    assert_eq!(second.trades_csv(), report.trades_csv());
    let replay: Vec<Vec<String>> = logged("second");
    assert_eq!(replay, seen, "the cache plays the same bars and quotes");
}

#[test]
fn a_day_still_trading_is_fetched_every_run_and_never_cached() {
    capture_logs();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = start_sim(&rt);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("rec");
    let today = moontick::cme::trading_day(Utc::now());
    let body = r#"local M = { symbols = { "MNQ" }, bars = { "15m" }, bars_history = 2 }
return M"#;
    let cfg = config(
        dir.path(),
        body,
        range("5m", today, today, &cache, gateway_config(&sim.url())),
    );
    run(&cfg);
    let first = sim.stats().calls(Endpoint::RetrieveBars);
    assert_eq!(first, 2, "today and the day before it");
    let dir_5m = cache
        .join("bars/127.0.0.1_".to_string() + &sim.addr().port().to_string())
        .join(sim.contract_id("MNQ").unwrap())
        .join("5m");
    let cached: Vec<String> = std::fs::read_dir(&dir_5m)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "only the day before: {cached:?}");
    assert!(!cached.contains(&format!("{today}.csv")));
    run(&cfg);
    assert_eq!(
        sim.stats().calls(Endpoint::RetrieveBars),
        first + 1,
        "today again, the day before from the cache"
    );
    rt.block_on(sim.shutdown());
}

/// Errors found before any network call: the simulator is never started for them.
#[test]
fn a_bad_range_or_timeframe_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let no_gateway = Config::from_vars(&HashMap::new()).unwrap();
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    let one_m = r#"local M = { symbols = { "MNQ" }, bars = { "1m" } } return M"#;
    let cases = [
        (
            one_m,
            range(
                "1m",
                day("2026-11-06"),
                day("2026-11-02"),
                dir.path(),
                no_gateway.clone(),
            ),
            "--to 2026-11-02 is before --from 2026-11-06",
        ),
        (
            one_m,
            range(
                "1m",
                day("2026-11-07"),
                day("2026-11-08"),
                dir.path(),
                no_gateway.clone(),
            ),
            "holds no CME trading day",
        ),
        (
            one_m,
            range(
                "4h",
                day("2026-11-02"),
                day("2026-11-06"),
                dir.path(),
                no_gateway.clone(),
            ),
            "--bars 4h: bars are played within their interval",
        ),
        (
            one_m,
            range(
                "1s",
                day("2026-01-05"),
                day("2026-11-06"),
                dir.path(),
                no_gateway.clone(),
            ),
            "at most 2000000 bars per run",
        ),
        (
            r#"local M = { symbols = { "MNQ" }, bars = { "30s" } } return M"#,
            range(
                "1m",
                day("2026-11-02"),
                day("2026-11-06"),
                dir.path(),
                no_gateway.clone(),
            ),
            "declares 30s bars of MNQ, which cannot be built from --bars 1m",
        ),
    ];
    for (body, r, want) in cases {
        let e = backtest::run(&config(dir.path(), body, r)).unwrap_err();
        assert!(format!("{e:#}").contains(want), "{e:#}");
    }
}

#[test]
fn the_cli_refuses_an_unknown_timeframe_a_bad_date_and_a_missing_day() {
    let dir = tempfile::tempdir().unwrap();
    let strat = dir.path().join("s.lua");
    std::fs::write(&strat, r#"local M = { symbols = { "MNQ" } } return M"#).unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--bars", "7m", "--from", "2026-11-02", "--to", "2026-11-06"],
            "unknown timeframe '7m'",
        ),
        (
            &["--bars", "1m", "--from", "2026-13-01", "--to", "2026-11-06"],
            "a CME trading day is written YYYY-MM-DD",
        ),
        (&["--bars", "1m", "--from", "2026-11-02"], "--to <TO>"),
        (&["--from", "2026-11-02", "--to", "2026-11-06"], "--bars"),
    ];
    for (args, want) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .arg("backtest")
            .arg(&strat)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

/// Without credentials the CLI fetches from the built-in simulator, as `moontick run` trades
/// against it, and caches under `RECORD_DIR/bars/simulator/`.
#[test]
fn the_cli_without_credentials_backtests_the_simulators_bars() {
    let dir = tempfile::tempdir().unwrap();
    let strat = dir.path().join("s.lua");
    std::fs::write(
        &strat,
        r#"local M = { symbols = { "MNQ" }, bars = { "15m" }, bars_history = 4 }
local n = 0
function M.on_bar(b)
  n = n + 1
  if n == 2 then bot.buy{ symbol = "MNQ", size = 1 } end
  if n == 4 then bot.sell{ symbol = "MNQ", size = 1 } end
end
return M"#,
    )
    .unwrap();
    let day = past_day().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RECORD_DIR", dir.path().join("rec"))
        .args([
            "backtest", "s.lua", "--bars", "5m", "--from", &day, "--to", &day,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("built-in simulator"), "{stdout}");
    assert!(stdout.contains("trades           1"), "{stdout}");
    let bars = dir.path().join("rec/bars/simulator");
    let contracts: Vec<_> = std::fs::read_dir(&bars).unwrap().flatten().collect();
    let contract = contracts
        .iter()
        .find(|e| e.path().is_dir())
        .expect("a contract directory");
    assert!(
        contract.path().join(format!("5m/{day}.csv")).is_file(),
        "{:?}",
        contract.path()
    );
    assert!(bars.join("contracts.json").is_file());
}
