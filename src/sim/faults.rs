//! Fault switches on a running simulator, for tests: rejected logins, canned 401/429/500
//! replies, slow replies, calls that execute and then fail, expiring every token, and the hub
//! faults (dropped sockets, silence, Close with an error, no quotes, refused upgrades).

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
        take(&mut self.lock().replies, ep)
    }

    pub(crate) fn take_after(&self, ep: Endpoint) -> Option<AfterExecute> {
        take(&mut self.lock().after, ep)
    }

    /// The longest delay that applies to `ep`.
    pub(crate) fn delay_for(&self, ep: Endpoint) -> Option<Duration> {
        self.lock()
            .delays
            .iter()
            .filter(|(e, _)| e.is_none_or(|e| e == ep))
            .map(|&(_, d)| d)
            .max()
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
