//! `moontick run`, the real binary on its embedded simulator: the HTTP server answers, a webhook
//! reaches a strategy, and SIGTERM drains, saves strategy state and exits 0. The secret never
//! appears in the output.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

const SECRET: &str = "run-test-secret-42";

const COUNTER: &str = r#"
local M = {}
function M.on_webhook(req)
  state.hits = (state.hits or 0) + 1
  return { ok = true, hits = state.hits }
end
return M
"#;

#[cfg(unix)]
#[tokio::test]
async fn run_serves_webhooks_and_sigterm_saves_state_and_exits_0() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let strategies = tmp.path().join("strategies");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&strategies).unwrap();
    std::fs::write(strategies.join("counter.lua"), COUNTER).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .arg("run")
        .current_dir(tmp.path())
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .env("WEBHOOK_SECRET", SECRET)
        .env("STRATEGIES_DIR", &strategies)
        .env("STATE_DIR", &state)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            log.push_str(&line);
            log.push('\n');
            if line.contains("HTTP server listening") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                return v["fields"]["addr"].as_str().unwrap().to_owned();
            }
        }
        panic!("no listening line:\n{log}");
    })
    .await
    .expect("the server starts");

    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = client
        .post(format!("{base}/webhook/counter/{SECRET}"))
        .body(r#"{"id": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["hits"], 1);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    while let Ok(Some(line)) = stderr.next_line().await {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(status.success(), "{status:?}\n{log}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("counter.json")).unwrap()).unwrap();
    assert_eq!(saved["hits"], 1, "{saved}");
    assert!(!log.contains(SECRET), "the secret leaked into the log");
}
