//! The engine end to end over loopback: a strategy's orders reach the simulator through the
//! risk guard, fills and positions come back to the script, limits refuse without sending,
//! the kill switch flattens, and reconnects and unknown outcomes never duplicate an order.
//!
//! Scripts report what they saw through `state`, which the host writes to `STATE_DIR` when the
//! engine stops.

mod common;
mod engine_support;

use std::time::Duration;

use common::*;
use engine_support::*;
use moontick::config::RiskLimits;
use moontick::gateway::{Endpoint, TransportOptions};
use moontick::sim::faults::AfterExecute;
use serde_json::Value;

/// Records every handler call into `state.log` as short strings.
const RECORDER: &str = r#"
local M = { symbols = { "MNQ" } }
local function log(s) state.log = state.log or {}; table.insert(state.log, s) end
function M.on_order(o) log("order:" .. o.status .. ":" .. o.filled .. (o.reason and (":" .. o.reason) or "")) end
function M.on_fill(f) log("fill:" .. f.side .. ":" .. f.size .. ":" .. f.price) end
function M.on_position(p) log("position:" .. p.size) end
function M.on_feed(s) log("feed:" .. s) end
"#;

/// The recorder plus an `on_quote` that runs `body` on the first quote only.
fn on_first_quote(body: &str) -> String {
    format!(
        "{RECORDER}\nfunction M.on_quote(q)\n  if state.first_done then return end\n  state.first_done = true\n{body}\nend\nreturn M\n"
    )
}

