//! Helpers shared by the simulator's HTTP tests: start a simulator, call it with reqwest.

#![allow(dead_code)]

use std::time::Duration;

use moontick::sim::{SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub async fn sim() -> Simulator {
    sim_with(SimConfig {
        quote_rate: 0.0,
        ..SimConfig::default()
    })
    .await
}

pub async fn sim_with(config: SimConfig) -> Simulator {
    moontick::tls::ensure_crypto_provider();
    Simulator::start(config).await.expect("simulator starts")
}

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    pub fn new(sim: &Simulator) -> Self {
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

    pub async fn logged_in(sim: &Simulator) -> Self {
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

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// A call expected to be answered HTTP 200 with an envelope.
    pub async fn call(&self, path: &str, body: Value) -> Value {
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
