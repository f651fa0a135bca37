//! The simulator's order side over real HTTP on 127.0.0.1:0: fills, positions, trades,
//! brackets, place error codes, execute-then-fail faults and the broadcast channels.

mod support;

use std::time::Duration;

use moontick::gateway::Endpoint;
use moontick::sim::SimConfig;
use moontick::sim::faults::AfterExecute;
use reqwest::StatusCode;
use serde_json::json;
use support::{Api, sim, sim_with};

#[tokio::test]
async fn market_order_fills_opens_a_position_and_close_flattens_it() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let (acct, mnq) = (sim.account_id(), sim.contract_id("MNQ").unwrap());
    sim.set_price(&mnq, 20_000.0);
    let v = api.call("/api/Order/place", json!({"accountId": acct, "contractId": mnq, "type": 2, "side": 0, "size": 2, "customTag": "t-1"})).await;
    assert_eq!(v["success"], true, "{v}");
    let id = v["orderId"].as_i64().unwrap();
    let v = api
        .call(
            "/api/Order/searchById",
            json!({"accountId": acct, "orderId": id}),
        )
        .await;
    assert_eq!(
        (
            v["order"]["status"].clone(),
            v["order"]["filledPrice"].clone()
        ),
        (json!(2), json!(20_000.25))
    );
    let v = api
        .call("/api/Position/searchOpen", json!({"accountId": acct}))
        .await;
    assert_eq!(
        (
            v["positions"][0]["type"].clone(),
            v["positions"][0]["size"].clone()
        ),
        (json!(1), json!(2))
    );
    let dup = api.call("/api/Order/place", json!({"accountId": acct, "contractId": mnq, "type": 2, "side": 0, "size": 1, "customTag": "t-1"})).await;
    assert_eq!(dup["errorCode"], 2);
    let bad = api
        .call(
            "/api/Position/partialCloseContract",
            json!({"accountId": acct, "contractId": mnq, "size": 5}),
        )
        .await;
    assert_eq!(bad["errorCode"], 5, "InvalidCloseSize");
    assert_eq!(
        api.call(
            "/api/Position/partialCloseContract",
            json!({"accountId": acct, "contractId": mnq, "size": 1})
        )
        .await["success"],
        true
    );
    assert_eq!(
        api.call(
            "/api/Position/closeContract",
            json!({"accountId": acct, "contractId": mnq})
        )
        .await["success"],
        true
    );
    assert_eq!(
        api.call(
            "/api/Position/closeContract",
            json!({"accountId": acct, "contractId": mnq})
        )
        .await["errorCode"],
        2
    );
    let v = api
        .call(
            "/api/Trade/search",
            json!({"accountId": acct, "startTimestamp": "2020-01-01T00:00:00Z"}),
        )
        .await;
    let trades = v["trades"].as_array().unwrap();
    assert_eq!(trades.len(), 3);
    assert!(trades[0]["profitAndLoss"].is_null() && trades[1]["profitAndLoss"].is_number());
}

#[tokio::test]
async fn place_errors_use_place_codes() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let acct = sim.account_id();
    let v = api.call("/api/Order/place", json!({"accountId": acct, "contractId": "CON.F.US.NOPE.Z25", "type": 2, "side": 0, "size": 1})).await;
    assert_eq!(v["errorCode"], 8);
    let old = sim.expired_contract_id("MES").unwrap();
    let v = api
        .call(
            "/api/Order/place",
            json!({"accountId": acct, "contractId": old, "type": 2, "side": 0, "size": 1}),
        )
        .await;
    assert_eq!(v["errorCode"], 9);
    let v = api.call("/api/Order/place", json!({"accountId": 1, "contractId": sim.contract_id("MES"), "type": 2, "side": 0, "size": 1})).await;
    assert_eq!(v["errorCode"], 1);
    let v = api.call("/api/Order/place", json!({"accountId": acct, "contractId": sim.contract_id("MES"), "type": 2, "side": 0, "size": 0})).await;
    assert_eq!(
        (v["errorCode"].clone(), v["orderId"].is_i64()),
        (json!(2), true),
        "a rejected place still has an id"
    );
}

#[tokio::test]
async fn bracket_children_stay_hidden_until_the_entry_fills_then_one_cancels_the_other() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let (acct, mnq) = (sim.account_id(), sim.contract_id("MNQ").unwrap());
    sim.set_price(&mnq, 20_000.0);
    let v = api.call("/api/Order/place", json!({"accountId": acct, "contractId": mnq, "type": 1, "side": 0, "size": 1,
        "limitPrice": 19_990.0, "customTag": "b1",
        "stopLossBracket": {"ticks": -20, "type": 4}, "takeProfitBracket": {"ticks": 40, "type": 1}})).await;
    let entry = v["orderId"].as_i64().unwrap();
    let open = api
        .call("/api/Order/searchOpen", json!({"accountId": acct}))
        .await;
    assert_eq!(
        open["orders"].as_array().unwrap().len(),
        1,
        "suspended children are not open"
    );
    sim.set_price(&mnq, 19_989.75);
    let open = api
        .call("/api/Order/searchOpen", json!({"accountId": acct}))
        .await;
    let tags: Vec<&str> = open["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["customTag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["b1-SL", "b1-TP"]);
    assert_eq!(open["orders"][0]["parentOrderId"], entry);
    sim.set_price(&mnq, 19_985.0);
    let all = api
        .call(
            "/api/Order/search",
            json!({"accountId": acct, "startTimestamp": "2020-01-01T00:00:00Z"}),
        )
        .await;
    let statuses: Vec<i64> = all["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_i64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [2, 2, 3],
        "entry filled, stop filled, target cancelled"
    );
}

