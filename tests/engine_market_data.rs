//! Market trades and depth reach the strategies that declared them, end to end against the
//! simulator over loopback: `trades = true` hears every print the simulator made, in order, one
//! `on_trade` each; `depth = true` hears `on_depth`; a strategy that declared neither hears
//! neither.

mod common;
mod engine_support;

use std::time::Duration;

use common::*;
use engine_support::*;
use moontick::gateway::TransportOptions;

const STRATEGY: &str = r#"
local M = { symbols = { "MNQ" }, trades = true, depth = true }
function M.on_trade(t)
  state.trades = state.trades or {}
  table.insert(state.trades, { t.time, t.price, t.size })
  state.symbol = t.symbol
end
function M.on_depth(d) state.depth = (state.depth or 0) + 1 end
return M
"#;

const QUIET: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q) state.quotes = (state.quotes or 0) + 1 end
function M.on_trade(t) state.trades = (state.trades or 0) + 1 end
function M.on_depth(d) state.depth = (state.depth or 0) + 1 end
return M
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_true_hears_every_print_in_order_and_depth_true_hears_depth() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let mnq = sim.contract_id("MNQ").expect("MNQ listed");
    let prints = record_prints(&sim, &mnq);
    let dir = tempfile::tempdir().unwrap();
    let run = start_engine(&sim, dir.path(), STRATEGY, TransportOptions::default()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let state = stop(run).await;

    let got: Vec<Print> = state["trades"]
        .as_array()
        .expect("on_trade was called")
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            (
                (r[0].as_f64().unwrap() * 1000.0).round() as i64,
                r[1].as_f64().unwrap(),
                r[2].as_f64().unwrap() as i64,
            )
        })
        .collect();
    assert!(got.len() >= 10, "{} trades heard", got.len());
    assert_eq!(state["symbol"], "MNQ");
    // From the first trade heard to the last, exactly the simulator's prints: none missing,
    // none repeated or merged, in order.
    let prints = prints.lock().unwrap().clone();
    let start = prints
        .iter()
        .position(|p| *p == got[0])
        .expect("the first trade heard is a print");
    assert_eq!(&prints[start..start + got.len()], &got[..]);
    assert!(
        state["depth"].as_i64().unwrap_or(0) > 0,
        "on_depth was called: {state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_that_did_not_declare_trades_hears_none() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let dir = tempfile::tempdir().unwrap();
    let run = start_engine(&sim, dir.path(), QUIET, TransportOptions::default()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let state = stop(run).await;
    assert!(state["quotes"].as_i64().unwrap_or(0) > 0, "{state}");
    assert!(state["trades"].is_null(), "{state}");
    assert!(state["depth"].is_null(), "{state}");
}
