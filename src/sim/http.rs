//! The simulator's HTTP server: the hyper 1 accept loop with graceful shutdown, routing (REST,
//! and `/hubs/*` to the SignalR hubs in `hub`), and the pipeline every REST call goes through:
//! faults, bearer check, rate limit, handler.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::api;
use super::auth::TokenError;
use super::faults::{AfterExecute, FaultReply};
use super::reply::{Reply, bearer, empty, json, unauthorized};
use super::shared::Shared;
use crate::gateway::Endpoint;
use crate::secret::Secret;

/// How long shutdown waits for open connections (a delayed-reply fault may hold one).
const DRAIN: Duration = Duration::from_secs(2);
/// Request bodies are small JSON objects; anything bigger is a client bug.
const MAX_BODY: usize = 1 << 20;

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    // hyper-util's `GracefulShutdown` cannot watch an upgradeable http1 connection, so draining
    // is done by hand: each connection task holds a sender; all of them dropped means drained.
    let (held, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Usually EMFILE under load: back off instead of spinning.
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        // `control` answers `/sim/faults` and acts on the faults a reply cannot express.
        let svc = hyper::service::service_fn(move |req| {
            super::control::around(shared.clone(), req, handle)
        });
        // `with_upgrades`: the hubs take the connection over after a WebSocket upgrade.
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        let held = held.clone();
        let mut stopping = stop.clone();
        tokio::spawn(async move {
            let _held = held;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stopping.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    drop(held);
    let _ = tokio::time::timeout(DRAIN, drained.recv()).await;
}

fn too_many(wait: Duration) -> Reply {
    let mut r = empty(StatusCode::TOO_MANY_REQUESTS);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    r
}

fn fault_reply(reply: FaultReply) -> Reply {
    match reply {
        FaultReply::Unauthorized => unauthorized(true),
        FaultReply::TooManyRequests { retry_after } => too_many(retry_after),
        FaultReply::ServerError => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The user a login call names, for its rate-limit bucket.
fn login_user(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("userName")
                .and_then(|u| u.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn is_hub_path(path: &str) -> bool {
    path.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("/hubs/"))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    if is_hub_path(&path) {
        return super::hub_upgrade::handle(shared, req).await;
    }
    if path.eq_ignore_ascii_case("/api/Status/ping") && req.method() == Method::GET {
        return json(
            StatusCode::OK,
            b"pong".to_vec(),
            "text/plain; charset=utf-8",
        );
    }
    let Some(ep) = Endpoint::from_path(&path) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if req.method() != Method::POST {
        let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let token = bearer(req.headers());
    {
        let mut stats = shared.stats();
        *stats.calls.entry(ep).or_default() += 1;
        if ep == Endpoint::OrderPlace {
            let now = std::time::Instant::now();
            stats.last_place_at = Some(now);
            shared.place_arrivals.send_replace(Some(now));
        }
        if let Some(t) = &token {
            stats.last_bearer = Some(Secret::new(t.clone()));
        }
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return empty(StatusCode::PAYLOAD_TOO_LARGE),
    };
    if let Some(reply) = shared.faults.take_reply(ep) {
        return fault_reply(reply);
    }
    // A request the gateway has accepted runs to the end even when the client hangs up (a
    // timeout): a frozen gateway executes its queued requests once it wakes. So the request
    // runs in a task of its own, which dropping this future does not cancel.
    tokio::spawn(execute(shared, ep, token, body))
        .await
        .unwrap_or_else(|_| empty(StatusCode::INTERNAL_SERVER_ERROR))
}

async fn execute(
    shared: Arc<Shared>,
    ep: Endpoint,
    token: Option<String>,
    body: hyper::body::Bytes,
) -> Reply {
    if let Some(delay) = shared.faults.delay_for(ep) {
        tokio::time::sleep(delay).await;
    }
    let claims = if ep.is_login() {
        None
    } else {
        match shared.tokens.verify(token.as_deref()) {
            Ok(claims) => Some(claims),
            Err(e) => {
                shared.stats().unauthorized += 1;
                tracing::debug!(endpoint = ep.name(), reason = ?e, "simulator refused token");
                return unauthorized(e != TokenError::Missing);
            }
        }
    };
    if shared.config.rate_limits {
        let user = claims
            .as_ref()
            .map_or_else(|| login_user(&body), |c| c.sub.clone());
        if let Err(wait) = shared
            .budget(&user)
            .for_endpoint(ep)
            .try_acquire(tokio::time::Instant::now())
        {
            shared.stats().rate_limited += 1;
            return too_many(wait);
        }
    }
    let after = shared.faults.take_after(ep);
    let reply = api::dispatch(&shared, ep, &body, claims.as_ref());
    match after {
        None => reply,
        Some(AfterExecute::ServerError) => empty(StatusCode::INTERNAL_SERVER_ERROR),
        Some(AfterExecute::Delay(d)) => {
            tokio::time::sleep(d).await;
            reply
        }
    }
}
