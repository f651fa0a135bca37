//! The simulator's fault control endpoint, `POST`/`GET /sim/faults` (it takes the JSON
//! vocabulary of [`fault_spec`](super::fault_spec)), and the request wrapper that acts on the
//! faults the REST pipeline cannot express in a reply (dropped connections, work that outlives
//! its client).
//!
//! The simulator listens on loopback only, so the endpoint is reachable only from this machine;
//! it takes no token (the simulator's one user is a test user) and exists in no client.

use std::future::Future;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::fault_spec::FaultSpec;
use super::faults::{DropReply, Faults};
use super::shared::Shared;
use crate::gateway::Endpoint;

type Reply = Response<Full<Bytes>>;

/// The path of the control endpoint.
pub const PATH: &str = "/sim/faults";

/// `GET` here answers `{"quotes_sent": n, "lagging_dropped": n, "lagging_skipped": n}`: quote
/// records the market hub wrote so far (a benchmark running the simulator as a separate process
/// compares it with what Lua saw), hub clients dropped for lagging and the events they missed.
pub const STATS_PATH: &str = "/sim/stats";

/// A request whose connection was closed without a reply (a `"drop"` fault). hyper closes the
/// connection when a service fails.
#[derive(Debug, thiserror::Error)]
#[error("reply dropped by a simulator fault")]
pub(crate) struct DroppedReply;

/// Wraps every request: the control endpoint, dropped replies, and delayed or frozen requests,
/// which run in their own task so they execute even when the client gave up and hung up.
pub(crate) async fn around<F, Fut>(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    next: F,
) -> Result<Reply, DroppedReply>
where
    F: FnOnce(Arc<Shared>, Request<Incoming>) -> Fut,
    Fut: Future<Output = Reply> + Send + 'static,
{
    if req.uri().path().eq_ignore_ascii_case(PATH) {
        return Ok(control(&shared, req).await);
    }
    if req.uri().path().eq_ignore_ascii_case(STATS_PATH) {
        let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        let body = serde_json::json!({
            "quotes_sent": load(&shared.quotes_sent),
            "lagging_dropped": load(&shared.lagging_dropped),
            "lagging_skipped": load(&shared.lagging_skipped),
        });
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(r);
    }
    let Some(ep) = Endpoint::from_path(req.uri().path()) else {
        return Ok(next(shared, req).await);
    };
    let dropped = shared.faults.take_drop(ep);
    if dropped == Some(DropReply::BeforeExecute) {
        *shared.stats().calls.entry(ep).or_default() += 1;
        return Err(DroppedReply);
    }
    let reply = if shared.faults.delay_for(ep).is_some() {
        tokio::spawn(next(shared, req))
            .await
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "handler failed"))
    } else {
        next(shared, req).await
    };
    match dropped {
        Some(DropReply::AfterExecute) => Err(DroppedReply),
        _ => Ok(reply),
    }
}

async fn control(shared: &Shared, req: Request<Incoming>) -> Reply {
    match *req.method() {
        Method::GET => active(&shared.faults),
        Method::POST => {
            let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"),
            };
            match FaultSpec::parse(&String::from_utf8_lossy(&body)) {
                Ok(spec) => {
                    tracing::info!(?spec, "simulator fault set");
                    spec.apply(&shared.faults);
                    active(&shared.faults)
                }
                Err(e) => plain(StatusCode::BAD_REQUEST, &e),
            }
        }
        _ => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET or POST");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            r
        }
    }
}

/// `{"active": [...]}`: the switches that are on.
fn active(faults: &Faults) -> Reply {
    let body = serde_json::json!({ "active": faults.active() });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn plain(status: StatusCode, text: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
