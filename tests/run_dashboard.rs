//! The dashboard's data from the real engine (`moontick run` on the simulator): a strategy's
//! fill shows in the day's fills, its own P&L and the equity curve, the position in `/status`
//! and on `/events`; the operator's flatten closes it without halting; pausing a strategy over
//! HTTP pauses it.

mod common;
mod run_support;

use std::time::Duration;

use common::{KEY, USER, start_sim};
use run_support::{SECRET, start, state, strategy, vars};
use serde_json::{Value, json};

const BUYER: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q) end
function M.on_webhook(req)
  local h, why = bot.buy{ symbol = "MNQ", size = 1 }
  return { ok = h ~= nil, why = why }
end
return M
"#;

async fn wait_for(run: &run_support::Running, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = run.status().await;
        if cond(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategys_fill_shows_in_its_pnl_the_fills_and_the_curve_and_flatten_closes_it() {
    common::logs();
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "buyer", BUYER);
    let run = start(&vars(tmp.path(), &[])).await;
    let (code, body) = run.post("/webhook/buyer", &json!({}), true).await;
    assert_eq!(code, 200, "{body}");
    let s = wait_for(&run, "the position and the fill", |s| {
        s["positions"][0]["size"] == 1 && s["fills"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let fill = &s["fills"][0];
    assert_eq!(fill["strategy"], "buyer", "{s:#}");
    assert_eq!(fill["symbol"], "MNQ");
    assert_eq!(fill["side"], "buy");
    assert_eq!(fill["size"], 1);
    assert!(s["account_balance"].as_f64().unwrap() > 0.0, "{s:#}");
    assert!(s["risk"]["daily_loss_limit"].as_f64().unwrap() > 0.0);
    assert!(s["risk"]["loss_limit_used"].as_f64().is_some());
    assert!(
        !s["equity"].as_array().unwrap().is_empty(),
        "a fill takes a point"
    );
    let q = &s["quotes"][0];
    assert_eq!(q["symbol"], "MNQ");
    assert!(q["time_ms"].as_i64().unwrap() > 0);
    assert!(s["now_ms"].as_i64().unwrap() >= q["time_ms"].as_i64().unwrap() - 5_000);
    let pnl = s["strategy_pnl"].as_array().unwrap();
    assert_eq!(pnl.len(), 1, "{s:#}");
    assert_eq!(pnl[0]["strategy"], "buyer");
    // Open P&L per strategy is the account's when one strategy holds the only position.
    wait_for(&run, "the open P&L per strategy", |s| {
        let a = s["risk"]["open_pnl"].as_f64().unwrap_or(f64::NAN);
        let b = s["strategy_pnl"][0]["open_pnl"]
            .as_f64()
            .unwrap_or(f64::NAN);
        (a - b).abs() < 0.011
    })
    .await;

    wait_for(&run, "quotes handled", |s| {
        s["strategies"][0]["quotes_handled"]
            .as_u64()
            .is_some_and(|n| n > 0)
    })
    .await;

    // The same data arrives on the event stream.
    let mut events = run
        .http
        .get(format!("{}/events", run.url))
        .header("x-webhook-secret", SECRET)
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !(text.contains("event: fills") && text.contains("event: status")) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("events keep coming")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(r#""strategy":"buyer""#), "{text}");
    assert!(text.contains(r#""positions":[{"#), "{text}");
    drop(events);

    // Flatten all: the position closes, trading is not halted.
    let (code, body) = run.post("/flatten", &json!({}), true).await;
    assert_eq!(code, 200, "{body}");
    let s = wait_for(&run, "flat", |s| {
        s["positions"].as_array().is_some_and(|p| p.is_empty())
            && s["fills"].as_array().is_some_and(|f| f.len() == 2)
    })
    .await;
    assert!(
        s["risk"]["halted"].is_null(),
        "flatten does not halt: {s:#}"
    );
    assert_eq!(
        s["fills"][1]["strategy"], "buyer",
        "the closing fill is the strategy's: {s:#}"
    );
    assert_eq!(s["fills"][1]["side"], "sell");
    assert!(s["fills"][1]["pnl"].as_f64().is_some(), "{s:#}");

    // Pause and resume the strategy.
    let (code, _) = run.post("/strategies/buyer/pause", &json!({}), true).await;
    assert_eq!(code, 200);
    wait_for(&run, "paused", |s| s["strategies"][0]["state"] == "paused").await;
    let (code, body) = run.post("/webhook/buyer", &json!({"id": "p"}), true).await;
    assert_eq!(code, 503, "{body}");
    let (code, _) = run.post("/strategies/buyer/resume", &json!({}), true).await;
    assert_eq!(code, 200);
    wait_for(&run, "running", |s| {
        s["strategies"][0]["state"] == "running"
    })
    .await;
    run.stop().await.unwrap();
    common::assert_no_secret_logged(&[SECRET]);
}

/// After a restart, the day's fills are listed again with the strategy whose order they filled
/// (from its customTag), and each strategy's realised P&L is what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_each_strategys_realised_pnl_and_the_days_fills() {
    let sim = start_sim(|_| {}).await;
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "buyer", BUYER);
    let live = [
        ("PROJECT_X_API_URL", sim.url()),
        ("PROJECT_X_USERNAME", USER.to_string()),
        ("PROJECT_X_API_KEY", KEY.to_string()),
        ("PROJECT_X_ACCOUNT_ID", sim.account_id().to_string()),
        ("STATE_DIR", state(tmp.path()).display().to_string()),
    ];
    let run = start(&vars(tmp.path(), &live)).await;
    let (code, body) = run.post("/webhook/buyer", &json!({}), true).await;
    assert_eq!(code, 200, "{body}");
    wait_for(&run, "the position", |s| s["positions"][0]["size"] == 1).await;
    let (code, _) = run.post("/flatten", &json!({}), true).await;
    assert_eq!(code, 200);
    let before = wait_for(&run, "flat after two fills", |s| {
        s["positions"].as_array().is_some_and(|p| p.is_empty())
            && s["fills"].as_array().is_some_and(|f| f.len() == 2)
    })
    .await;
    let realized = before["strategy_pnl"][0]["realized_pnl"].as_f64().unwrap();
    assert!(realized < 0.0, "two fills' fees at least: {before:#}");
    run.stop().await.unwrap();

    let run = start(&vars(tmp.path(), &live)).await;
    let after = run.status().await;
    let fills = after["fills"].as_array().unwrap();
    assert_eq!(fills.len(), 2, "{after:#}");
    assert!(fills.iter().all(|f| f["strategy"] == "buyer"), "{after:#}");
    assert_eq!(after["strategy_pnl"][0]["strategy"], "buyer");
    assert_eq!(
        after["strategy_pnl"][0]["realized_pnl"].as_f64().unwrap(),
        realized
    );
    assert_eq!(
        after["risk"]["realized_pnl"],
        before["risk"]["realized_pnl"]
    );
    assert!(
        after["equity"].as_array().unwrap().len() >= 2,
        "the curve is drawn from the fills"
    );
    run.stop().await.unwrap();
}
