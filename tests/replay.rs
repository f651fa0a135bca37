//! `moontick replay` over loopback: a recording written here plays in scaled real time (about
//! its length divided by the speed), `/status` and the dashboard say it is a replay and show the
//! strategy's position and fills while it plays, the summary at the end is the backtest's, the
//! server stays up after it, and bad arguments are clear errors.

mod backtest_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backtest_support::T0_MS;
use moontick::backtest::{self, BacktestConfig};
use moontick::config::Config;
use moontick::replay::{ReplayConfig, Speed};
use serde_json::Value;

/// Quotes recorded, one a second.
const QUOTES: i64 = 40;

/// One quote a second for [`QUOTES`] seconds; the bid rises a point a second.
fn rising(dir: &Path) -> PathBuf {
    let bids: Vec<f64> = (0..QUOTES).map(|i| 20_000.0 + i as f64).collect();
    backtest_support::record(dir, &bids)
}

/// Buys on the 3rd quote, sells on the 35th: a position held for most of the recording.
const HOLD: &str = r#"
local M = { symbols = { "MNQ" } }
local n = 0
function M.on_quote(q)
  n = n + 1
  if n == 3 then assert(bot.buy{ symbol = "MNQ", size = 1 }) end
  if n == 35 then assert(bot.sell{ symbol = "MNQ", size = 1 }) end
end
return M
"#;

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let data = rising(dir);
    let strategy = dir.join("hold.lua");
    std::fs::write(&strategy, HOLD).unwrap();
    (data, strategy)
}

fn backtest_config(dir: &Path, strategy: PathBuf, data: PathBuf, work: &str) -> BacktestConfig {
    BacktestConfig {
        work_dir: dir.join(work).join(".strategies"),
        ..backtest_support::config(dir, strategy, data)
    }
}

