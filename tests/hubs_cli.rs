//! `moontick quote` as the real binary against the simulator: a live quote from the market hub
//! (`"source": "signalr"`), the latest bar when the simulator sends no quotes (`"bars"`), and a
//! clear non-zero exit when the hub or the login is refused.

mod common;

use std::process::Output;

use common::{KEY, USER, start_sim};
use moontick::sim::Simulator;
use serde_json::Value;

async fn quote(sim: &Simulator, symbol: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .args(["quote", symbol, "--wait", "3"])
        .env_clear()
        .env("PROJECT_X_API_URL", sim.url())
        .env("PROJECT_X_USERNAME", USER)
        .env("PROJECT_X_API_KEY", KEY)
        .env("RUST_LOG", "info")
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("moontick quote finishes")
        .expect("moontick runs")
}

fn json_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_comes_from_the_hub_then_from_bars_when_quotes_are_off() {
    let sim = start_sim(|c| c.quote_rate = 10.0).await;
    let mnq = sim.contract_id("MNQ").unwrap();

    let live = json_of(&quote(&sim, "MNQ").await);
    assert_eq!(live["source"], "signalr", "{live}");
    assert_eq!(live["contract"], mnq.as_str());
    assert!(live["bid"].as_f64().is_some_and(|b| b > 0.0), "{live}");
    assert!(live["ask"].as_f64().is_some_and(|a| a > 0.0), "{live}");
    assert_eq!(sim.stats().hub_connects, 1);

    sim.faults().quotes_on(false);
    let bars = json_of(&quote(&sim, &mnq).await);
    assert_eq!(bars["source"], "bars", "{bars}");
    assert_eq!(bars["contract"], mnq.as_str());
    assert!(bars["last"].as_f64().is_some_and(|l| l > 0.0), "{bars}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_hub_and_refused_login_exit_non_zero_saying_what_to_check() {
    let sim = start_sim(|_| {}).await;
    sim.faults().reject_hub_upgrades(Some(401));
    let out = quote(&sim, "MNQ").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no JSON on failure");
    assert!(
        stderr.contains("market hub refused the connection")
            && stderr.contains("check the token and PROJECT_X_MARKET_HUB_URL"),
        "{stderr}"
    );
    sim.faults().reject_hub_upgrades(None);

    sim.faults().reject_logins(true);
    let out = quote(&sim, "MNQ").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("login failed: check PROJECT_X_USERNAME"),
        "{stderr}"
    );
}
