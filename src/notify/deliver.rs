//! Delivering notices to one target: POST with a timeout, retried with
//! [`Backoff`](crate::backoff::Backoff) after a network error, a 5xx or a 429 (waiting as long
//! as `Retry-After` says), given up after a few attempts or on any other 4xx. Errors name the
//! target by position, never its URL.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::message::{Notice, body};
use super::options::{Counters, NotifyOptions};
use super::queue::DropOldest;
use super::target::Target;
use crate::secret::Secret;

/// What one attempt came to.
#[derive(Debug, PartialEq)]
enum Attempt {
    Delivered,
    /// Worth another try, after `after` when the receiver said so.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    GiveUp(String),
}

/// Sends what `queue` holds to `target`, one notice at a time, until the task is aborted.
pub(super) async fn run(
    target: Target,
    queue: Arc<DropOldest<Notice>>,
    http: reqwest::Client,
    options: NotifyOptions,
    secrets: Arc<[Secret]>,
    counters: Arc<Counters>,
) {
    loop {
        let (notice, dropped) = queue.pop().await;
        if dropped > 0 {
            tracing::warn!(
                "{target}: {dropped} notification(s) dropped: the queue of {} was full",
                options.queue
            );
            let note = Notice::new(
                "dropped",
                format!(
                    "moontick: {dropped} notification(s) were dropped while this receiver was slow"
                ),
                serde_json::json!({ "type": "dropped", "count": dropped }),
            );
            deliver(&target, &note, &http, &options, &secrets, &counters).await;
        }
        deliver(&target, &notice, &http, &options, &secrets, &counters).await;
    }
}

async fn deliver(
    target: &Target,
    notice: &Notice,
    http: &reqwest::Client,
    options: &NotifyOptions,
    secrets: &[Secret],
    counters: &Counters,
) {
    let payload = body(&target.kind, notice, secrets);
    for attempt in 0..options.attempts {
        match send(target, &payload, http).await {
            Attempt::Delivered => {
                counters
                    .delivered
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            Attempt::GiveUp(why) => {
                tracing::warn!("{target}: {} notification not sent: {why}", notice.kind);
                counters
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            Attempt::Retry { why, after } => {
                if attempt + 1 == options.attempts {
                    tracing::warn!(
                        "{target}: {} notification not sent after {} attempts: {why}",
                        notice.kind,
                        options.attempts
                    );
                    counters
                        .failed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                let wait = after
                    .map(|a| a.min(options.retry_after_cap))
                    .unwrap_or_else(|| options.backoff.delay_jittered(attempt));
                tracing::debug!("{target}: {why}; retrying in {wait:?}");
                counters
                    .retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn send(target: &Target, payload: &str, http: &reqwest::Client) -> Attempt {
    let result = http
        .post(target.url.expose())
        .header(CONTENT_TYPE, "application/json")
        .body(payload.to_string())
        .send()
        .await;
    let response = match result {
        Ok(r) => r,
        // Described by kind only: reqwest's own message carries the URL, and the URL a token.
        Err(e) => {
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "the request failed"
            };
            return Attempt::Retry {
                why: why.into(),
                after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Delivered;
    }
    let header_wait = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    if status == StatusCode::TOO_MANY_REQUESTS {
        // Discord and Telegram also say it in the body (`retry_after`, in seconds).
        let body_wait = match header_wait {
            Some(_) => None,
            None => response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| {
                    v.get("retry_after")
                        .or_else(|| v.pointer("/parameters/retry_after"))
                        .and_then(serde_json::Value::as_f64)
                }),
        };
        let after = header_wait
            .or(body_wait)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        return Attempt::Retry {
            why: "rate limited (429)".into(),
            after,
        };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Attempt::Retry {
            why: format!("the receiver answered {}", status.as_u16()),
            after: None,
        };
    }
    Attempt::GiveUp(format!(
        "the receiver answered {}; check NOTIFY_URL #{}",
        status.as_u16(),
        target.position
    ))
}
