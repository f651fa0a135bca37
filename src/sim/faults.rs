//! Fault switches on a running simulator, for tests (and from outside through `control`):
//! rejected logins, canned 401/429/500 replies, dropped replies, slow replies, a freeze, 429
//! storms, calls that execute and then fail, expiring every token, and the hub faults (dropped
//! sockets, silence, Close with an error, no quotes, refused upgrades).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::gateway::Endpoint;

/// A reply given instead of handling the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultReply {
    Unauthorized,
    /// HTTP 429 with this `Retry-After` (whole seconds, rounded up).
    TooManyRequests {
        retry_after: Duration,
    },
    ServerError,
}

/// What happens after the request was executed, so the client cannot know the outcome of a
/// mutating call (place, cancel, modify, close) and must reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExecute {
    ServerError,
    /// The reply is held back this long (set it past the client's timeout).
    Delay(Duration),
}

/// When a dropped reply is dropped: the connection is closed without an answer either before the
/// request is executed or after it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReply {
    BeforeExecute,
    AfterExecute,
}

#[derive(Debug)]
struct Shot<T> {
    endpoint: Option<Endpoint>,
    remaining: u32,
    what: T,
}

fn take<T: Copy>(shots: &mut Vec<Shot<T>>, ep: Endpoint) -> Option<T> {
    let i = shots
        .iter()
        .position(|s| s.endpoint.is_none_or(|e| e == ep))?;
    let what = shots[i].what;
    shots[i].remaining -= 1;
    if shots[i].remaining == 0 {
        shots.remove(i);
    }
    Some(what)
}

#[derive(Debug, Default)]
struct Inner {
    reject_logins: bool,
    replies: Vec<Shot<FaultReply>>,
    delays: Vec<(Option<Endpoint>, Duration)>,
    after: Vec<Shot<AfterExecute>>,
    drops: Vec<Shot<DropReply>>,
    /// Every REST reply waits until then (the request still executes, late).
    frozen_until: Option<tokio::time::Instant>,
    /// Every REST call is answered 429 with this `Retry-After` until then.
    storm: Option<(tokio::time::Instant, Duration)>,
}

