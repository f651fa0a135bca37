//! The JSON fault vocabulary `POST /sim/faults` and `moontick sim --fault` share: one
//! [`FaultSpec`] per switch, parsed with an error that says what is wrong, and applied to the
//! simulator's [`Faults`].

use std::time::Duration;

use serde::Deserialize;

use super::faults::{AfterExecute, DropReply, FaultReply, Faults};
use crate::gateway::Endpoint;

/// The longest time a fault may last or wait, so every deadline stays representable.
const DAY_MS: u64 = 86_400_000;

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
