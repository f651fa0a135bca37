//! The simulator's REST side over real HTTP on 127.0.0.1:0: envelopes, auth, errors, rate
//! limits, faults, bars and orders, driven with a plain reqwest client.

use std::time::Duration;

use moontick::gateway::Endpoint;
use moontick::sim::faults::{AfterExecute, FaultReply};
use moontick::sim::{SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn sim() -> Simulator {
    sim_with(SimConfig {
        quote_rate: 0.0,
        ..SimConfig::default()
    })
    .await
}

async fn sim_with(config: SimConfig) -> Simulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Simulator::start(config).await.expect("simulator starts")
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(sim: &Simulator) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self {
            http,
            base: sim.url(),
            token: None,
        }
    }

    async fn logged_in(sim: &Simulator) -> Self {
        let mut api = Self::new(sim);
        let v = api
            .call(
                "/api/Auth/loginKey",
                json!({"userName": "demo", "apiKey": "demo"}),
            )
            .await;
        api.token = Some(v["token"].as_str().unwrap().to_string());
        api
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// A call expected to be answered HTTP 200 with an envelope.
    async fn call(&self, path: &str, body: Value) -> Value {
        let resp = self.post(path, body).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            v.get("success").is_some() && v.get("errorCode").is_some(),
            "{v}"
        );
        v
    }
}

