//! `bot.contract` and the tick grid through the real engine against the simulator: a strategy
//! reads the facts of the simulator's four products, an undeclared symbol is `nil, reason`, and
//! order prices off the tick grid are refused before they reach the gateway.

mod common;
mod engine_support;

use std::time::Duration;

use common::*;
use engine_support::*;
use moontick::gateway::Endpoint;
use moontick::sim::contracts::catalog;

/// Polls `bot.contract` until all four products resolved, then records their facts.
const FACTS: &str = r#"
local M = { symbols = { "MNQ", "MES", "NQ", "ES" } }
local function facts()
  local out = {}
  for _, s in ipairs(M.symbols) do
    local c, why = bot.contract(s)
    if not c then return nil end
    out[s] = c
  end
  return out
end
function M.on_start()
  local id
  id = bot.every(0.05, function()
    local f = facts()
    if not f then return end
    bot.cancel_timer(id)
    state.facts = f
    local c, why = bot.contract("YM")
    state.undeclared = { c == nil, why }
    state.rounded = {
      bot.round_price("MNQ", 21000.13), bot.round_price("ES", 6000.38), bot.round_price("mnq", 4.874),
    }
    state.lower = bot.contract("mnq").id == f.MNQ.id
    -- Tells the test it is done: a limit far below the market, which never fills.
    bot.buy{ symbol = "MNQ", size = 1, type = "limit", price = 1 }
  end)
end
return M
"#;

#[tokio::test]
async fn a_strategy_reads_the_facts_of_the_simulators_products() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let run = start_engine(&sim, dir.path(), FACTS, fast_options()).await;
    eventually("the strategy read every contract", || {
        let placed = sim.stats().calls(Endpoint::OrderPlace);
        async move { placed >= 1 }
    })
    .await;
    let state = stop(run).await;
    let facts = &state["facts"];
    assert!(facts.is_object(), "no contract facts recorded: {state}");
    let today = chrono::Utc::now().date_naive();
    let active: Vec<_> = catalog(today).into_iter().filter(|c| c.active).collect();
    for (symbol, tick_value, point_value) in [
        ("MNQ", 0.5, 2.0),
        ("MES", 1.25, 5.0),
        ("NQ", 5.0, 20.0),
        ("ES", 12.5, 50.0),
    ] {
        let spec = active.iter().find(|c| c.ticker == symbol).unwrap();
        let f = &facts[symbol];
        assert_eq!(f["id"], spec.id.as_ref(), "{symbol}: {f}");
        assert_eq!(f["symbol"], symbol, "{f}");
        assert_eq!(f["name"], spec.name.as_str(), "{f}");
        assert_eq!(f["description"], spec.description.as_str(), "{f}");
        assert_eq!(f["tick_size"], 0.25, "{f}");
        assert_eq!(f["tick_value"], tick_value, "{f}");
        assert_eq!(f["point_value"], point_value, "{f}");
    }
    assert_eq!(state["undeclared"][0], true, "{state}");
    let why = state["undeclared"][1].as_str().unwrap_or_default();
    assert!(
        why.contains("YM is not among this strategy's symbols"),
        "{why}"
    );
    assert_eq!(
        state["rounded"],
        serde_json::json!([21000.25, 6000.5, 4.75])
    );
    assert_eq!(
        state["lower"], true,
        "symbols are matched case aside: {state}"
    );
}

/// Off-grid prices of new orders and of modifies are refused with a reason naming the field,
/// the grid and `bot.round_price`; on-grid ones go through.
#[tokio::test]
async fn off_grid_prices_are_refused_and_on_grid_ones_placed() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
local M = { symbols = { "MNQ" } }
local function try(h, why) table.insert(state.results, h and "ok" or why) return h end
function M.on_quote()
  if state.results then return end
  state.results = {}
  try(bot.buy{ size = 1, type = "limit", price = 1000.13 })
  try(bot.sell{ size = 1, type = "stop", stop_price = 100.1 })
  try(bot.sell{ size = 1, type = "trailing", trail_price = 100.3 })
  state.h = try(bot.buy{ size = 1, type = "limit", price = bot.round_price("MNQ", 1000.13) }).id
end
function M.on_order(o)
  if state.modified or o.status ~= "open" then return end
  state.modified = true
  local ok, why = bot.modify(state.h, { price = 1000.6 })
  table.insert(state.results, ok and "ok" or why)
  ok, why = bot.modify(state.h, { price = 1000.5 })
  table.insert(state.results, ok and "ok" or why)
end
return M
"#;
    let run = start_engine(&sim, dir.path(), script, fast_options()).await;
    sim.step_quotes(1);
    eventually("the on-grid modify reached the simulator", || {
        let calls = sim.stats().calls(Endpoint::OrderModify);
        async move { calls >= 1 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = stop(run).await;
    let results: Vec<String> = state["results"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        results,
        [
            "price 1000.13 is not on MNQ's 0.25 tick grid; use bot.round_price",
            "stop_price 100.1 is not on MNQ's 0.25 tick grid; use bot.round_price",
            "trail_price 100.3 is not on MNQ's 0.25 tick grid; use bot.round_price",
            "ok",
            "price 1000.6 is not on MNQ's 0.25 tick grid; use bot.round_price",
            "ok",
        ],
        "{state}"
    );
    assert_eq!(
        sim.stats().calls(Endpoint::OrderPlace),
        1,
        "only the on-grid order"
    );
    assert_eq!(
        sim.stats().calls(Endpoint::OrderModify),
        1,
        "only the on-grid modify"
    );
}
