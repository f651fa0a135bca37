//! The simulator's REST side over real HTTP on 127.0.0.1:0: envelopes, auth, contracts, bars,
//! rate limits and fault switches, driven with a plain reqwest client.

mod support;

use std::time::Duration;

use moontick::gateway::Endpoint;
use moontick::sim::SimConfig;
use moontick::sim::faults::FaultReply;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Api, sim, sim_with};

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

/// A widely used client sorts the search rows by name and takes the first: with the expired
/// contract listed it picked it, and every order failed with "Contract is not active".
#[tokio::test]
async fn contract_search_lists_only_the_front_month_and_expired_ones_stay_reachable_by_id() {
    let sim = sim().await;
    let api = Api::logged_in(&sim).await;
    for ticker in ["MNQ", "MES", "NQ", "ES"] {
        let front = sim.contract_id(ticker).unwrap();
        let expired = sim.expired_contract_id(ticker).unwrap();
        assert_ne!(front, expired);
        let v = api
            .call(
                "/api/Contract/search",
                json!({"searchText": ticker, "live": false}),
            )
            .await;
        let rows = v["contracts"].as_array().unwrap();
        let root = front.split('.').nth(3).unwrap();
        let mine: Vec<&Value> = rows
            .iter()
            .filter(|c| c["symbolId"] == format!("F.US.{root}"))
            .collect();
        assert_eq!(mine.len(), 1, "one contract per product: {rows:?}");
        assert_eq!(mine[0]["id"], front.as_str());
        assert!(rows.iter().all(|c| c["activeContract"] == true), "{rows:?}");
        let by_id = api
            .call("/api/Contract/searchById", json!({"contractId": expired}))
            .await;
        assert_eq!(by_id["success"], true, "{by_id}");
        assert_eq!(by_id["contract"]["activeContract"], false, "{by_id}");
    }
    let all = api
        .call(
            "/api/Contract/search",
            json!({"searchText": "", "live": false}),
        )
        .await;
    assert_eq!(all["contracts"].as_array().unwrap().len(), 4, "{all}");
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
async fn hub_paths_and_unknown_paths_are_404_and_ping_pongs() {
    let sim = sim().await;
    let api = Api::new(&sim);
    assert_eq!(
        api.post("/hubs/nope", json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    // A real hub checks the token before anything else (tests/hubs_protocol.rs covers the rest).
    assert_eq!(
        api.post("/hubs/market", json!({})).await.status(),
        StatusCode::UNAUTHORIZED
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
