//! A notification receiver on loopback (a small hyper server): records every POST (path, body,
//! when) and answers as told: scripted statuses first, then 200; or never at all (a hung
//! receiver).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub body: Value,
    pub at: Instant,
}

/// An answer: status, and an optional `Retry-After` header and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<&'static str>,
    pub body: &'static str,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            body: "",
        }
    }
}

#[derive(Default)]
struct State {
    got: Vec<Got>,
    script: VecDeque<Answer>,
    hang: bool,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Answers `script` in order, then 200 to everything.
    pub async fn start(script: Vec<Answer>) -> Receiver {
        Self::start_with(script, false).await
    }

    /// Takes every request and never answers.
    pub async fn hung() -> Receiver {
        Self::start_with(Vec::new(), true).await
    }

    async fn start_with(script: Vec<Answer>, hang: bool) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            got: Vec::new(),
            script: script.into(),
            hang,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            url,
            state,
            task: Arc::new(task),
        }
    }

    pub fn got(&self) -> Vec<Got> {
        self.state.lock().unwrap().got.clone()
    }

    /// The bodies POSTed to `path`.
    pub fn bodies(&self, path: &str) -> Vec<Value> {
        self.got()
            .into_iter()
            .filter(|g| g.path == path)
            .map(|g| g.body)
            .collect()
    }

    /// Waits (10 s at most) until `path` got `n` POSTs, and returns them.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got: Vec<Got> = self.got().into_iter().filter(|g| g.path == path).collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path} got {} POST(s), not {n}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (hang, answer) = {
        let mut s = state.lock().unwrap();
        s.got.push(Got {
            path,
            body,
            at: Instant::now(),
        });
        (s.hang, s.script.pop_front())
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let answer = answer.unwrap_or(Answer::status(200));
    let mut r = Response::new(Full::new(Bytes::from_static(answer.body.as_bytes())));
    *r.status_mut() = StatusCode::from_u16(answer.status).unwrap();
    if let Some(after) = answer.retry_after {
        r.headers_mut().insert(
            "retry-after",
            hyper::header::HeaderValue::from_static(after),
        );
    }
    Ok(r)
}
