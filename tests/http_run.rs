//! `moontick run` in-process, the real wiring on a listener bound to port 0 with a shutdown the
//! test controls: webhooks reach a strategy and a shutdown saves its state; `/readyz` follows
//! the hubs; `STATE_DIR` admits one engine and keeps state per gateway and account; a halt
//! carries over (announced) until `POST /resume`; an unusable `STATE_DIR` is named.

mod common;
mod run_support;

use std::time::Duration;

use common::{KEY, USER, assert_no_secret_logged, logs, start_sim};
use run_support::{SECRET, start, state, strategy, vars};
use serde_json::{Value, json};

const COUNTER: &str = r#"
local M = {}
function M.on_webhook(req)
  state.hits = (state.hits or 0) + 1
  return { ok = true, hits = state.hits }
end
return M
"#;

/// The variables of a run against an external simulator, as a live gateway.
fn live_vars(sim: &moontick::sim::Simulator, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("PROJECT_X_API_URL", sim.url()),
        ("PROJECT_X_USERNAME", USER.to_string()),
        ("PROJECT_X_API_KEY", KEY.to_string()),
        ("PROJECT_X_ACCOUNT_ID", sim.account_id().to_string()),
        ("STATE_DIR", state(dir).display().to_string()),
    ]
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_webhooks_and_a_shutdown_saves_state_in_the_simulators_directory() {
    logs();
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "counter", COUNTER);
    let run = start(&vars(tmp.path(), &[])).await;
    let r = run
        .http
        .post(format!("{}/webhook/counter/{SECRET}", run.url))
        .body(r#"{"id": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["hits"], 1);
    run.stop().await.expect("run returns Ok");

    let dir = state(tmp.path()).join("simulator-10001");
    assert_eq!(read_json(&dir.join("counter.json"))["hits"], 1);
    assert!(
        !state(tmp.path()).join("counter.json").exists(),
        "state lives per gateway and account"
    );
    moontick::run::state_dir::lock(&state(tmp.path())).expect("the lock is released on return");
    assert_no_secret_logged(&[SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_when_the_hubs_drop_and_200_after_they_reconnect() {
    let sim = start_sim(|c| c.quote_rate = 5.0).await;
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "quiet", "return {}\n");
    let run = start(&vars(tmp.path(), &live_vars(&sim, tmp.path()))).await;

    sim.faults().reject_hub_upgrades(Some(503));
    sim.faults().drop_hub_connections();
    run.wait_status("/readyz", 503).await;
    let body = run
        .http
        .get(format!("{}/readyz", run.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("hub"), "the reason names the hub: {body}");

    sim.faults().reject_hub_upgrades(None);
    run.wait_status("/readyz", 200).await;
    run.stop().await.unwrap();
    let label = format!("127.0.0.1_{}-{}", sim.addr().port(), sim.account_id());
    assert!(
        state(tmp.path()).join(label).is_dir(),
        "a live gateway's state has its own directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_state_dir_exits_non_zero_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let run = start(&vars(tmp.path(), &[])).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .arg("run")
        .current_dir(tmp.path())
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .env("STATE_DIR", state(tmp.path()))
        .env("STRATEGIES_DIR", run_support::strategies(tmp.path()))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the second run exits at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())),
        "names the holder: {stderr}"
    );
    assert!(stderr.contains("in use by another moontick"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("built-in simulator"),
        "refused before starting anything"
    );
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_halt_never_reaches_a_live_run_and_carries_over_announced_until_resumed() {
    logs();
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "quiet", "return {}\n");
    let on_sim = vars(tmp.path(), &[]);

    // A halt on the embedded simulator...
    let run = start(&on_sim).await;
    let (code, _) = run
        .post("/halt", &json!({"reason": "sim drill"}), true)
        .await;
    assert_eq!(code, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while run.status().await["risk"]["halted"].is_null() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the halt shows in /status"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.stop().await.unwrap();
    let risk = state(tmp.path()).join("simulator-10001/risk.json");
    assert_eq!(read_json(&risk)["halted"], "sim drill");

    // ...does not refuse a live run's orders on the same STATE_DIR.
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let live = start(&vars(tmp.path(), &live_vars(&sim, tmp.path()))).await;
    assert_eq!(live.status().await["risk"]["halted"], Value::Null);
    live.stop().await.unwrap();

    // The next simulator run starts halted and says so, until POST /resume (secret required).
    let run = start(&on_sim).await;
    assert_eq!(run.status().await["risk"]["halted"], "sim drill");
    assert!(
        logs()
            .text()
            .contains("TRADING IS HALTED, carried over from earlier today: sim drill"),
        "announced at start"
    );
    let (code, _) = run.post("/resume", &json!({}), false).await;
    assert_eq!(code, 401, "resume needs the secret");
    let (code, v) = run.post("/resume", &json!({}), true).await;
    assert_eq!((code, v["halted"].clone()), (200, json!(false)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !run.status().await["risk"]["halted"].is_null() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resume shows in /status"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.stop().await.unwrap();
    assert_eq!(
        read_json(&risk)["halted"],
        Value::Null,
        "the resume is saved"
    );
}

#[tokio::test]
async fn an_unusable_state_dir_fails_at_start_naming_the_path_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("state");
    let config = moontick::config::Config::from_vars(&vars(
        tmp.path(),
        &[("STATE_DIR", bad.display().to_string())],
    ))
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = moontick::run::run(&config, listener, std::future::pending());
    let err = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("fails at once")
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&bad.display().to_string()), "{text}");
    assert!(text.contains("STATE_DIR"), "{text}");
}
