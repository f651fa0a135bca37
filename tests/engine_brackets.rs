//! Bracket legs are the strategy's orders: `bot.orders()` and the engine status list them,
//! and flatten, the kill switch, `bot.flatten_all` and removing the strategy cancel them; a leg
//! that fills after its position was closed is closed at once and reported. Over loopback
//! against the simulator.

mod common;
mod engine_support;

use std::time::Duration;

use common::*;
use engine_support::*;
use moontick::engine::EngineStatus;
use moontick::gateway::Endpoint;
use moontick::gateway::requests::PlaceOrderRequest;
use moontick::gateway::wire::{OrderSide, OrderType};
use moontick::sim::faults::FaultReply;

const BRACKETED_BUY: &str =
    "    bot.buy{ symbol = 'MNQ', size = 1, stop_loss_ticks = 200, take_profit_ticks = 200 }";

fn legs(s: &EngineStatus) -> Vec<&moontick::engine::OrderStatusView> {
    s.open_orders.iter().filter(|o| o.kind != "entry").collect()
}

/// Waits until the engine sees both legs working and the position protected.
async fn wait_protected(run: &Run) -> EngineStatus {
    let status = run.engine.status();
    eventually("both legs working and the position protected", || {
        let s = status.borrow().clone();
        async move {
            legs(&s).iter().filter(|l| l.status == "open").count() == 2
                && s.positions.len() == 1
                && s.positions[0].protected
        }
    })
    .await;
    status.borrow().clone()
}

#[tokio::test]
async fn flatten_cancels_both_legs_and_orders_and_status_list_them() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = once_protected(BRACKETED_BUY, 1.0, "state.flatten = bot.flatten('MNQ')");
    let run = start_engine(&sim, dir.path(), &script, fast_options()).await;
    sim.step_quotes(1);
    let s = wait_protected(&run).await;
    let p = &s.positions[0];
    assert_eq!(p.size, 1, "{p:?}");
    let (sl, tp) = (p.stop_price.unwrap(), p.target_price.unwrap());
    assert!(sl < p.avg_price && p.avg_price < tp, "{p:?}");
    for leg in legs(&s) {
        assert_eq!(leg.parent, Some(1), "{leg:?}");
        assert_eq!(leg.side, "sell", "{leg:?}");
        assert!(leg.broker_id.is_some() && leg.price.is_some(), "{leg:?}");
    }
    let mut kinds: Vec<&str> = legs(&s).iter().map(|l| l.kind).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["stop_loss", "take_profit"]);

    eventually("flat with nothing working at the simulator", || async {
        at_broker(&run).await == (0, 0)
    })
    .await;
    let status = run.engine.status();
    eventually("the engine status to empty", || {
        let s = status.borrow().clone();
        async move { s.open_orders.is_empty() && s.positions.is_empty() }
    })
    .await;
    let state = stop(run).await;
    let mut orders: Vec<String> = state["orders"]
        .as_array()
        .expect("bot.orders() recorded")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    orders.sort();
    assert_eq!(
        orders,
        [
            "stop_loss:open:1:sell:stop:true",
            "take_profit:open:1:sell:limit:true"
        ],
        "{state}"
    );
    assert_eq!(state["flatten"], true, "{state}");
}

#[tokio::test]
async fn the_kill_switch_cancels_bracket_legs() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let run = start_engine(
        &sim,
        dir.path(),
        &on_quotes(&[BRACKETED_BUY]),
        fast_options(),
    )
    .await;
    sim.step_quotes(1);
    wait_protected(&run).await;
    run.engine.halt("test kill switch");
    eventually("flat with nothing working", || async {
        at_broker(&run).await == (0, 0)
    })
    .await;
    assert!(
        sim.stats().calls(Endpoint::OrderCancel) >= 2,
        "the engine cancelled both legs itself"
    );
    stop(run).await;
}

#[tokio::test]
async fn removing_the_strategy_cancels_its_legs_and_closes_its_position() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let run = start_engine(
        &sim,
        dir.path(),
        &on_quotes(&[BRACKETED_BUY]),
        fast_options(),
    )
    .await;
    sim.step_quotes(1);
    wait_protected(&run).await;
    std::fs::remove_file(run.strategies.join("probe.lua")).unwrap();
    eventually("flat with nothing working", || async {
        at_broker(&run).await == (0, 0)
    })
    .await;
    run.engine.shutdown().await;
}

