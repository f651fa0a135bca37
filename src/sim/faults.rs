//! Fault switches on a running simulator, for tests: rejected logins, canned 401/429/500
//! replies, slow replies, calls that execute and then fail, and expiring every token.

use std::sync::Mutex;
use std::time::Duration;

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

    /// Turns every switch off (tokens already expired stay expired).
    pub fn clear(&self) {
        *self.lock() = Inner::default();
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