#[tokio::test]
async fn brackets_are_refused_in_position_brackets_mode() {
    let sim = sim_with(SimConfig {
        quote_rate: 0.0,
        auto_oco_brackets: false,
        ..SimConfig::default()
    })
    .await;
    let api = Api::logged_in(&sim).await;
    let v = api.call("/api/Order/place", json!({"accountId": sim.account_id(), "contractId": sim.contract_id("MNQ"), "type": 2, "side": 0, "size": 1,
        "stopLossBracket": {"ticks": -20, "type": 4}})).await;
    assert_eq!(v["errorCode"], 2);
    assert_eq!(
        v["errorMessage"],
        "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets."
    );
}

#[tokio::test]
async fn execute_then_500_places_the_order_anyway() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let (acct, mnq) = (sim.account_id(), sim.contract_id("MNQ").unwrap());
    sim.faults()
        .execute_then(1, Some(Endpoint::OrderPlace), AfterExecute::ServerError);
    let resp = api.post("/api/Order/place", json!({"accountId": acct, "contractId": mnq, "type": 2, "side": 1, "size": 1, "customTag": "u-1"})).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let v = api
        .call(
            "/api/Order/search",
            json!({"accountId": acct, "startTimestamp": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(v["orders"][0]["customTag"], "u-1");
}

#[tokio::test]
async fn delayed_reply_outlasts_a_short_client_timeout_but_still_executes() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let (acct, mnq) = (sim.account_id(), sim.contract_id("MNQ").unwrap());
    sim.faults().execute_then(
        1,
        Some(Endpoint::OrderPlace),
        AfterExecute::Delay(Duration::from_secs(5)),
    );
    let err = api
        .http
        .post(format!("{}/api/Order/place", api.base))
        .bearer_auth(api.token.as_ref().unwrap())
        .timeout(Duration::from_millis(300))
        .json(&json!({"accountId": acct, "contractId": mnq, "type": 2, "side": 0, "size": 1, "customTag": "slow-1"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    let v = api
        .call(
            "/api/Order/search",
            json!({"accountId": acct, "startTimestamp": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(v["orders"][0]["customTag"], "slow-1");
    sim.faults()
        .delay(Some(Endpoint::AccountSearch), Duration::from_millis(50));
    assert_eq!(
        api.call("/api/Account/search", json!({"onlyActiveAccounts": true}))
            .await["success"],
        true
    );
}

#[tokio::test]
async fn quotes_and_fills_are_published_on_the_broadcast_channels() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let (mut quotes, mut user) = (sim.subscribe_quotes(), sim.subscribe_user());
    let mnq = sim.contract_id("MNQ").unwrap();
    sim.step_quotes(3);
    let q = quotes.recv().await.unwrap();
    assert_eq!(q.ask - q.bid, 0.25);
    api.call(
        "/api/Order/place",
        json!({"accountId": sim.account_id(), "contractId": mnq, "type": 2, "side": 0, "size": 1}),
    )
    .await;
    let first = user.recv().await.unwrap();
    assert!(matches!(first, moontick::sim::events::UserEvent::Order(_)));
    sim.shutdown().await;
}

#[tokio::test]
async fn cancel_modify_and_v2_query_use_their_own_codes() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let (acct, mes) = (sim.account_id(), sim.contract_id("MES").unwrap());
    sim.set_price(&mes, 6_000.0);
    let limit = |price: f64| json!({"accountId": acct, "contractId": mes, "type": 1, "side": 0, "size": 1, "limitPrice": price});
    let id = api.call("/api/Order/place", limit(5_990.0)).await["orderId"]
        .as_i64()
        .unwrap();
    let modify = |body| api.call("/api/Order/modify", body);
    let v = modify(json!({"accountId": acct, "orderId": id, "limitPrice": 5_990.1})).await;
    assert_eq!(v["errorCode"], 3, "Rejected: off the tick grid");
    let v = modify(json!({"accountId": acct, "orderId": 42, "size": 2})).await;
    assert_eq!(v["errorCode"], 2, "OrderNotFound");
    let v =
        modify(json!({"accountId": acct, "orderId": id, "size": 2, "limitPrice": 5_995.0})).await;
    assert_eq!(v["success"], true);
    let v = api
        .call(
            "/api/Order/v2/query",
            json!({"filter": {"accountId": acct, "statuses": [1]}, "includeTotalCount": true}),
        )
        .await;
    assert_eq!(
        (v["totalCount"].clone(), v["orders"][0]["size"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(v["orders"][0]["limitPrice"], 5_995.0);
    let cancel = json!({"accountId": acct, "orderId": id});
    assert_eq!(
        api.call("/api/Order/cancel", cancel.clone()).await["success"],
        true
    );
    assert_eq!(
        api.call("/api/Order/cancel", cancel).await["errorCode"],
        3,
        "already cancelled"
    );
    let v = api
        .call("/api/Order/cancel", json!({"accountId": 7, "orderId": id}))
        .await;
    assert_eq!(v["errorCode"], 1, "AccountNotFound");
    let v = api
        .call("/api/Order/searchOpen", json!({"accountId": 7}))
        .await;
    assert_eq!(
        (v["success"].clone(), v["errorCode"].clone()),
        (json!(false), json!(1))
    );
}
