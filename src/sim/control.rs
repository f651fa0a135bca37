//! The simulator's fault control endpoint, `POST`/`GET /sim/faults`, the JSON fault vocabulary
//! it shares with `moontick sim --fault`, and the request wrapper that acts on the faults the
//! REST pipeline cannot express in a reply (dropped connections, work that outlives its client).
//!
//! The simulator listens on loopback only, so the endpoint is reachable only from this machine;
//! it takes no token (the simulator's one user is a test user) and exists in no client.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use super::Shared;
use super::faults::{AfterExecute, DropReply, FaultReply, Faults};
use crate::gateway::Endpoint;

type Reply = Response<Full<Bytes>>;

/// The longest time a fault may last or wait, so every deadline stays representable.
const DAY_MS: u64 = 86_400_000;

/// The path of the control endpoint.
pub const PATH: &str = "/sim/faults";

/// `GET` here answers `{"quotes_sent": n}`: quote records the market hub wrote so far (a
/// benchmark running the simulator as a separate process compares it with what Lua saw).
pub const STATS_PATH: &str = "/sim/stats";

/// One fault switch, as `POST /sim/faults` and `moontick sim --fault` take it:
/// `{"fault":"fail_next","endpoint":"Order/place","n":3,"reply":"500"}`. `endpoint` (a gateway
/// path after `/api/`, any case) is optional everywhere: absent means every REST endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultSpec {
    /// The next `n` requests are answered `reply` without being executed (`"drop"` closes the
    /// connection without an answer).
    FailNext {
        #[serde(default)]
        endpoint: Option<EndpointName>,
        #[serde(default = "one")]
        n: u32,
        reply: Reply5xx,
        /// `Retry-After` of a `"429"` reply.
        #[serde(default = "thousand")]
        retry_after_ms: u64,
    },
    /// The next `n` requests are executed, then answered `"500"`, not answered (`"drop"`), or
    /// answered `ms` late (`"delay"`).
    ExecuteThen {
        #[serde(default)]
        endpoint: Option<EndpointName>,
        #[serde(default = "one")]
        n: u32,
        reply: AfterReply,
        #[serde(default)]
        ms: u64,
    },
    /// Every reply waits `ms` until `clear`.
    Delay {
        #[serde(default)]
        endpoint: Option<EndpointName>,
        ms: u64,
    },
    /// For `ms` every REST call hangs; then each is executed and answered.
    Freeze { ms: u64 },
    /// For `secs` every REST call is answered 429 (`Retry-After: retry_after_ms`).
    RateLimitStorm {
        secs: f64,
        #[serde(default = "thousand")]
        retry_after_ms: u64,
    },
    /// Every token issued so far is refused (401) from now on.
    ExpireTokens,
    /// While on, every login is refused (`errorCode` 3).
    RejectLogins {
        #[serde(default = "yes")]
        on: bool,
    },
    /// Cuts every open hub connection now (no Close message).
    DropHubs,
    /// Cuts every hub connection `ms` after it opened, again and again (`ms: 0` stops).
    DropHubsEvery { ms: u64 },
    /// Sends every open hub connection a Close with `error`, then closes it.
    CloseHubs {
        #[serde(default = "server_error")]
        error: String,
        #[serde(default = "yes")]
        allow_reconnect: bool,
    },
    /// Refuses hub negotiations and upgrades with `status` (default 503) until `clear`.
    RefuseHubs {
        #[serde(default = "unavailable")]
        status: u16,
    },
    /// Answers hub handshakes with an error until `clear`.
    HubHandshakeError { message: String },
    /// While on, the hubs send nothing after the handshake (no events, no pings).
    HubsSilent {
        #[serde(default = "yes")]
        on: bool,
    },
    /// Market data on or off (pings still flow).
    Quotes { on: bool },
    /// Turns every switch off (expired tokens stay expired, open hub connections stay open).
    Clear,
}

