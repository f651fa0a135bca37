//! `moontick run` in-process: the real wiring ([`moontick::run::run`]) on a listener bound to
//! `127.0.0.1:0`, with a shutdown the test triggers, and a client for its HTTP server.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use moontick::config::Config;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "run-test-secret-42";

/// A running `run`: its URL, and the switch that stops it.
pub struct Running {
    pub url: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The variables of a run on loopback with `STRATEGIES_DIR`, `STATE_DIR` and `RECORD_DIR` under
/// `dir` and the test secret; `extra` adds or overrides.
pub fn vars(dir: &Path, extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1".to_string()),
        ("WEBHOOK_SECRET", SECRET.to_string()),
        ("STRATEGIES_DIR", strategies(dir).display().to_string()),
        ("STATE_DIR", state(dir).display().to_string()),
        ("RECORD_DIR", dir.join("data").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, val) in extra {
        v.insert((*k).to_string(), val.clone());
    }
    v
}

pub fn strategies(dir: &Path) -> PathBuf {
    dir.join("strategies")
}

pub fn state(dir: &Path) -> PathBuf {
    dir.join("state")
}

/// Writes `name.lua` into the strategies directory under `dir`.
pub fn strategy(dir: &Path, name: &str, source: &str) {
    let d = strategies(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(format!("{name}.lua")), source).unwrap();
}

/// Starts `run` with `vars` and waits until `/readyz` answers 200.
pub async fn start(vars: &HashMap<String, String>) -> Running {
    moontick::tls::ensure_crypto_provider();
    let config = Config::from_vars(vars).expect("valid test configuration");
    std::fs::create_dir_all(&config.strategies_dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        moontick::run::run(&config, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let running = Running {
        url,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        stop: Some(stop),
        task: Some(task),
    };
    running.wait_status("/readyz", 200).await;
    running
}

impl Running {
    /// Polls `path` until it answers `status` (30 s at most; the CI machine is shared).
    pub async fn wait_status(&self, path: &str, status: u16) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let last = match self.http.get(format!("{}{path}", self.url)).send().await {
                Ok(r) if r.status().as_u16() == status => return,
                Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never answered {status}; last: {last}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /status` with the secret.
    pub async fn status(&self) -> Value {
        self.http
            .get(format!("{}/status", self.url))
            .header("x-webhook-secret", SECRET)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A POST with a JSON body, with the secret in the header when `secret` is true.
    pub async fn post(&self, path: &str, body: &Value, secret: bool) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(body);
        if secret {
            req = req.header("x-webhook-secret", SECRET);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Triggers the shutdown and waits for `run` to return (30 s at most).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("run returns after the shutdown")
            .expect("run does not panic")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
