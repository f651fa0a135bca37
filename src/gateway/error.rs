//! Typed gateway errors. None of them carries a token or key: they are built from endpoint names,
//! status codes and the gateway's own messages only.

use chrono::{DateTime, Utc};

use super::endpoint::Endpoint;

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway answered `success: false`. A rejected place can still carry a real order id.
    #[error("{}: rejected with {code_name} ({code}){}", .endpoint.name(), fmt_message(.message))]
    Rejected {
        endpoint: Endpoint,
        code: i32,
        code_name: &'static str,
        message: Option<String>,
        order_id: Option<i64>,
    },
    /// A place/cancel/modify/close that may or may not have happened (timeout, 5xx, broken
    /// connection, unreadable reply). It was not retried: reconcile (`Order/search`, the user
    /// hub) before deciding to send anything again.
    #[error("{}: outcome unknown ({reason}); reconcile before retrying", .endpoint.name())]
    OutcomeUnknown { endpoint: Endpoint, reason: String },
    #[error("{}: unauthorized (HTTP 401) even after refreshing the token", .endpoint.name())]
    Unauthorized { endpoint: Endpoint },
    #[error("{}: still rate limited (HTTP 429) after {attempts} attempts", .endpoint.name())]
    RateLimited { endpoint: Endpoint, attempts: u32 },
    #[error("{}: HTTP {status}", .endpoint.name())]
    Http { endpoint: Endpoint, status: u16 },
    /// A read-only call that timed out or could not connect, after its retries.
    #[error("{}: {reason}", .endpoint.name())]
    Transport { endpoint: Endpoint, reason: String },
    #[error("{}: unreadable response: {reason}", .endpoint.name())]
    Decode { endpoint: Endpoint, reason: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl GatewayError {
    /// The gateway's error-code name when it rejected the call.
    pub fn code_name(&self) -> Option<&'static str> {
        match self {
            Self::Rejected { code_name, .. } => Some(code_name),
            _ => None,
        }
    }

    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }
}

/// Why no valid token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "{problem} and there are no credentials to log in with: set PROJECT_X_USERNAME and \
         PROJECT_X_API_KEY, or put a fresh token in JWT_TOKEN (`moontick token` prints one)"
    )]
    NoCredentials { problem: String },
    #[error("login as {user:?} failed: {code_name} ({code}){}", fmt_message(.message))]
    LoginRejected {
        user: String,
        code: i32,
        code_name: &'static str,
        message: Option<String>,
    },
    #[error("login as {user:?} failed: {reason}")]
    LoginFailed { user: String, reason: String },
    #[error("the gateway issued a token that is not a readable JWT: {0}")]
    UnreadableToken(String),
    /// A refresh failed moments ago; the next attempt waits (never one per request).
    #[error(
        "the token could not be refreshed ({failures} failure(s) in a row, the last: {last}); \
         next attempt at {}",
        .retry_at.format("%H:%M:%S UTC")
    )]
    RefreshBackoff {
        failures: u32,
        last: String,
        retry_at: DateTime<Utc>,
    },
}

impl AuthError {
    pub(crate) fn token_problem(
        expired_at: Option<DateTime<Utc>>,
        rejected: bool,
        now: DateTime<Utc>,
    ) -> Self {
        let problem = match (rejected, expired_at) {
            (true, _) => "the gateway rejected the token (HTTP 401)".to_string(),
            (false, Some(at)) if at <= now => {
                format!(
                    "JWT_TOKEN expired at {}",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                )
            }
            (false, Some(at)) => format!(
                "JWT_TOKEN expires at {} and could not be refreshed",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            (false, None) => "no JWT_TOKEN is set".to_string(),
        };
        Self::NoCredentials { problem }
    }
}

fn fmt_message(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}
