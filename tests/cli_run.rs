//! `moontick run`, the real binary: with no credentials it says so first, trades the shipped
//! strategies against its embedded simulator, and on SIGTERM stops them, saves state and exits
//! 0. With live credentials but no account id it lists the accounts and refuses to trade.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn run_without_credentials_trades_the_shipped_strategies_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies"),
        &dir.path().join("strategies"),
    );
    // The shipped breakout trades 1-minute bars over a 20-bar channel: hours on a quiet day.
    // The same file on 1-second bars and a 3-bar channel trades within seconds on the simulator.
    let breakout = dir.path().join("strategies/breakout.lua");
    let source = std::fs::read_to_string(&breakout).unwrap();
    let fast = source
        .replace("\"1m\"", "\"1s\"")
        .replace("lookback = 20", "lookback = 3")
        .replace("atr_len = 14", "atr_len = 3");
    assert!(
        fast.contains("bars = { \"1s\" }")
            && fast.contains("lookback = 3")
            && fast.contains("atr_len = 3"),
        "breakout.lua changed shape; update this test"
    );
    std::fs::write(&breakout, fast).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .arg("run")
        .current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", "info")
        .env("PORT", "0")
        .env("BIND_ADDR", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.contains("built-in simulator"), "first line: {first}");

    // The breakout strategy enters once a bar closes outside its channel: wait for a fill.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let traded = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            let done = line.contains("fill for breakout: ");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(traded, "no fill within 60 s; log:\n{}", seen.join("\n"));

    let pid = child.id().unwrap() as i32;
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    for name in ["breakout", "session_guard", "tradingview"] {
        assert!(
            dir.path()
                .join(format!("state/simulator-10001/{name}.json"))
                .exists(),
            "{name} state saved"
        );
    }
    let breakout: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/simulator-10001/breakout.json")).unwrap(),
    )
    .unwrap();
    assert!(breakout["entries"].as_i64().unwrap() >= 1, "{breakout}");
}

#[tokio::test]
async fn live_credentials_without_an_account_id_list_the_accounts_and_exit() {
    let sim = start_sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("strategies")).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .arg("run")
        .current_dir(dir.path())
        .env_clear()
        .env("PROJECT_X_API_URL", sim.url())
        .env("PROJECT_X_USERNAME", USER)
        .env("PROJECT_X_API_KEY", KEY)
        .env("PORT", "0")
        .env("BIND_ADDR", "127.0.0.1")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PROJECT_X_ACCOUNT_ID"), "{stderr}");
    assert!(
        stderr.contains(&sim.account_id().to_string()),
        "lists the accounts: {stderr}"
    );
    assert_eq!(
        sim.stats().calls(moontick::gateway::Endpoint::OrderPlace),
        0
    );
}