fn one() -> u32 {
    1
}
fn thousand() -> u64 {
    1000
}
fn yes() -> bool {
    true
}
fn unavailable() -> u16 {
    503
}
fn server_error() -> String {
    "Server error".into()
}

/// A reply given instead of executing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Reply5xx {
    #[serde(rename = "500")]
    ServerError,
    #[serde(rename = "401")]
    Unauthorized,
    #[serde(rename = "429")]
    TooManyRequests,
    #[serde(rename = "drop")]
    Drop,
}

/// What follows an executed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AfterReply {
    #[serde(rename = "500")]
    ServerError,
    #[serde(rename = "drop")]
    Drop,
    #[serde(rename = "delay")]
    Delay,
}

/// A gateway endpoint by its name (`Order/place`) or path (`/api/Order/place`), any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointName(pub Endpoint);

impl<'de> Deserialize<'de> for EndpointName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let path = format!("/api/{}", s.trim().trim_start_matches("/api/"));
        Endpoint::from_path(&path).map(EndpointName).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown endpoint {s:?} (expected a gateway path such as \"Order/place\")"
            ))
        })
    }
}

impl FaultSpec {
    /// Parses one fault from its JSON text, with an error that says what is wrong.
    pub fn parse(text: &str) -> Result<FaultSpec, String> {
        let spec: FaultSpec =
            serde_json::from_str(text).map_err(|e| format!("bad fault {text:?}: {e}"))?;
        match &spec {
            FaultSpec::RateLimitStorm { secs, .. } if !(0.0..=86_400.0).contains(secs) => Err(
                format!("bad fault {text:?}: secs must be between 0 and 86400"),
            ),
            FaultSpec::Freeze { ms }
            | FaultSpec::Delay { ms, .. }
            | FaultSpec::ExecuteThen { ms, .. }
            | FaultSpec::DropHubsEvery { ms }
            | FaultSpec::FailNext {
                retry_after_ms: ms, ..
            }
            | FaultSpec::RateLimitStorm {
                retry_after_ms: ms, ..
            } if *ms > DAY_MS => Err(format!(
                "bad fault {text:?}: milliseconds must be at most {DAY_MS} (a day)"
            )),
            FaultSpec::RefuseHubs { status } if !(400..=599).contains(status) => Err(format!(
                "bad fault {text:?}: status must be an HTTP error (400-599)"
            )),
            _ => Ok(spec),
        }
    }