#[tokio::test]
async fn a_leg_that_fills_after_its_position_was_closed_is_closed_and_reported() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = once_protected(
        "bot.buy{ symbol = 'MNQ', size = 1, stop_loss_ticks = 8, take_profit_ticks = 400 }",
        1.0,
        "bot.flatten('MNQ')",
    );
    let run = start_engine(&sim, dir.path(), &script, fast_options()).await;
    let contract = sim.contract_id("MNQ").unwrap();
    sim.step_quotes(1);
    let s = wait_protected(&run).await;
    let stop_price = s.positions[0].stop_price.unwrap();
    // Every cancel of the legs fails without being executed (the resends after each
    // reconcile too): the legs stay working.
    sim.faults()
        .fail_next(1000, Some(Endpoint::OrderCancel), FaultReply::ServerError);
    eventually(
        "the position closed with both legs still working",
        || async { at_broker(&run).await == (2, 0) },
    )
    .await;
    // The market falls through the stop: the account goes short with nothing to protect it.
    assert!(sim.set_price(&contract, stop_price - 5.0));
    eventually("the short closed and nothing working", || async {
        at_broker(&run).await == (0, 0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = stop(run).await;
    let log = entries(&state);
    assert!(
        log.iter()
            .any(|e| e.contains("stop_loss leg of order 1 filled")
                && e.contains("after its position was closed")),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_leg_cancel_that_fails_is_sent_again_once_reconciled_until_the_leg_is_gone() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = once_protected(BRACKETED_BUY, 1.0, "bot.flatten('MNQ')");
    let run = start_engine(&sim, dir.path(), &script, fast_options()).await;
    sim.step_quotes(1);
    wait_protected(&run).await;
    // Every leg cancel fails with an unknown outcome (not executed) for a while, those sent
    // when the position's close filled included: the position is flat, both legs still work.
    let cancels_before = sim.stats().calls(Endpoint::OrderCancel);
    sim.faults()
        .fail_next(1000, Some(Endpoint::OrderCancel), FaultReply::ServerError);
    eventually("flat with both legs still working", || async {
        at_broker(&run).await == (2, 0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(at_broker(&run).await, (2, 0), "no cancel got through");
    // The gateway recovers: the engine, reconciled, sends the cancels again by itself.
    sim.faults().clear();
    eventually("nothing working at the simulator", || async {
        at_broker(&run).await == (0, 0)
    })
    .await;
    assert!(
        sim.stats().calls(Endpoint::OrderCancel) - cancels_before >= 4,
        "each leg's cancel was sent again after the failures"
    );
    let status = run.engine.status();
    eventually("no leg left in the engine status", || {
        let s = status.borrow().clone();
        async move { s.open_orders.is_empty() }
    })
    .await;
    stop(run).await;
}

#[tokio::test]
async fn flatten_all_closes_every_position_and_cancels_every_order_on_the_account() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = once_protected(
        &format!(
            "{BRACKETED_BUY}\n  bot.buy{{ symbol = 'MNQ', size = 1, type = 'limit', price = q.bid - 100 }}"
        ),
        3.0,
        "state.flatten_all = bot.flatten_all()",
    );
    let run = start_engine(&sim, dir.path(), &script, fast_options()).await;
    sim.step_quotes(1);
    wait_protected(&run).await;
    // Someone also trades the account by hand: a position and a working order nobody's
    // strategy owns.
    let contract = sim.contract_id("MNQ").unwrap();
    let bid = sim.touch(&contract).unwrap().bid;
    let manual = |order_type, limit_price, tag: &str| PlaceOrderRequest {
        account_id: run.account,
        contract_id: contract.clone(),
        order_type,
        side: OrderSide::Bid,
        size: 2,
        limit_price,
        stop_price: None,
        trail_price: None,
        custom_tag: Some(tag.into()),
        stop_loss_bracket: None,
        take_profit_bracket: None,
    };
    run.client
        .place_order(&approve(&manual(OrderType::Market, None, "manual-1")))
        .await
        .unwrap();
    run.client
        .place_order(&approve(&manual(
            OrderType::Limit,
            Some(bid - 200.0),
            "manual-2",
        )))
        .await
        .unwrap();
    let status = run.engine.status();
    eventually("the engine to see the manual position", || {
        let s = status.borrow().clone();
        async move { s.positions.first().is_some_and(|p| p.size == 3) }
    })
    .await;
    eventually("flat with nothing working", || async {
        at_broker(&run).await == (0, 0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(at_broker(&run).await, (0, 0), "nothing reopened");
    let state = stop(run).await;
    assert_eq!(state["flatten_all"], true, "{state}");
}

#[tokio::test]
async fn a_reversal_cancels_the_legs_of_the_old_side() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = once_protected(
        BRACKETED_BUY,
        0.5,
        "state.sold = bot.sell{ symbol = 'MNQ', size = 2 } ~= nil",
    );
    let run = start_engine(&sim, dir.path(), &script, fast_options()).await;
    sim.step_quotes(1);
    wait_protected(&run).await;
    let (client, account) = (run.client.clone(), run.account);
    eventually("short 1 with the long's legs cancelled", || {
        let client = client.clone();
        async move {
            let positions = client.open_positions(account).await.unwrap();
            client.open_orders(account).await.unwrap().is_empty()
                && positions.len() == 1
                && positions[0].net_size() == -1
        }
    })
    .await;
    let state = stop(run).await;
    assert_eq!(state["sold"], true, "{state}");
}