#[tokio::test]
async fn login_with_the_right_key_returns_a_jwt_in_the_envelope() {
    let sim = sim().await;
    let api = Api::new(&sim);
    let v = api
        .call(
            "/api/Auth/loginKey",
            json!({"userName": "demo", "apiKey": "demo"}),
        )
        .await;
    assert_eq!(
        (
            v["success"].clone(),
            v["errorCode"].clone(),
            v["errorMessage"].clone()
        ),
        (json!(true), json!(0), Value::Null)
    );
    let token = v["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    let again = api
        .call(
            "/api/Auth/loginKey",
            json!({"userName": "demo", "apiKey": "demo"}),
        )
        .await;
    assert_ne!(again["token"], v["token"], "every token is unique");
    assert_eq!(sim.stats().logins, 2);
}

#[tokio::test]
async fn wrong_key_is_answered_with_code_3_and_a_null_token() {
    let sim = sim().await;
    let v = Api::new(&sim)
        .call(
            "/api/Auth/loginKey",
            json!({"userName": "demo", "apiKey": "nope"}),
        )
        .await;
    assert_eq!(
        v,
        json!({"token": null, "success": false, "errorCode": 3, "errorMessage": null})
    );
}

#[tokio::test]
async fn login_without_api_key_is_a_400_problem_details() {
    let sim = sim().await;
    let resp = Api::new(&sim)
        .post("/api/Auth/loginKey", json!({"userName": "demo"}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], 400);
    assert_eq!(v["errors"]["ApiKey"][0], "The ApiKey field is required.");
}

#[tokio::test]
async fn calls_without_a_valid_token_get_401() {
    let sim = sim().await;
    let mut api = Api::new(&sim);
    let body = json!({"onlyActiveAccounts": true});
    assert_eq!(
        api.post("/api/Account/search", body.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    api.token = Some("not.a.jwt".into());
    assert_eq!(
        api.post("/api/Account/search", body.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    api.token = Some(
        sim.mint_token(chrono::Duration::seconds(-1))
            .expose()
            .to_string(),
    );
    assert_eq!(
        api.post("/api/Account/search", body.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    api.token = Some(
        sim.mint_token(chrono::Duration::minutes(3))
            .expose()
            .to_string(),
    );
    assert_eq!(
        api.post("/api/Account/search", body).await.status(),
        StatusCode::OK
    );
    assert_eq!(sim.stats().unauthorized, 3);
}

#[tokio::test]
async fn validate_returns_a_new_token_and_logout_revokes_the_old_one() {
    let sim = sim().await;
    let mut api = Api::logged_in(&sim).await;
    let v = api.call("/api/Auth/validate", json!({})).await;
    let fresh = v["newToken"].as_str().unwrap().to_string();
    assert_ne!(Some(&fresh), api.token.as_ref());
    assert_eq!(sim.stats().validates, 1);
    api.call("/api/Auth/logout", json!({})).await;
    assert_eq!(
        api.post("/api/Auth/validate", json!({})).await.status(),
        StatusCode::UNAUTHORIZED
    );
    api.token = Some(fresh);
    assert_eq!(
        api.call("/api/Auth/validate", json!({})).await["success"],
        true
    );
}

#[tokio::test]
async fn short_token_lifetime_expires_tokens_in_seconds() {
    let sim = sim_with(SimConfig {
        quote_rate: 0.0,
        token_lifetime: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await;
    let api = Api::logged_in(&sim).await;
    let body = json!({"onlyActiveAccounts": true});
    // Wait until the clock has passed `exp` (a whole-second claim), then the token is refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        api.post("/api/Account/search", body).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn accounts_filter_inactive_ones() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let active = api
        .call("/api/Account/search", json!({"onlyActiveAccounts": true}))
        .await;
    let all = api
        .call("/api/Account/search", json!({"onlyActiveAccounts": false}))
        .await;
    assert_eq!(active["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(active["accounts"][0]["id"], sim.account_id());
    assert_eq!(active["accounts"][0]["canTrade"], true);
    assert_eq!(all["accounts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn contract_search_is_fuzzy_and_search_by_id_knows_unknown_ids() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let v = api
        .call(
            "/api/Contract/search",
            json!({"searchText": "NQ", "live": false}),
        )
        .await;
    let symbols: Vec<&str> = v["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["symbolId"].as_str().unwrap())
        .collect();
    assert!(
        symbols.contains(&"F.US.MNQ") && symbols.contains(&"F.US.ENQ"),
        "{symbols:?}"
    );
    let es = sim.contract_id("ES").unwrap();
    assert!(es.starts_with("CON.F.US.EP."));
    let v = api
        .call("/api/Contract/searchById", json!({"contractId": es}))
        .await;
    assert_eq!(
        (
            v["contract"]["tickSize"].clone(),
            v["contract"]["tickValue"].clone()
        ),
        (json!(0.25), json!(12.5))
    );
    let v = api
        .call(
            "/api/Contract/searchById",
            json!({"contractId": "CON.F.US.NOPE.Z25"}),
        )
        .await;
    assert_eq!(
        (v["success"].clone(), v["errorCode"].clone()),
        (json!(false), json!(1))
    );
    let v = api
        .call("/api/Contract/available", json!({"live": false}))
        .await;
    assert!(
        v["contracts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["activeContract"] == true)
    );
}

#[tokio::test]
async fn bars_come_newest_first_on_the_tick_grid() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let now = chrono::Utc::now();
    let body = |unit: i32, limit: i32| {
        json!({"contractId": mnq, "live": false, "startTime": (now - chrono::Duration::days(2)).to_rfc3339(),
               "endTime": now.to_rfc3339(), "unit": unit, "unitNumber": 5, "limit": limit, "includePartialBar": false})
    };
    let v = api.call("/api/History/retrieveBars", body(2, 50)).await;
    let bars = v["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 50);
    let times: Vec<chrono::DateTime<chrono::Utc>> = bars
        .iter()
        .map(|b| b["t"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first");
    for b in bars {
        for k in ["o", "h", "l", "c"] {
            let p = b[k].as_f64().unwrap();
            assert_eq!((p / 0.25).fract(), 0.0, "{b}");
        }
        assert!(b["l"].as_f64() <= b["o"].as_f64() && b["o"].as_f64() <= b["h"].as_f64());
    }
    assert_eq!(
        api.call("/api/History/retrieveBars", body(9, 50)).await["errorCode"],
        2
    );
    assert_eq!(
        api.call("/api/History/retrieveBars", body(2, 20_001)).await["errorCode"],
        4
    );
}

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
    let old = api
        .call(
            "/api/Contract/search",
            json!({"searchText": "MES", "live": false}),
        )
        .await["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["activeContract"] == false)
        .unwrap()["id"]
        .clone();
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
async fn exceeding_the_budget_is_429_with_retry_after() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await; // the login is request 1 of 200
    let body = json!({"onlyActiveAccounts": true});
    for _ in 0..199 {
        assert_eq!(
            api.post("/api/Account/search", body.clone()).await.status(),
            StatusCode::OK
        );
    }
    let resp = api.post("/api/Account/search", body).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs));
    // Bars have their own bucket, so they still go through.
    let v = api.post("/api/History/retrieveBars", json!({})).await;
    assert_eq!(
        v.status(),
        StatusCode::BAD_REQUEST,
        "budget passed, body invalid"
    );
}

#[tokio::test]
async fn faults_answer_500_429_401_and_reject_logins() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    let body = json!({"onlyActiveAccounts": true});
    sim.faults()
        .fail_next(1, Some(Endpoint::AccountSearch), FaultReply::ServerError);
    sim.faults().fail_next(
        1,
        None,
        FaultReply::TooManyRequests {
            retry_after: Duration::from_secs(3),
        },
    );
    sim.faults().fail_next(1, None, FaultReply::Unauthorized);
    assert_eq!(
        api.post("/api/Account/search", body.clone()).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let resp = api.post("/api/Account/search", body.clone()).await;
    assert_eq!(
        (
            resp.status(),
            resp.headers()["retry-after"].to_str().unwrap()
        ),
        (StatusCode::TOO_MANY_REQUESTS, "3")
    );
    assert_eq!(
        api.post("/api/Account/search", body.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.post("/api/Account/search", body).await.status(),
        StatusCode::OK
    );
    sim.faults().reject_logins(true);
    let v = Api::new(&sim)
        .call(
            "/api/Auth/loginKey",
            json!({"userName": "demo", "apiKey": "demo"}),
        )
        .await;
    assert_eq!(v["errorCode"], 3);
}

#[tokio::test]
async fn expire_all_tokens_makes_old_tokens_401_and_new_logins_work() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    sim.faults().expire_all_tokens();
    assert_eq!(
        api.post("/api/Auth/validate", json!({})).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let fresh = Api::logged_in(&sim).await;
    assert_eq!(
        fresh.call("/api/Auth/validate", json!({})).await["success"],
        true
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
async fn hub_paths_and_unknown_paths_are_404_and_ping_pongs() {
    let sim = sim().await;
    let api = Api::new(&sim);
    assert_eq!(
        api.post("/hubs/market", json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.post("/api/Nope/nothing", json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    let pong = api
        .http
        .get(format!("{}/api/Status/ping", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(pong, "pong");
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
