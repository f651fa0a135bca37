//! The kill switch closes the account's positions with the gateway's close-position call, an
//! order no strategy placed. Against the simulator over loopback: its fill is shared out to the
//! strategies that held the contract, so afterwards each strategy's `bot.position` is flat, it
//! heard the exit as an `on_fill` (order id 0), and the per-strategy realised P&L adds up to the
//! account's.

mod common;
mod engine_support;

use std::time::Duration;

use common::*;
use engine_support::*;
use serde_json::Value;

fn strategy(size: u32) -> String {
    format!(
        r#"
local M = {{ symbols = {{ "MNQ" }} }}
function M.on_quote(q)
  if state.n then return end
  state.n = 1
  bot.buy{{ symbol = "MNQ", size = {size} }}
end
function M.on_fill(f)
  state.fills = state.fills or {{}}
  table.insert(state.fills, {{ f.order_id, f.side, f.size }})
  state.pos = bot.position("MNQ").size
end
return M
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_close_is_shared_out_to_the_strategies_that_held() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let strategies = dir.path().join("strategies");
    std::fs::create_dir_all(&strategies).unwrap();
    std::fs::write(strategies.join("other.lua"), strategy(1)).unwrap();
    let run = start_engine_with(&sim, dir.path(), &strategy(2), limits(), fast_options()).await;
    sim.step_quotes(1);
    let (client, account) = (run.client.clone(), run.account);
    eventually("both strategies filled: +3", || {
        let client = client.clone();
        async move {
            client
                .open_positions(account)
                .await
                .unwrap()
                .iter()
                .map(|p| p.net_size())
                .sum::<i32>()
                == 3
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.engine.halt("test kill switch");
    eventually("flat", || {
        let client = client.clone();
        async move { client.open_positions(account).await.unwrap().is_empty() }
    })
    .await;
    let mut status = run.engine.status();
    eventually(
        "every strategy's open P&L gone and the realised P&L shared out",
        || {
            let s = status.borrow_and_update().clone();
            async move {
                let sum: f64 = s.strategy_pnl.iter().map(|p| p.realized_pnl).sum();
                s.strategy_pnl.len() == 2
                    && s.strategy_pnl.iter().all(|p| p.open_pnl == 0.0)
                    && (sum - s.realized_pnl).abs() < 0.011
                    && s.realized_pnl != 0.0
            }
        },
    )
    .await;
    let state_dir = run.state_dir.clone();
    let probe = stop(run).await;
    let other: Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir.join("other.json")).expect("other's state"),
    )
    .unwrap();
    for (state, size) in [(&probe, 2), (&other, 1)] {
        assert_eq!(state["pos"], 0, "bot.position is flat: {state}");
        let fills = state["fills"].as_array().unwrap();
        assert_eq!(fills.len(), 2, "{state}");
        assert_eq!(
            fills[1][0], 0,
            "the exit is no order of the strategy's: {state}"
        );
        assert_eq!(fills[1][1], "sell", "{state}");
        assert_eq!(fills[1][2], size, "its whole position: {state}");
    }
}