/// The fault switches. `endpoint: None` means any endpoint; one-shot faults are used in the
/// order they were set.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<Inner>,
    /// Hub faults, watched by every open hub session so a switch acts at once.
    hubs: watch::Sender<HubFaults>,
    /// The token generation, shared with the token issuer: tokens of an older one are refused.
    pub(crate) token_generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// While on, every login is answered `success:false, errorCode:3` (InvalidCredentials).
    pub fn reject_logins(&self, on: bool) {
        self.lock().reject_logins = on;
    }

    /// Answers the next `n` requests (to `endpoint`, or to any) with `reply`, without executing
    /// them.
    pub fn fail_next(&self, n: u32, endpoint: Option<Endpoint>, reply: FaultReply) {
        if n > 0 {
            self.lock().replies.push(Shot {
                endpoint,
                remaining: n,
                what: reply,
            });
        }
    }

    /// Delays every reply (to `endpoint`, or to any) by `by` until [`Faults::clear`].
    pub fn delay(&self, endpoint: Option<Endpoint>, by: Duration) {
        self.lock().delays.push((endpoint, by));
    }

    /// Executes the next `n` requests (to `endpoint`, or to any) and then answers per `after`.
    pub fn execute_then(&self, n: u32, endpoint: Option<Endpoint>, after: AfterExecute) {
        if n > 0 {
            self.lock().after.push(Shot {
                endpoint,
                remaining: n,
                what: after,
            });
        }
    }

    /// Closes the connection without a reply on the next `n` requests (to `endpoint`, or to any),
    /// before or after executing them.
    pub fn drop_next(&self, n: u32, endpoint: Option<Endpoint>, when: DropReply) {
        if n > 0 {
            self.lock().drops.push(Shot {
                endpoint,
                remaining: n,
                what: when,
            });
        }
    }

    /// For `for_` from now, every REST request hangs; when the time is up each is executed and
    /// answered (a gateway that stalls, then works off its queue: clients that gave up meanwhile
    /// do not stop it).
    pub fn freeze(&self, for_: Duration) {
        self.lock().frozen_until = tokio::time::Instant::now().checked_add(for_);
    }

    /// For `for_` from now, every REST request is answered 429 with `retry_after`, without being
    /// executed.
    pub fn rate_limit_storm(&self, for_: Duration, retry_after: Duration) {
        let until = tokio::time::Instant::now().checked_add(for_);
        self.lock().storm = until.map(|t| (t, retry_after));
    }

    /// Every token issued so far stops working at once (answered 401), as if they had expired.
    pub fn expire_all_tokens(&self) {
        self.token_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Turns every switch off (tokens already expired stay expired; open hub connections stay
    /// open).
    pub fn clear(&self) {
        *self.lock() = Inner::default();
        self.hubs.send_modify(|h| {
            *h = HubFaults {
                kick: h.kick,
                ..HubFaults::default()
            }
        });
    }

    /// Drops every open hub connection now, without a Close message (a network cut as the client
    /// sees it).
    pub fn drop_hub_connections(&self) {
        self.kick(Kick::Drop);
    }

    /// Every hub connection is dropped `every` after it opened (`None` turns it off), so a
    /// client that reconnects is dropped again: the flaky-network fault.
    pub fn drop_hub_connections_every(&self, every: Option<Duration>) {
        self.hubs.send_modify(|h| h.drop_every = every);
    }

    /// Sends every open hub connection a Close message with `error` and `allowReconnect`, then
    /// closes it (what ProjectX's "Connection closed with an error" looks like).
    pub fn close_hub_connections(&self, error: &str, allow_reconnect: bool) {
        self.kick(Kick::Close {
            error: error.to_string(),
            allow_reconnect,
        });
    }

    /// While on, the hubs send nothing at all after the handshake (no events, no pings, no
    /// Completions) and keep the sockets open: the stale-feed fault a client detects only by
    /// its server timeout.
    pub fn hubs_silent(&self, on: bool) {
        self.hubs.send_modify(|h| h.silent = on);
    }

    /// While off, the market hub sends no market data (quotes, trades, depth); subscribing still
    /// succeeds and pings still flow, so a client sees a live connection with no quotes.
    pub fn quotes_on(&self, on: bool) {
        self.hubs.send_modify(|h| h.quotes_off = !on);
    }

    /// Refuses hub upgrades and negotiations with this HTTP status (`None` accepts again).
    pub fn reject_hub_upgrades(&self, status: Option<u16>) {
        self.hubs.send_modify(|h| h.reject_upgrades = status);
    }

    /// Answers hub handshakes with `{"error": message}` and closes (`None` accepts again).
    pub fn hub_handshake_error(&self, message: Option<&str>) {
        self.hubs
            .send_modify(|h| h.handshake_error = message.map(str::to_string));
    }

    fn kick(&self, what: Kick) {
        self.hubs.send_modify(|h| {
            h.kick += 1;
            h.last_kick = what;
        });
    }

    pub(crate) fn hub_faults(&self) -> watch::Receiver<HubFaults> {
        self.hubs.subscribe()
    }

    pub(crate) fn hub_snapshot(&self) -> HubFaults {
        self.hubs.borrow().clone()
    }

    pub(crate) fn logins_rejected(&self) -> bool {
        self.lock().reject_logins
    }

    pub(crate) fn take_reply(&self, ep: Endpoint) -> Option<FaultReply> {
        let mut inner = self.lock();
        if let Some((until, retry_after)) = inner.storm {
            if tokio::time::Instant::now() < until {
                return Some(FaultReply::TooManyRequests { retry_after });
            }
            inner.storm = None;
        }
        take(&mut inner.replies, ep)
    }

    pub(crate) fn take_drop(&self, ep: Endpoint) -> Option<DropReply> {
        take(&mut self.lock().drops, ep)
    }

    pub(crate) fn take_after(&self, ep: Endpoint) -> Option<AfterExecute> {
        take(&mut self.lock().after, ep)
    }

    /// The longest delay that applies to `ep` (a freeze is a delay until it ends).
    pub(crate) fn delay_for(&self, ep: Endpoint) -> Option<Duration> {
        let inner = self.lock();
        let frozen = inner
            .frozen_until
            .map(|t| t.saturating_duration_since(tokio::time::Instant::now()))
            .filter(|d| !d.is_zero());
        inner
            .delays
            .iter()
            .filter(|(e, _)| e.is_none_or(|e| e == ep))
            .map(|&(_, d)| d)
            .chain(frozen)
            .max()
    }

    /// The switches that are on, as `GET /sim/faults` shows them (one-shot faults with what is
    /// left of them).
    pub fn active(&self) -> Vec<serde_json::Value> {
        use serde_json::json;
        let name = |e: Option<Endpoint>| e.map(Endpoint::name);
        let now = tokio::time::Instant::now();
        let inner = self.lock();
        let mut out = Vec::new();
        if inner.reject_logins {
            out.push(json!({ "fault": "reject_logins", "on": true }));
        }
        for s in &inner.replies {
            let reply = match s.what {
                FaultReply::Unauthorized => "401",
                FaultReply::TooManyRequests { .. } => "429",
                FaultReply::ServerError => "500",
            };
            out.push(json!({ "fault": "fail_next", "endpoint": name(s.endpoint), "n": s.remaining, "reply": reply }));
        }
        for s in &inner.drops {
            let fault = match s.what {
                DropReply::BeforeExecute => "fail_next",
                DropReply::AfterExecute => "execute_then",
            };
            out.push(json!({ "fault": fault, "endpoint": name(s.endpoint), "n": s.remaining, "reply": "drop" }));
        }
        for s in &inner.after {
            let v = match s.what {
                AfterExecute::ServerError => json!({ "reply": "500" }),
                AfterExecute::Delay(d) => json!({ "reply": "delay", "ms": d.as_millis() as u64 }),
            };
            let mut v = v;
            v["fault"] = json!("execute_then");
            v["endpoint"] = json!(name(s.endpoint));
            v["n"] = json!(s.remaining);
            out.push(v);
        }
        for &(e, d) in &inner.delays {
            out.push(json!({ "fault": "delay", "endpoint": name(e), "ms": d.as_millis() as u64 }));
        }
        if let Some(t) = inner.frozen_until.filter(|&t| t > now) {
            out.push(json!({ "fault": "freeze", "ms_left": (t - now).as_millis() as u64 }));
        }
        if let Some((t, retry)) = inner.storm.filter(|&(t, _)| t > now) {
            out.push(json!({ "fault": "rate_limit_storm", "ms_left": (t - now).as_millis() as u64, "retry_after_ms": retry.as_millis() as u64 }));
        }
        drop(inner);
        let h = self.hub_snapshot();
        if h.silent {
            out.push(json!({ "fault": "hubs_silent", "on": true }));
        }
        if h.quotes_off {
            out.push(json!({ "fault": "quotes", "on": false }));
        }
        if let Some(status) = h.reject_upgrades {
            out.push(json!({ "fault": "refuse_hubs", "status": status }));
        }
        if let Some(message) = h.handshake_error {
            out.push(json!({ "fault": "hub_handshake_error", "message": message }));
        }
        if let Some(every) = h.drop_every {
            out.push(json!({ "fault": "drop_hubs_every", "ms": every.as_millis() as u64 }));
        }
        out
    }
}

/// What to do with every open hub connection, once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Kick {
    #[default]
    Drop,
    Close {
        error: String,
        allow_reconnect: bool,
    },
}

/// The hub fault switches, as the hub sessions see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HubFaults {
    pub silent: bool,
    pub quotes_off: bool,
    pub reject_upgrades: Option<u16>,
    pub handshake_error: Option<String>,
    pub drop_every: Option<Duration>,
    /// Bumped by every one-shot action; a session acts when it sees the number change.
    pub kick: u64,
    pub last_kick: Kick,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_faults_are_consumed_per_endpoint() {
        let f = Faults::default();
        f.fail_next(2, Some(Endpoint::OrderPlace), FaultReply::ServerError);
        assert_eq!(f.take_reply(Endpoint::AccountSearch), None);
        assert_eq!(
            f.take_reply(Endpoint::OrderPlace),
            Some(FaultReply::ServerError)
        );
        assert_eq!(
            f.take_reply(Endpoint::OrderPlace),
            Some(FaultReply::ServerError)
        );
        assert_eq!(f.take_reply(Endpoint::OrderPlace), None);
        f.delay(None, Duration::from_millis(5));
        assert_eq!(
            f.delay_for(Endpoint::LoginKey),
            Some(Duration::from_millis(5))
        );
        f.clear();
        assert_eq!(f.delay_for(Endpoint::LoginKey), None);
    }
}
