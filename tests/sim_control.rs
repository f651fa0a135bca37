//! The simulator's fault control endpoint on its own, without the engine: `moontick sim
//! --fault` switches faults on at start, `POST /sim/faults` refuses bad ones with a reason, a
//! dropped reply closes the connection (after executing or not, as asked), and a frozen request
//! still executes after its client gave up.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use moontick::gateway::requests::PlaceOrderRequest;
use moontick::gateway::wire::{OrderSide, OrderType};
use moontick::sim::Simulator;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn post_fault(sim: &Simulator, json: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/sim/faults", sim.url()))
        .body(json.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{json}");
}

/// Sends one market order straight to `Order/place` with `timeout`, tagged `tag`.
async fn place(sim: &Simulator, tag: &str, timeout: Duration) -> Result<u16, reqwest::Error> {
    let body = PlaceOrderRequest {
        account_id: sim.account_id(),
        contract_id: sim.contract_id("MNQ").unwrap(),
        order_type: OrderType::Market,
        side: OrderSide::Bid,
        size: 1,
        limit_price: None,
        stop_price: None,
        trail_price: None,
        custom_tag: Some(tag.into()),
        stop_loss_bracket: None,
        take_profit_bracket: None,
    };
    let token = sim.mint_token(chrono::Duration::hours(1));
    let r = reqwest::Client::new()
        .post(format!("{}/api/Order/place", sim.url()))
        .bearer_auth(token.expose())
        .json(&body)
        .timeout(timeout)
        .send()
        .await?;
    Ok(r.status().as_u16())
}

fn tags(sim: &Simulator) -> Vec<String> {
    sim.orders(sim.account_id())
        .into_iter()
        .filter_map(|o| o.custom_tag)
        .collect()
}

#[tokio::test]
async fn dropped_replies_close_the_connection_before_or_after_executing() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    post_fault(
        &sim,
        r#"{"fault":"fail_next","endpoint":"Order/place","reply":"drop"}"#,
    )
    .await;
    post_fault(
        &sim,
        r#"{"fault":"execute_then","endpoint":"Order/place","reply":"drop"}"#,
    )
    .await;
    let long = Duration::from_secs(10);
    let before = place(&sim, "before", long).await.unwrap_err();
    assert!(!before.is_timeout() && !before.is_connect(), "{before:?}");
    assert!(tags(&sim).is_empty(), "not executed");
    let after = place(&sim, "after", long).await.unwrap_err();
    assert!(!after.is_timeout() && !after.is_connect(), "{after:?}");
    assert_eq!(tags(&sim), ["after"], "executed");
    assert_eq!(
        place(&sim, "then", long).await.unwrap(),
        200,
        "one-shot faults are used up"
    );
}

#[tokio::test]
async fn a_frozen_request_executes_after_its_client_gave_up() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    post_fault(&sim, r#"{"fault":"freeze","ms":800}"#).await;
    let gave_up = place(&sim, "frozen", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(gave_up.is_timeout(), "{gave_up:?}");
    assert!(tags(&sim).is_empty(), "not yet");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tags(&sim).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the frozen place never executed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tags(&sim), ["frozen"]);
}

#[tokio::test]
async fn a_rate_limit_storm_refuses_every_call_until_it_ends() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    post_fault(
        &sim,
        r#"{"fault":"rate_limit_storm","secs":0.5,"retry_after_ms":2000}"#,
    )
    .await;
    assert_eq!(
        place(&sim, "stormed", Duration::from_secs(5))
            .await
            .unwrap(),
        429
    );
    assert!(tags(&sim).is_empty());
    // The storm ends by the clock: wait until the endpoint no longer lists it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let active = reqwest::get(format!("{}/sim/faults", sim.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !active.contains("rate_limit_storm") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{active}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        place(&sim, "calm", Duration::from_secs(5)).await.unwrap(),
        200
    );
    assert_eq!(tags(&sim), ["calm"]);
}

#[tokio::test]
async fn moontick_sim_takes_start_up_faults_and_its_endpoint_refuses_bad_ones() {
    logs(); // installs the TLS provider reqwest needs
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .args(["sim", "--port", "0", "--quote-rate", "0"])
        .args(["--fault", r#"{"fault":"refuse_hubs"}"#])
        .args([
            "--fault",
            r#"{"fault":"delay","endpoint":"Order/place","ms":200}"#,
        ])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    let http = reqwest::Client::new();
    let faults = format!("{url}/sim/faults");
    let active = http
        .get(&faults)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        active.contains(r#""fault":"refuse_hubs","status":503"#),
        "{active}"
    );
    assert!(active.contains(r#""endpoint":"Order/place""#), "{active}");

    let bad = http
        .post(&faults)
        .body(r#"{"fault":"fail_next","endpoint":"Order/plaice","reply":"500"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("unknown endpoint"));
    let put = http.put(&faults).body("{}").send().await.unwrap();
    assert_eq!(put.status(), 405);

    let cleared = http
        .post(&faults)
        .body(r#"{"fault":"clear"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(cleared.text().await.unwrap(), r#"{"active":[]}"#);
}