/// Loopback without a secret: the dashboard and `/status` open without a login.
fn config(dir: &Path) -> Config {
    let vars: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1".to_string()),
        (
            "STRATEGIES_DIR",
            dir.join("strategies").display().to_string(),
        ),
        ("STATE_DIR", dir.join("state").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Config::from_vars(&vars).unwrap()
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let r = http.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_plays_at_speed_shows_itself_and_ends_with_the_backtests_summary() {
    moontick::tls::ensure_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (data, strategy) = setup(dir.path());
    let bt = backtest_config(dir.path(), strategy.clone(), data.clone(), "replay");
    let cfg = ReplayConfig {
        backtest: bt,
        speed: Speed::Times(10.0),
        exit_at_end: false,
        out: Some(dir.path().join("replay")),
    };
    let config = config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(async move {
        moontick::replay::replay(&config, cfg, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // While it plays: a replay, everywhere a trader looks, holding the strategy's position.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        assert!(
            Instant::now() < deadline,
            "no position shown while replaying"
        );
        if let Ok(r) = http.get(format!("{url}/status")).send().await
            && let Ok(s) = r.json::<Value>().await
            && s["positions"].as_array().is_some_and(|p| !p.is_empty())
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["mode"], "replay", "{status}");
    assert_eq!(status["replay"]["finished"], false, "{status}");
    assert_eq!(status["replay"]["speed"], "10x", "{status}");
    assert!(
        status["connections"]["gateway"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{status}"
    );
    assert_eq!(status["positions"][0]["size"], 1, "{status}");
    let fills = status["fills"].as_array().unwrap();
    assert_eq!(fills.len(), 1, "the entry: {status}");
    assert_eq!(fills[0]["strategy"], "hold", "{status}");
    assert_eq!(
        fills[0]["price"], 20_002.25,
        "the 3rd quote's ask: {status}"
    );
    // The replay clock, not the wall's.
    let clock = status["now_ms"].as_i64().unwrap();
    assert!((T0_MS..T0_MS + QUOTES * 1000).contains(&clock), "{status}");
    let (code, page) = get(&http, &format!("{url}/")).await;
    assert_eq!(code, 200);
    assert!(page.contains(r#"id="replay""#), "the banner is on the page");
    let (code, metrics) = get(&http, &format!("{url}/metrics")).await;
    assert_eq!(code, 200);
    assert!(metrics.contains("moontick_"), "{metrics}");
    let (_, js) = get(&http, &format!("{url}/assets/app.js")).await;
    assert!(js.contains(r#"s.mode === "replay""#), "the page shows it");

    // The end: the server stays up, saying the replay is over.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s: Value = http
            .get(format!("{url}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["replay"]["finished"] == true {
            break s;
        }
        assert!(Instant::now() < deadline, "the replay never ended: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    // 39 recorded seconds at 10x: 3.9 s, paced (never faster), and far from real time.
    assert!(elapsed >= Duration::from_millis(3800), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(39), "{elapsed:?}");
    assert_eq!(status["fills"].as_array().unwrap().len(), 2, "{status}");
    assert!(
        status["positions"].as_array().unwrap().is_empty(),
        "{status}"
    );
    let (code, ready) = get(&http, &format!("{url}/readyz")).await;
    assert_eq!(code, 503, "{ready}");
    assert!(ready.contains("the replay has ended"), "{ready}");
    assert!(
        !task.is_finished(),
        "the server stays up until the shutdown"
    );
    stop.send(()).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .expect("the replay runs");

    // The backtest of the same files: the same fills, the same summary.
    let bt = backtest_config(dir.path(), strategy, data, "backtest");
    let expected = tokio::task::spawn_blocking(move || backtest::run(&bt).unwrap())
        .await
        .unwrap();
    assert_eq!(report.fills, 2);
    assert_eq!(report.summary(), expected.summary());
    assert_eq!(report.trades_csv(), expected.trades_csv());
    let trades = std::fs::read_to_string(dir.path().join("replay/trades.csv")).unwrap();
    assert_eq!(trades, expected.trades_csv());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_before_the_end_stops_the_replay_there() {
    moontick::tls::ensure_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (data, strategy) = setup(dir.path());
    let cfg = ReplayConfig {
        backtest: backtest_config(dir.path(), strategy, data, "replay"),
        // 39 recorded seconds as recorded: stopped well before the end.
        speed: Speed::Times(1.0),
        exit_at_end: false,
        out: None,
    };
    let config = config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started = Instant::now();
    let report = moontick::replay::replay(&config, cfg, listener, async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    })
    .await
    .expect("the replay runs");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        report.quotes >= 1 && report.quotes < QUOTES as u64,
        "{} quotes played",
        report.quotes
    );
}

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    backtest_support::moontick(dir, &[&["replay"], args].concat())
}

#[test]
fn the_cli_plays_to_the_end_and_prints_the_backtests_summary() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let ok = cli(
        dir.path(),
        &[
            "hold.lua",
            "--data",
            "data",
            "--speed",
            "max",
            "--exit-at-end",
            "--commission",
            "0.5",
        ],
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("REPLAY of data at max"), "{stdout}");
    assert!(stdout.contains("trades           1"), "{stdout}");
    // Logs say it too.
    assert!(stderr.contains("REPLAY"), "{stderr}");
    assert!(dir.path().join("replay/trades.csv").exists());

    let backtest = backtest_support::moontick(
        dir.path(),
        &[
            "backtest",
            "hold.lua",
            "--data",
            "data",
            "--commission",
            "0.5",
        ],
    );
    let summary = |out: &str| {
        out.lines()
            .filter(|l| !l.contains("REPLAY") && !l.contains(" in "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        summary(&stdout),
        summary(&String::from_utf8_lossy(&backtest.stdout))
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    for (args, says) in [
        (
            &["hold.lua", "--data", "data", "--speed", "0"][..],
            "not a speed",
        ),
        (
            &["hold.lua", "--data", "data", "--speed", "fast"][..],
            "not a speed",
        ),
        (&["hold.lua", "--data", "nowhere"][..], "nowhere"),
        (&["hold.lua"][..], "--data"),
        (&["--data", "data"][..], "no strategy files given"),
    ] {
        let out = cli(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
