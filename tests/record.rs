//! Recording end to end: `moontick run` on its embedded simulator records the very quotes a
//! strategy saw, in the same order; `RECORD_DIR=` (empty) records nothing; `moontick record
//! MNQ ES`, the real binary, records quotes, trades and depth without trading and appends to the
//! same files when run again the same day.

mod common;
mod run_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::logs;
use moontick::feed::record::{self, Recorded, RecordedEvent};
use run_support::{start, state, strategy, vars};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Keeps every quote it is handed, in order, in its saved state.
const WITNESS: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_start(ctx)
  state.seen = state.seen or {}
end
function M.on_quote(q)
  local s = state.seen
  s[#s + 1] = { q.bid or false, q.ask or false, q.last or false, q.volume or false, q.time }
end
return M
"#;

fn recorded(dir: &Path) -> Vec<RecordedEvent> {
    if !dir.exists() {
        return Vec::new();
    }
    record::events(dir)
        .unwrap()
        .map(|e| e.expect("a readable recording"))
        .collect()
}

fn mnq_quotes(events: &[RecordedEvent]) -> Vec<Value> {
    let num = |v: Option<f64>| v.map_or(Value::Bool(false), Value::from);
    events
        .iter()
        .filter_map(|e| match &e.event {
            Recorded::Quote(q) if &*q.symbol == "MNQ" => Some(Value::from(vec![
                num(q.bid),
                num(q.ask),
                num(q.last),
                q.volume.map_or(Value::Bool(false), Value::from),
                Value::from(q.time_ms as f64 / 1000.0),
            ])),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_records_the_quotes_a_strategy_saw_in_the_order_it_saw_them() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    strategy(dir.path(), "witness", WITNESS);
    let running = start(&vars(dir.path(), &[])).await;
    let data = dir.path().join("data");
    // Frames are written every second: wait until the recording holds a dozen quotes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while mnq_quotes(&recorded(&data)).len() < 12 {
        assert!(tokio::time::Instant::now() < deadline, "no quotes recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = running
        .http
        .get(format!("{}/metrics", running.url))
        .header("x-webhook-secret", run_support::SECRET)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let written: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("moontick_record_written_total "))
        .unwrap_or_else(|| panic!("no record_written in {metrics}"))
        .parse()
        .unwrap();
    assert!(written >= 12.0, "{written}");
    assert!(
        metrics.contains("moontick_record_dropped_total{reason=\"queue\"} 0"),
        "{metrics}"
    );
    running.stop().await.unwrap();

    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(state(dir.path()).join("simulator-10001/witness.json")).unwrap(),
    )
    .unwrap();
    let seen = saved["seen"]
        .as_array()
        .expect("the witness saved what it saw")
        .clone();
    assert!(seen.len() >= 12, "the strategy saw {} quotes", seen.len());
    let events = recorded(&data);
    let quotes = mnq_quotes(&events);
    // The feed records from its first quote to its last, the strategy sees from its start to
    // its stop: what it saw is one unbroken run of the recording.
    let at = quotes
        .iter()
        .position(|q| *q == seen[0])
        .unwrap_or_else(|| panic!("first quote seen {} not recorded in {quotes:?}", seen[0]));
    assert_eq!(
        quotes[at..(at + seen.len()).min(quotes.len())],
        seen[..],
        "the recording holds the quotes seen, in order"
    );
    assert!(
        events.windows(2).all(|w| w[0].recv_us <= w[1].recv_us),
        "receive times never go back"
    );
    let files = record::scan(&data).unwrap();
    assert_eq!(files.len(), 1, "one contract, one day: {files:?}");
    assert!(files[0].contract.contains("MNQ"), "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_record_dir_records_nothing() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    strategy(dir.path(), "witness", WITNESS);
    let running = start(&vars(dir.path(), &[("RECORD_DIR", String::new())])).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await.unwrap();
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(state(dir.path()).join("simulator-10001/witness.json")).unwrap(),
    )
    .unwrap();
    assert!(
        !saved["seen"].as_array().unwrap().is_empty(),
        "quotes flowed: {saved}"
    );
    assert!(!dir.path().join("data").exists());
    assert!(record::scan(dir.path()).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_record_dir_is_one_error_and_trading_goes_on() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    strategy(dir.path(), "witness", WITNESS);
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let running = start(&vars(
        dir.path(),
        &[("RECORD_DIR", blocker.join("data").display().to_string())],
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await.unwrap();
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(state(dir.path()).join("simulator-10001/witness.json")).unwrap(),
    )
    .unwrap();
    assert!(
        !saved["seen"].as_array().unwrap().is_empty(),
        "quotes flowed: {saved}"
    );
    let text = logs().text();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("recording is off") && l.contains("a-file"))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("Trading goes on"), "{}", errors[0]);
}

/// Runs `moontick record MNQ ES` on the embedded simulator for `secs`, then SIGTERM; returns
/// its stdout.
async fn record_for(dir: &Path, secs: f64) -> Vec<String> {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .args(["record", "MNQ", "ES"])
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "info")
        .env("RECORD_DIR", dir.join("rec"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lines = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            let started = line.contains("moontick: recording");
            lines.push(line);
            if started {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never started recording: {lines:?}"));
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let pid = child.id().unwrap() as i32;
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    while let Ok(Some(line)) = stdout.next_line().await {
        lines.push(line);
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{lines:?}");
    lines
}

#[tokio::test]
async fn moontick_record_records_quotes_trades_and_depth_and_appends_on_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let first = record_for(dir.path(), 2.5).await;
    assert!(
        first.iter().any(|l| l.contains("MNQ (CON.F.US.MNQ")),
        "{first:?}"
    );
    let last = first.last().unwrap();
    assert!(
        last.contains("recorded") && last.contains("(0 dropped)"),
        "{last}"
    );
    let rec = dir.path().join("rec");
    let after_first = recorded(&rec).len();

    record_for(dir.path(), 1.5).await;
    let files = record::scan(&rec).unwrap();
    let contracts: Vec<&str> = files.iter().map(|f| f.contract.as_str()).collect();
    assert!(
        contracts.iter().any(|c| c.contains(".MNQ."))
            && contracts
                .iter()
                .any(|c| c.contains(".EP.") || c.contains(".ES.")),
        "a file per contract: {contracts:?}"
    );
    let mut kinds: HashMap<String, [usize; 3]> = HashMap::new();
    for f in &files {
        let r = record::Recording::open(&f.path).unwrap();
        let symbol = r.header().unwrap().symbol.to_string();
        for e in r {
            let k = kinds.entry(symbol.clone()).or_default();
            match e.unwrap().event {
                Recorded::Quote(_) => k[0] += 1,
                Recorded::Trades(_) => k[1] += 1,
                Recorded::Depth(_) => k[2] += 1,
            }
        }
    }
    for symbol in ["MNQ", "ES"] {
        let [q, t, d] = kinds[symbol];
        assert!(
            q >= 4 && t >= 1 && d >= 1,
            "{symbol}: {q} quotes, {t} trades, {d} depth"
        );
    }
    let all = recorded(&rec);
    assert!(all.len() > after_first, "the second run appended");
    assert!(all.windows(2).all(|w| w[0].recv_us <= w[1].recv_us));
}
