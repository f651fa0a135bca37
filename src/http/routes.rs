//! Routing and the small endpoints (`/healthz`, `/readyz`, `/status`, `/metrics`, `/halt`,
//! `/resume`, `/flatten`, pausing a strategy, logging in, `/journal`); reading bodies within the size limit;
//! JSON responses.

use std::sync::Arc;

use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::app::App;
use super::auth::{self, Access, gate};
use super::ops::metrics_text;
use super::reply::{Body, Reply, json_reply};
use super::status_json::{readyz, status};
use super::{events, pages, webhook};

fn error(status: StatusCode, msg: &str) -> Reply {
    json_reply(status, json!({"ok": false, "error": msg}))
}

/// Routes one request. Never fails: every problem is a response.
pub(crate) async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::GET && req.uri().path() == "/events" {
        if let Err(d) = gate(&app, req.headers(), Access::Read, std::iter::empty()) {
            return Reply::from(d).map(Either::Left);
        }
        return events::events(app);
    }
    route(app, req).await.map(Either::Left)
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Reply {
    // The path may carry the webhook secret (`/webhook/{name}/{secret}`), so it is never logged.
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, [""]) => match gate(&app, req.headers(), Access::Read, std::iter::empty()) {
            Ok(()) => pages::dashboard_page(),
            Err(_) => pages::login_page(StatusCode::OK, false),
        },
        (&Method::GET, ["assets", name]) => pages::asset(name),
        (&Method::GET, ["healthz"]) => json_reply(StatusCode::OK, json!({"ok": true})),
        (&Method::GET, ["readyz"]) => readyz(&app),
        (&Method::GET, ["status"]) => {
            if let Err(d) = gate(&app, req.headers(), Access::Read, std::iter::empty()) {
                return d.into();
            }
            json_reply(StatusCode::OK, status(&app))
        }
        (&Method::POST, ["login"]) => {
            let headers = req.headers().clone();
            match read_body(&app, req).await {
                Ok(body) => auth::login(&app, &headers, &body),
                Err(r) => r,
            }
        }
        (&Method::POST, ["logout"]) => auth::logout(&app, req.headers()),
        (&Method::POST, ["flatten"]) => flatten(app, req).await,
        (&Method::POST, ["strategies", name, action @ ("pause" | "resume")]) => {
            let (name, paused) = ((*name).to_owned(), *action == "pause");
            hold(app, req, &name, paused).await
        }
        (&Method::GET, ["journal"]) => {
            // The same gate as `/status`: the journal is the account's trades.
            if let Err(d) = gate(&app, req.headers(), Access::Read, std::iter::empty()) {
                return d.into();
            }
            super::journal::download(&app, req.uri().query()).await
        }
        (&Method::GET, ["metrics"]) => {
            // Order, fill and halt counts are the account's business too. Prometheus sends the
            // secret as a bearer token (`authorization: { credentials: ... }` in its config).
            let bearer = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if let Err(d) = gate(&app, req.headers(), Access::Read, bearer.into_iter()) {
                return d.into();
            }
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
        (_, ["healthz" | "readyz" | "status" | "metrics" | "events" | "journal"])
        | (_, ["assets", _]) => method_not_allowed("GET"),
        (_, ["halt" | "resume" | "flatten" | "login" | "logout"])
        | (_, ["webhook", ..])
        | (_, ["strategies", _, "pause" | "resume"]) => method_not_allowed("POST"),
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

/// The JSON body of an operator command, once [`gate`] let it through (the secret in the header
/// or as `secret`/`passphrase` in the body, or a dashboard session from our own page); else the
/// response to give.
async fn operator_body(app: &App, req: Request<Incoming>) -> Result<Value, Reply> {
    let headers = req.headers().clone();
    let bytes = read_body(app, req).await?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let fields = ["secret", "passphrase"]
        .into_iter()
        .filter_map(|f| body.get(f).and_then(Value::as_str));
    gate(app, &headers, Access::Act, fields).map_err(Reply::from)?;
    Ok(body)
}

/// `POST /flatten`: cancels every working order and closes every position, without halting.
async fn flatten(app: Arc<App>, req: Request<Incoming>) -> Reply {
    if let Err(r) = operator_body(&app, req).await {
        return r;
    }
    tracing::warn!("flatten all requested over HTTP");
    match app.ops.flatten_all() {
        Ok(()) => json_reply(StatusCode::OK, json!({"ok": true})),
        Err(e) => {
            tracing::error!(error = %e, "flatten all failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e)
        }
    }
}

/// `POST /strategies/{name}/pause` and `/resume`: the operator pauses or resumes one strategy.
async fn hold(app: Arc<App>, req: Request<Incoming>, name: &str, paused: bool) -> Reply {
    if let Err(r) = operator_body(&app, req).await {
        return r;
    }
    if !app.strategies.hold(name, paused) {
        return error(StatusCode::NOT_FOUND, "no such strategy");
    }
    tracing::warn!(
        strategy = name,
        "strategy {} over HTTP",
        if paused { "pause" } else { "resume" }
    );
    json_reply(StatusCode::OK, json!({"ok": true, "paused": paused}))
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
