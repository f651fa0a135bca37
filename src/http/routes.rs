//! Routing and the small endpoints (`/healthz`, `/readyz`, `/status`, `/metrics`, `/halt`,
//! `/resume`, `/journal`); reading bodies within the size limit; JSON responses.

use std::sync::Arc;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::app::{App, authorized};
use super::ops::{metrics_text, strategies_ready, strategy_json};
use super::reply::{Reply, json_reply};
use super::webhook;

fn error(status: StatusCode, msg: &str) -> Reply {
    json_reply(status, json!({"ok": false, "error": msg}))
}

/// Routes one request. Never fails: every problem is a response.
pub(crate) async fn handle(app: Arc<App>, req: Request<Incoming>) -> Reply {
    // The path may carry the webhook secret (`/webhook/{name}/{secret}`), so it is never logged.
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["healthz"]) => json_reply(StatusCode::OK, json!({"ok": true})),
        (&Method::GET, ["readyz"]) => readyz(&app),
        (&Method::GET, ["status"]) => {
            if !authorized(&app.cfg.secret, req.headers(), std::iter::empty()) {
                return json_reply(StatusCode::UNAUTHORIZED, json!({"ok": false}));
            }
            json_reply(StatusCode::OK, status(&app))
        }
        (&Method::GET, ["journal"]) => {
            // The same gate as `/status`: the journal is the account's trades.
            if !authorized(&app.cfg.secret, req.headers(), std::iter::empty()) {
                return json_reply(StatusCode::UNAUTHORIZED, json!({"ok": false}));
            }
            super::journal::download(&app, req.uri().query()).await
        }
        (&Method::GET, ["metrics"]) => {
            let text = metrics_text(&app.metrics, &app.strategies.status());
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        (&Method::POST, ["halt"]) => halt(app, req).await,
        (&Method::POST, ["resume"]) => resume(app, req).await,
        (&Method::POST, ["webhook", name]) | (&Method::POST, ["webhook", name, _]) => {
            let name = (*name).to_owned();
            let path_secret = segments.get(2).map(|s| (*s).to_owned());
            let headers = req.headers().clone();
            let query = req.uri().query().map(str::to_owned);
            let bytes = match read_body(&app, req).await {
                Ok(b) => b,
                Err(r) => {
                    app.metrics.webhook("", r.status().as_u16());
                    return r;
                }
            };
            webhook::handle(
                app,
                &name,
                path_secret.as_deref(),
                &headers,
                query.as_deref(),
                bytes,
            )
            .await
        }
        (_, ["healthz" | "readyz" | "status" | "metrics" | "journal"]) => method_not_allowed("GET"),
        (_, ["halt" | "resume"]) | (_, ["webhook", ..]) => method_not_allowed("POST"),
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// The whole body, or the response to give instead: 413 over the limit (from `Content-Length`
/// at once, or while reading), 408 when the client stalls, 400 when the connection breaks.
pub(crate) async fn read_body(app: &App, req: Request<Incoming>) -> Result<Bytes, Reply> {
    let too_large = || error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.cfg.max_body as u64) {
        return Err(too_large());
    }
    let limited = Limited::new(req.into_body(), app.cfg.max_body);
    match tokio::time::timeout(app.cfg.read_timeout, limited.collect()).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "body not received in time",
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err(error(StatusCode::BAD_REQUEST, "could not read the body")),
    }
}

fn readyz(app: &App) -> Reply {
    let ready = app
        .ops
        .readiness()
        .and_then(|()| strategies_ready(&app.strategies.status()));
    match ready {
        Ok(()) => json_reply(StatusCode::OK, json!({"ready": true})),
        Err(reason) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reason": reason}),
        ),
    }
}

/// The engine's status object with `"strategies"` and `"ready"` added. The host's view of the
/// strategies wins over anything the engine put under the same key.
fn status(app: &App) -> Value {
    let mut v = app.ops.status();
    if !v.is_object() {
        v = json!({ "engine": v });
    }
    let strategies: Vec<Value> = app.strategies.status().iter().map(strategy_json).collect();
    let ready = app
        .ops
        .readiness()
        .and_then(|()| strategies_ready(&app.strategies.status()));
    if let Some(o) = v.as_object_mut() {
        o.insert("strategies".into(), Value::Array(strategies));
        o.insert(
            "ready".into(),
            match ready {
                Ok(()) => json!(true),
                Err(r) => json!({ "reason": r }),
            },
        );
    }
    v
}

/// The JSON body of an operator command, once the secret is checked (header, or
/// `secret`/`passphrase` in the body); else the response to give.
async fn operator_body(app: &App, req: Request<Incoming>) -> Result<Value, Reply> {
    let headers = req.headers().clone();
    let bytes = read_body(app, req).await?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let fields = ["secret", "passphrase"]
        .into_iter()
        .filter_map(|f| body.get(f).and_then(Value::as_str));
    if !authorized(&app.cfg.secret, &headers, fields) {
        return Err(json_reply(StatusCode::UNAUTHORIZED, json!({"ok": false})));
    }
    Ok(body)
}

/// `POST /resume`: lifts a halt (the kill switch, the daily loss limit, or one carried over
/// from earlier in the day). Needs the secret like `/halt`.
async fn resume(app: Arc<App>, req: Request<Incoming>) -> Reply {
    if let Err(r) = operator_body(&app, req).await {
        return r;
    }
    tracing::warn!("resume requested over HTTP");
    match app.ops.resume() {
        Ok(()) => json_reply(StatusCode::OK, json!({"ok": true, "halted": false})),
        Err(e) => {
            tracing::error!(error = %e, "resume failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e)
        }
    }
}

/// `POST /halt`: the kill switch. Needs the secret (header, or `secret`/`passphrase` in a JSON
/// body); an optional `reason` in the body is passed on.
async fn halt(app: Arc<App>, req: Request<Incoming>) -> Reply {
    let body = match operator_body(&app, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("halted over HTTP");
    // Bounded, so a caller cannot write an arbitrary amount into the log and status.
    let reason: String = reason.chars().take(200).collect();
    tracing::warn!(reason = %reason, "kill switch requested over HTTP");
    app.metrics.halts.inc();
    match app.ops.halt(&reason) {
        Ok(()) => json_reply(StatusCode::OK, json!({"ok": true, "halted": true})),
        Err(e) => {
            tracing::error!(error = %e, "halt failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e)
        }
    }
}
