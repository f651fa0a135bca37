//! HTTP transport for the REST API: one POST with budget, timeout, 429 back-off and the retry
//! rules that keep a mutating call from ever being sent twice.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::budget::RestBudget;
use super::endpoint::Endpoint;
use super::error::GatewayError;
use super::wire::{Envelope, decode};
use crate::secret::Secret;

/// Timeouts and retry counts for REST calls.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Whole-request timeout (connect, send, and the body read).
    pub timeout: Duration,
    /// Extra attempts after HTTP 429; each waits `Retry-After` (or a back-off when absent).
    pub max_rate_limit_retries: u32,
    /// Extra attempts for a read-only call that timed out, failed to connect or got a 5xx.
    pub max_read_retries: u32,
    /// First back-off step for the retries above; doubles each time.
    pub backoff: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_rate_limit_retries: 5,
            max_read_retries: 2,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Why one send failed, before the envelope is looked at.
#[derive(Debug)]
pub(crate) enum SendError {
    /// HTTP 401: the caller refreshes the token and tries once more.
    Unauthorized,
    Other(GatewayError),
}

impl From<GatewayError> for SendError {
    fn from(e: GatewayError) -> Self {
        Self::Other(e)
    }
}

/// Sends REST calls to one gateway base URL.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    base: String,
    budget: RestBudget,
    options: TransportOptions,
}

impl Transport {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS provider installed).
    pub fn new(
        base_url: &str,
        budget: RestBudget,
        options: TransportOptions,
    ) -> Result<Self, reqwest::Error> {
        crate::tls::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("moontick/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            budget,
            options,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one call and decodes its envelope; `success: false` is returned as an envelope, not
    /// an error, because only the caller knows what the payload of a rejection means.
    ///
    /// Retries: HTTP 429 is retried for every endpoint, since the server refused the request
    /// before acting on it, and so is a failure to connect. Timeouts, 5xx and broken replies are
    /// retried only for read-only calls; for a mutating call they become `OutcomeUnknown`.
    pub(crate) async fn send<Req, P>(
        &self,
        endpoint: Endpoint,
        bearer: Option<&Secret>,
        body: Option<&Req>,
    ) -> Result<Envelope<P>, SendError>
    where
        Req: Serialize + ?Sized,
        P: DeserializeOwned,
    {
        let url = format!("{}{}", self.base, endpoint.path());
        let mut rate_limited = 0u32;
        let mut failures = 0u32;
        loop {
            self.budget.for_endpoint(endpoint).acquire().await;
            let mut request = self.http.post(&url).header(ACCEPT, "application/json");
            if let Some(token) = bearer {
                request = request.bearer_auth(token.expose());
            }
            request = match body {
                Some(b) => request.json(b),
                None => request.header(reqwest::header::CONTENT_LENGTH, 0),
            };
            let started = std::time::Instant::now();
            let result = request.send().await;
            let retry = |reason: String, failures: &mut u32| -> Result<Duration, SendError> {
                if endpoint.is_mutating() {
                    return Err(GatewayError::OutcomeUnknown { endpoint, reason }.into());
                }
                *failures += 1;
                if *failures > self.options.max_read_retries {
                    return Err(GatewayError::Transport { endpoint, reason }.into());
                }
                tracing::warn!(endpoint = endpoint.name(), %reason, attempt = *failures, "retrying read-only call");
                Ok(self.options.backoff * 2u32.saturating_pow(*failures - 1))
            };
            let response = match result {
                Ok(r) => r,
                Err(e) if e.is_connect() => {
                    // Nothing reached the server, so even a mutating call is safe to send again.
                    failures += 1;
                    if failures > self.options.max_read_retries {
                        return Err(GatewayError::Transport {
                            endpoint,
                            reason: format!("cannot connect to {}: {}", self.base, root_cause(&e)),
                        }
                        .into());
                    }
                    tokio::time::sleep(self.options.backoff).await;
                    continue;
                }
                Err(e) => {
                    let reason = if e.is_timeout() {
                        format!("no reply within {:?}", self.options.timeout)
                    } else {
                        format!("request failed: {}", root_cause(&e))
                    };
                    let wait = retry(reason, &mut failures)?;
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let status = response.status();
            tracing::debug!(
                endpoint = endpoint.name(),
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "rest call"
            );
            if status == StatusCode::UNAUTHORIZED {
                return Err(SendError::Unauthorized);
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                rate_limited += 1;
                if rate_limited > self.options.max_rate_limit_retries {
                    return Err(GatewayError::RateLimited {
                        endpoint,
                        attempts: rate_limited,
                    }
                    .into());
                }
                let wait = retry_after(&response)
                    .unwrap_or(self.options.backoff * 2u32.saturating_pow(rate_limited));
                tracing::warn!(
                    endpoint = endpoint.name(),
                    wait_ms = wait.as_millis() as u64,
                    "rate limited by the gateway (HTTP 429); backing off"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() {
                let wait = retry(format!("HTTP {}", status.as_u16()), &mut failures)?;
                tokio::time::sleep(wait).await;
                continue;
            }
            if !status.is_success() {
                return Err(GatewayError::Http {
                    endpoint,
                    status: status.as_u16(),
                }
                .into());
            }
            let bytes = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    let wait = retry(
                        format!("reply cut short: {}", root_cause(&e)),
                        &mut failures,
                    )?;
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            return decode::<Envelope<P>>(&bytes).map_err(|reason| {
                let reason = format!("HTTP 200 with an unreadable body: {reason}");
                if endpoint.is_mutating() {
                    GatewayError::OutcomeUnknown { endpoint, reason }.into()
                } else {
                    GatewayError::Decode { endpoint, reason }.into()
                }
            });
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by ASP.NET's rate limiter).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(120.0)))
}

/// The innermost error message, without the URL reqwest prefixes (kept short for logs).
fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