#[tokio::test]
async fn a_quote_driven_buy_fills_and_the_script_sees_order_fill_and_position() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = on_first_quote(
        "  local h, why = bot.buy{ symbol = 'MNQ', size = 2 }\n  state.handle = h and h.id or why",
    );
    let run = start_engine_with(&sim, dir.path(), &script, limits(), fast_options()).await;
    let (client, account) = (run.client.clone(), run.account);
    eventually("a position of 2 at the simulator", || {
        let client = client.clone();
        async move {
            client
                .open_positions(account)
                .await
                .unwrap()
                .iter()
                .any(|p| p.net_size() == 2)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = stop(run).await;
    let log = entries(&state);
    assert_eq!(state["handle"], 1, "bot.buy returned the handle: {state}");
    assert!(log.iter().any(|e| e == "order:filled:2"), "{log:?}");
    let fill = log.iter().find(|e| e.starts_with("fill:")).expect("a fill");
    let parts: Vec<&str> = fill.split(':').collect();
    assert_eq!((parts[1], parts[2]), ("buy", "2"), "{fill}");
    assert!(parts[3].parse::<f64>().unwrap() > 0.0);
    assert!(log.iter().any(|e| e == "position:2"), "{log:?}");
    assert_eq!(sim.stats().calls(Endpoint::OrderPlace), 1);
}

/// Runs a script that, on its first quote, runs `setup` then tries `attempts` (Lua
/// expressions returning `h, why`) and records each result; returns the results and how many
/// orders reached the simulator.
async fn try_orders(limits: RiskLimits, setup: &str, attempts: &[&str]) -> (Vec<String>, u64) {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut body =
        String::from("local M = { symbols = { 'MNQ' }, limits = { max_position = 3 } }\n");
    body.push_str(
        "function M.on_quote()\n  if state.results then return end\n  state.results = {}\n",
    );
    body.push_str(setup);
    for a in attempts {
        body.push_str(&format!(
            "  do local h, why = {a}; table.insert(state.results, h and 'ok' or why) end\n"
        ));
    }
    body.push_str("end\nreturn M\n");
    let run = start_engine_with(&sim, dir.path(), &body, limits, fast_options()).await;
    sim.step_quotes(1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = stop(run).await;
    let results = state["results"].as_array().cloned().unwrap_or_default();
    let results = results
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    (results, sim.stats().calls(Endpoint::OrderPlace))
}

/// A modify that grows a working order is put to the risk guard like a new order of the
/// growth, and only an approved change reaches the gateway.
#[tokio::test]
async fn a_growing_modify_beyond_the_limit_never_reaches_the_gateway() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
local M = { symbols = { 'MNQ' }, limits = { max_position = 3 } }
function M.on_quote()
  if state.h then return end
  state.h = bot.buy{ symbol = 'MNQ', type = 'limit', price = 1, size = 2 }.id
end
function M.on_order(o)
  if state.grow or o.status ~= 'open' then return end
  local ok, why = bot.modify(state.h, { size = 4 })
  state.grow = ok and 'ok' or why
  local ok2, why2 = bot.modify(state.h, { size = 3, price = 2 })
  state.within = ok2 and 'ok' or why2
end
return M
"#;
    let run = start_engine_with(&sim, dir.path(), script, limits(), fast_options()).await;
    sim.step_quotes(1);
    eventually("the in-limit modify reached the simulator", || {
        let calls = sim.stats().calls(Endpoint::OrderModify);
        async move { calls >= 1 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = stop(run).await;
    let grow = state["grow"].as_str().unwrap_or_default();
    assert!(grow.contains("its max position 3"), "{state}");
    assert_eq!(state["within"], "ok", "{state}");
    assert_eq!(
        sim.stats().calls(Endpoint::OrderModify),
        1,
        "only the approved modify was sent"
    );
}

#[tokio::test]
async fn every_risk_limit_refuses_with_its_reason_and_sends_nothing() {
    let tight = RiskLimits {
        max_order_size: 2,
        max_position: 5,
        daily_loss_limit: 1000.0,
        max_orders_per_minute: 30,
    };
    let (results, sent) = try_orders(
        tight,
        "",
        &[
            "bot.buy{ symbol = 'MNQ', size = 3 }",
            "bot.buy{ symbol = 'MNQ', type = 'limit', price = 1, size = 2 }",
            "bot.buy{ symbol = 'MNQ', type = 'limit', price = 1, size = 2 }",
            "bot.buy{ symbol = 'ES', size = 1 }",
        ],
    )
    .await;
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(results[0].contains("max order size"), "{results:?}");
    assert_eq!(results[1], "ok");
    assert!(
        results[2].contains("max position 3"),
        "the strategy's own limit: {results:?}"
    );
    assert!(results[3].contains("unknown symbol ES"), "{results:?}");
    assert_eq!(sent, 1, "only the approved order reached the gateway");

    let rate = RiskLimits {
        max_orders_per_minute: 1,
        ..limits()
    };
    let (results, sent) = try_orders(
        rate,
        "",
        &[
            "bot.buy{ symbol = 'MNQ', type = 'limit', price = 1, size = 1 }",
            "bot.buy{ symbol = 'MNQ', type = 'limit', price = 1, size = 1 }",
        ],
    )
    .await;
    assert_eq!(results[0], "ok");
    assert!(results[1].contains("order rate limit"), "{results:?}");
    assert_eq!(sent, 1);

    let (results, sent) = try_orders(
        limits(),
        "  bot.halt('test halt')\n",
        &["bot.buy{ symbol = 'MNQ', size = 1 }"],
    )
    .await;
    assert!(results[0].contains("trading is halted"), "{results:?}");
    assert_eq!(sent, 0);
}

#[tokio::test]
async fn the_daily_loss_limit_halts_flattens_and_survives_a_restart() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let tiny = RiskLimits {
        daily_loss_limit: 1.0,
        ..limits()
    };
    // A round trip costs the spread plus fees: more than $1 on MNQ.
    let script = "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  if state.n then return end\n  state.n = 1\n  bot.buy{ symbol = 'MNQ', size = 1 }\nend\nfunction M.on_fill(f)\n  if f.side == 'buy' then bot.sell{ symbol = 'MNQ', size = 1 } end\nend\nreturn M\n";
    let run = start_engine_with(&sim, dir.path(), script, tiny.clone(), fast_options()).await;
    sim.step_quotes(1);
    eventually("two fills", || async {
        sim.stats().calls(Endpoint::OrderPlace) >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop(run).await;
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state/risk.json")).unwrap())
            .unwrap();
    assert!(saved["realized_pnl"].as_f64().unwrap() < -1.0, "{saved}");
    assert!(
        saved["halted"]
            .as_str()
            .unwrap_or("")
            .contains("daily loss limit"),
        "{saved}"
    );

    // Same state directory, fresh engine: still refused.
    let again = "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  if state.tried then return end\n  local h, why = bot.buy{ symbol = 'MNQ', size = 1 }\n  state.tried = h and 'ok' or why\nend\nreturn M\n";
    let before = sim.stats().calls(Endpoint::OrderPlace);
    let run = start_engine_with(&sim, dir.path(), again, tiny, fast_options()).await;
    sim.step_quotes(1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = stop(run).await;
    assert!(
        state["tried"].as_str().unwrap().contains("halted"),
        "{state}"
    );
    assert_eq!(sim.stats().calls(Endpoint::OrderPlace), before);
}

#[tokio::test]
async fn the_kill_switch_cancels_working_orders_and_flattens() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  if state.n then return end\n  state.n = 1\n  bot.buy{ symbol = 'MNQ', size = 2 }\n  bot.buy{ symbol = 'MNQ', type = 'limit', price = q.bid - 100, size = 1 }\nend\nreturn M\n";
    let run = start_engine_with(&sim, dir.path(), script, limits(), fast_options()).await;
    sim.step_quotes(1);
    let (client, account) = (run.client.clone(), run.account);
    eventually("a position and a working order", || {
        let client = client.clone();
        async move {
            !client.open_positions(account).await.unwrap().is_empty()
                && !client.open_orders(account).await.unwrap().is_empty()
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.engine.halt("test kill switch");
    eventually("flat with nothing working", || {
        let client = client.clone();
        async move {
            client.open_positions(account).await.unwrap().is_empty()
                && client.open_orders(account).await.unwrap().is_empty()
        }
    })
    .await;
    stop(run).await;
}

#[tokio::test]
async fn a_dropped_hub_is_reconciled_without_a_duplicate_order() {
    let sim = start_sim(|c| c.quote_rate = 10.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = on_first_quote("  bot.buy{ symbol = 'MNQ', size = 1 }");
    let run = start_engine_with(&sim, dir.path(), &script, limits(), fast_options()).await;
    let (client, account) = (run.client.clone(), run.account);
    eventually("the first fill", || {
        let client = client.clone();
        async move { !client.open_positions(account).await.unwrap().is_empty() }
    })
    .await;
    // While the hubs are down, someone trades the account by hand.
    sim.faults().hubs_silent(true);
    sim.faults().drop_hub_connections();
    let mut manual = moontick::gateway::requests::PlaceOrderRequest {
        account_id: account,
        contract_id: sim.contract_id("MNQ").unwrap(),
        order_type: moontick::gateway::wire::OrderType::Market,
        side: moontick::gateway::wire::OrderSide::Bid,
        size: 2,
        limit_price: None,
        stop_price: None,
        trail_price: None,
        custom_tag: None,
        stop_loss_bracket: None,
        take_profit_bracket: None,
    };
    manual.custom_tag = Some("manual-1".into());
    client.place_order(&approve(&manual)).await.unwrap();
    sim.faults().hubs_silent(false);
    let first = sim.stats().hub_connects;
    eventually("the hubs to reconnect", || async {
        sim.stats().hub_connects >= first + 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Fills reported by the hub and again by the REST snapshot count once in the daily tally.
    let since =
        moontick::gateway::wire::Timestamp::from(chrono::Utc::now() - chrono::Duration::hours(1));
    let trades = client.search_trades(account, since, None).await.unwrap();
    let fees: f64 = trades
        .iter()
        .map(|t| t.fees + t.profit_and_loss.unwrap_or(0.0))
        .sum();
    let tally = run.engine.status().borrow().realized_pnl;
    assert!(
        (tally + fees).abs() < 1e-6,
        "daily tally {tally} vs the gateway's {}",
        -fees
    );
    let state = stop(run).await;
    let log = entries(&state);
    assert!(
        log.iter().any(|e| e == "position:3"),
        "reconciled position reached the script: {log:?}"
    );
    assert!(log.iter().any(|e| e == "feed:reconnecting"), "{log:?}");
    assert_eq!(
        sim.stats().calls(Endpoint::OrderPlace),
        2,
        "the strategy's order once, the manual one once"
    );
}

#[tokio::test]
async fn an_unknown_outcome_place_is_reconciled_not_resent() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = on_first_quote("  bot.buy{ symbol = 'MNQ', size = 1 }");
    let options = TransportOptions {
        timeout: Duration::from_millis(700),
        ..fast_options()
    };
    let run = start_engine_with(&sim, dir.path(), &script, limits(), options).await;
    // The gateway takes the order, then answers too late for the client.
    sim.faults().execute_then(
        1,
        Some(Endpoint::OrderPlace),
        AfterExecute::Delay(Duration::from_secs(3)),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.step_quotes(1);
    eventually("the order to be found", || async {
        sim.stats().calls(Endpoint::OrderSearch) >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let state = stop(run).await;
    let log = entries(&state);
    assert!(log.iter().any(|e| e == "order:filled:1"), "{log:?}");
    assert!(
        !log.iter().any(|e| e.starts_with("order:rejected")),
        "{log:?}"
    );
    assert_eq!(
        sim.stats().calls(Endpoint::OrderPlace),
        1,
        "never sent twice"
    );
}

#[tokio::test]
async fn a_cancel_right_after_placing_waits_for_the_id_and_cancels() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = on_first_quote(
        "  local h = bot.buy{ symbol = 'MNQ', type = 'limit', price = q.bid - 100, size = 1 }\n  local ok, why = bot.cancel(h.id)\n  state.cancel = ok and 'ok' or why",
    );
    let run = start_engine_with(&sim, dir.path(), &script, limits(), fast_options()).await;
    sim.step_quotes(1);
    eventually("the cancel to reach the simulator", || async {
        sim.stats().calls(Endpoint::OrderCancel) >= 1
    })
    .await;
    let (client, account) = (run.client.clone(), run.account);
    eventually("nothing working", || {
        let client = client.clone();
        async move { client.open_orders(account).await.unwrap().is_empty() }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = stop(run).await;
    assert_eq!(state["cancel"], "ok", "{state}");
    assert!(
        entries(&state).iter().any(|e| e == "order:cancelled:0"),
        "{state}"
    );
}

#[tokio::test]
async fn a_symbol_that_fails_to_resolve_at_start_is_retried() {
    use moontick::sim::faults::FaultReply;
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    // Every attempt of the first resolution fails (the transport retries a read twice).
    sim.faults()
        .fail_next(3, Some(Endpoint::ContractSearch), FaultReply::ServerError);
    let dir = tempfile::tempdir().unwrap();
    let run = start_engine_with(
        &sim,
        dir.path(),
        &format!("{RECORDER}\nreturn M\n"),
        limits(),
        fast_options(),
    )
    .await;
    assert!(
        sim.stats().calls(Endpoint::ContractSearch) >= 4,
        "resolved on a later try"
    );
    stop(run).await;
}

#[tokio::test]
async fn a_reload_that_adds_a_symbol_gets_its_quotes_and_can_trade_it() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let dir = tempfile::tempdir().unwrap();
    let run = start_engine_with(
        &sim,
        dir.path(),
        "local M = { symbols = { 'MNQ' } }\nreturn M\n",
        limits(),
        fast_options(),
    )
    .await;
    let v2 = "local M = { symbols = { 'MNQ', 'MES' } }\nfunction M.on_quote(q)\n  if q.symbol ~= 'MES' or state.done then return end\n  state.done = true\n  bot.buy{ symbol = 'MES', size = 1 }\nend\nreturn M\n";
    let file = dir.path().join("strategies/probe.lua");
    let tmp = dir.path().join("strategies/.probe.lua.tmp");
    std::fs::write(&tmp, v2).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let (client, account) = (run.client.clone(), run.account);
    let mes = sim.contract_id("MES").unwrap();
    eventually("a position in MES", || {
        let (client, mes) = (client.clone(), mes.clone());
        async move {
            client
                .open_positions(account)
                .await
                .unwrap()
                .iter()
                .any(|p| p.contract_id == mes)
        }
    })
    .await;
    stop(run).await;
}
