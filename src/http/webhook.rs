//! `POST /webhook/{strategy}[/{secret}]`: authenticate, decode, dedupe, run the strategy's
//! `on_webhook`, and answer within TradingView's 3 s — never with a 5xx once the handler has
//! placed an order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Bytes;
use hyper::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::app::{App, authorized};
use super::dedupe::Seen;
use super::reply::{Reply, json_reply};
use crate::engine::{WebhookBody, WebhookOutcome, WebhookRequest};

/// Body fields that may carry the secret; removed before the script sees the body.
const SECRET_FIELDS: [&str; 2] = ["secret", "passphrase"];

/// Request headers never shown to a script: they carry credentials.
const HIDDEN_HEADERS: [&str; 3] = ["x-webhook-secret", "authorization", "cookie"];

/// Handles one webhook whose body has already been read (within the size limit).
pub(crate) async fn handle(
    app: Arc<App>,
    strategy: &str,
    path_secret: Option<&str>,
    headers: &HeaderMap,
    query: Option<&str>,
    bytes: Bytes,
) -> Reply {
    let started = Instant::now();
    let json_type = is_json_content_type(headers);
    let mut body = WebhookBody::from_bytes(&bytes);
    // Secret fields come out of the body whatever the outcome, so no later step (script, dedupe
    // of the decoded body, logs) can see them.
    let mut body_secrets = Vec::new();
    if let WebhookBody::Json(Value::Object(map)) = &mut body {
        for f in SECRET_FIELDS {
            if let Some(v) = map.remove(f) {
                body_secrets.push(v);
            }
        }
    }
    let candidates = body_secrets
        .iter()
        .filter_map(Value::as_str)
        .chain(path_secret);
    if !authorized(&app.cfg.secret, headers, candidates) {
        return app.count(
            "",
            json_reply(StatusCode::UNAUTHORIZED, json!({"ok": false})),
        );
    }
    if json_type && matches!(body, WebhookBody::Text(_)) {
        return app.count(
            "",
            json_reply(
                StatusCode::BAD_REQUEST,
                json!({"ok": false, "error": "malformed JSON"}),
            ),
        );
    }

    let id = match &body {
        WebhookBody::Json(Value::Object(m)) => match m.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
        _ => None,
    };
    let key = {
        let mut d = app.dedupe.lock().unwrap_or_else(|e| e.into_inner());
        let key = d.key(strategy, id.as_deref(), &bytes);
        if let Some(seen) = d.check_and_insert(key, Instant::now()) {
            drop(d);
            // Only a strategy that exists can have a remembered webhook, so the name is safe to
            // use as a label.
            return app.count(
                strategy,
                json_reply(
                    StatusCode::OK,
                    json!({"ok": true, "duplicate": true, "done": seen == Seen::Done}),
                ),
            );
        }
        key
    };

    let (mut req, rx) = WebhookRequest::new(body);
    req.headers = visible_headers(headers);
    req.query = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    if !app.strategies.webhook(strategy, req) {
        app.forget(key);
        return app.count(
            "",
            json_reply(
                StatusCode::NOT_FOUND,
                json!({"ok": false, "error": "no such strategy"}),
            ),
        );
    }

    let mut rx = rx;
    match tokio::time::timeout(app.cfg.reply_within, &mut rx).await {
        Ok(outcome) => {
            let reply = app.finish(strategy, key, started, outcome.ok());
            app.count(strategy, reply)
        }
        Err(_) => {
            // The handler is still running. It will finish exactly once: it is in the strategy's
            // queue, and its dedupe entry stays `Running`, so a resend is answered as a
            // duplicate instead of being queued again. Answer now, because TradingView gives up
            // at 3 s and would then resend; the outcome is settled in the background.
            let bg = app.clone();
            let name = strategy.to_owned();
            tokio::spawn(async move {
                let outcome = rx.await.ok();
                let reply = bg.finish(&name, key, started, outcome);
                tracing::info!(strategy = %name, status = reply.status().as_u16(), "late webhook handler finished");
            });
            app.count(
                strategy,
                json_reply(StatusCode::ACCEPTED, json!({"ok": true, "queued": true})),
            )
        }
    }
}

impl App {
    /// Turns the handler's outcome into the response, and settles its dedupe entry. `None`
    /// means the strategy's thread dropped the request without answering (it had not run it:
    /// a handler that ran always answers, with the orders it placed).
    pub(crate) fn finish(
        &self,
        strategy: &str,
        key: u64,
        started: Instant,
        outcome: Option<WebhookOutcome>,
    ) -> Reply {
        self.metrics
            .webhook_latency(strategy, started.elapsed().as_secs_f64());
        let placed = outcome.as_ref().is_some_and(|o| o.orders_placed > 0);
        let (status, body) = match outcome.map(|o| o.reply) {
            Some(Ok(value)) => {
                let code = value
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .filter(|c| c.as_u16() >= 200)
                    .unwrap_or(StatusCode::OK);
                (code, value)
            }
            Some(Err(msg)) => {
                // The message names the file and line: log it, answer with a category only.
                tracing::warn!(strategy, error = %msg, "on_webhook failed");
                public_error(&msg)
            }
            None => {
                tracing::warn!(strategy, "strategy stopped before answering a webhook");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"ok": false, "error": "strategy stopped"}),
                )
            }
        };
        if placed && status.is_server_error() {
            // An order is out: a 5xx would make TradingView resend and trade again.
            let mut body = body;
            if let Some(o) = body.as_object_mut() {
                o.insert("orders_placed".into(), json!(true));
            }
            self.settle(key, true);
            return json_reply(StatusCode::OK, body);
        }
        // A failure that placed nothing may be retried by a resend; anything else is done.
        self.settle(key, !status.is_server_error());
        json_reply(status, body)
    }

    fn settle(&self, key: u64, done: bool) {
        let mut d = self.dedupe.lock().unwrap_or_else(|e| e.into_inner());
        if done {
            d.done(key);
        } else {
            d.forget(key);
        }
    }

    fn forget(&self, key: u64) {
        self.settle(key, false);
    }

    /// Counts an answered webhook by status, and passes the reply through.
    fn count(&self, strategy: &str, reply: Reply) -> Reply {
        self.metrics.webhook(strategy, reply.status().as_u16());
        reply
    }
}

/// What a caller may learn about a handler failure: known host conditions by name, anything
/// else (a Lua error with its file and line) as a generic message.
fn public_error(msg: &str) -> (StatusCode, Value) {
    let (status, text) = if msg.starts_with("strategy has no on_webhook handler") {
        (StatusCode::NOT_FOUND, "strategy has no on_webhook handler")
    } else if msg.starts_with("strategy is paused") {
        (StatusCode::SERVICE_UNAVAILABLE, "strategy is paused")
    } else if msg.starts_with("strategy is not loaded") {
        (StatusCode::SERVICE_UNAVAILABLE, "strategy is not loaded")
    } else if ["strategy is stuck", "strategy is busy", "strategy crashed"]
        .iter()
        .any(|p| msg.starts_with(p))
    {
        // Refused by the host without running: the message names no file or line.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ok": false, "error": msg}),
        );
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "handler error (details in the engine log)",
        )
    };
    (status, json!({"ok": false, "error": text}))
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false)
}

/// Headers as the script sees them: lower-case names (hyper already lower-cases them), repeated
/// headers joined with `, `, credentials left out.
fn visible_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        if HIDDEN_HEADERS.contains(&name) {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        out.entry(name.to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    out
}