    /// Turns the switch on (or off) on `faults`.
    pub fn apply(&self, faults: &Faults) {
        let ep = |e: &Option<EndpointName>| e.map(|e| e.0);
        let ms = Duration::from_millis;
        match self {
            FaultSpec::FailNext {
                endpoint,
                n,
                reply,
                retry_after_ms,
            } => {
                let reply = match reply {
                    Reply5xx::ServerError => FaultReply::ServerError,
                    Reply5xx::Unauthorized => FaultReply::Unauthorized,
                    Reply5xx::TooManyRequests => FaultReply::TooManyRequests {
                        retry_after: ms(*retry_after_ms),
                    },
                    Reply5xx::Drop => {
                        return faults.drop_next(*n, ep(endpoint), DropReply::BeforeExecute);
                    }
                };
                faults.fail_next(*n, ep(endpoint), reply);
            }
            FaultSpec::ExecuteThen {
                endpoint,
                n,
                reply,
                ms: delay,
            } => match reply {
                AfterReply::ServerError => {
                    faults.execute_then(*n, ep(endpoint), AfterExecute::ServerError)
                }
                AfterReply::Delay => {
                    faults.execute_then(*n, ep(endpoint), AfterExecute::Delay(ms(*delay)))
                }
                AfterReply::Drop => faults.drop_next(*n, ep(endpoint), DropReply::AfterExecute),
            },
            FaultSpec::Delay { endpoint, ms: d } => faults.delay(ep(endpoint), ms(*d)),
            FaultSpec::Freeze { ms: d } => faults.freeze(ms(*d)),
            FaultSpec::RateLimitStorm {
                secs,
                retry_after_ms,
            } => faults.rate_limit_storm(
                // `parse` keeps `secs` in range; a spec built in Rust may not.
                Duration::try_from_secs_f64(*secs).unwrap_or_default(),
                ms(*retry_after_ms),
            ),
            FaultSpec::ExpireTokens => faults.expire_all_tokens(),
            FaultSpec::RejectLogins { on } => faults.reject_logins(*on),
            FaultSpec::DropHubs => faults.drop_hub_connections(),
            FaultSpec::DropHubsEvery { ms: d } => {
                faults.drop_hub_connections_every((*d > 0).then(|| ms(*d)))
            }
            FaultSpec::CloseHubs {
                error,
                allow_reconnect,
            } => faults.close_hub_connections(error, *allow_reconnect),
            FaultSpec::RefuseHubs { status } => faults.reject_hub_upgrades(Some(*status)),
            FaultSpec::HubHandshakeError { message } => faults.hub_handshake_error(Some(message)),
            FaultSpec::HubsSilent { on } => faults.hubs_silent(*on),
            FaultSpec::Quotes { on } => faults.quotes_on(*on),
            FaultSpec::Clear => faults.clear(),
        }
    }
}

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
        let sent = shared
            .quotes_sent
            .load(std::sync::atomic::Ordering::Relaxed);
        let body = serde_json::json!({ "quotes_sent": sent });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_defaults_and_bad_ones_say_why() {
        assert_eq!(
            FaultSpec::parse(
                r#"{"fault":"fail_next","endpoint":"order/PLACE","n":3,"reply":"500"}"#
            ),
            Ok(FaultSpec::FailNext {
                endpoint: Some(EndpointName(Endpoint::OrderPlace)),
                n: 3,
                reply: Reply5xx::ServerError,
                retry_after_ms: 1000,
            })
        );
        assert_eq!(
            FaultSpec::parse(r#"{"fault":"refuse_hubs"}"#),
            Ok(FaultSpec::RefuseHubs { status: 503 })
        );
        let e =
            FaultSpec::parse(r#"{"fault":"fail_next","endpoint":"Order/plaice","reply":"500"}"#)
                .unwrap_err();
        assert!(e.contains("unknown endpoint"), "{e}");
        let e = FaultSpec::parse(r#"{"fault":"freeze","secs":3}"#).unwrap_err();
        assert!(e.contains("secs"), "{e}");
        assert!(FaultSpec::parse(r#"{"fault":"melt"}"#).is_err());
        for bad in [
            r#"{"fault":"rate_limit_storm","secs":-1}"#,
            r#"{"fault":"refuse_hubs","status":200}"#,
            r#"{"fault":"fail_next","reply":500}"#,
            r#"{"fault":"freeze","ms":18446744073709551615}"#,
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn applied_specs_show_as_active_until_cleared() {
        let f = Faults::default();
        for s in [
            r#"{"fault":"fail_next","endpoint":"Order/place","n":2,"reply":"drop"}"#,
            r#"{"fault":"rate_limit_storm","secs":5}"#,
            r#"{"fault":"refuse_hubs","status":500}"#,
        ] {
            FaultSpec::parse(s).unwrap().apply(&f);
        }
        let active = serde_json::Value::from(f.active()).to_string();
        for want in [r#""reply":"drop""#, "rate_limit_storm", r#""status":500"#] {
            assert!(active.contains(want), "{active}");
        }
        assert_eq!(
            f.take_reply(Endpoint::AccountSearch),
            Some(FaultReply::TooManyRequests {
                retry_after: Duration::from_secs(1)
            })
        );
        FaultSpec::Clear.apply(&f);
        assert!(f.active().is_empty());
    }
}
