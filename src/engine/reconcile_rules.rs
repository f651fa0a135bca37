//! What reconciliation decides without I/O: when a place of unknown outcome counts as not
//! placed (the grace period, the lookups' pace, one lookup's verdict) and how often account
//! snapshots are read. `reconcile` applies these on the loop.

use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::gateway::GatewayError;
use crate::gateway::wire::Order;

/// How long after an unknown outcome a lookup that finds nothing may conclude "not placed".
///
/// Why a successful lookup alone is not enough: a frozen gateway may hold our `Order/place` in a
/// queue (a stalled worker, a proxy that buffered the request, a database lock) while a later
/// `Order/search` reaches a healthy worker and answers at once. When the gateway wakes it
/// executes the queued place. So "not found" proves the order was never placed only once no
/// queued copy can still run: we take only a search *sent* this long after the place call gave
/// up. This is an assumption, not a documented bound: HTTP front proxies commonly give up on a
/// request after about 100 s, and we assume a request queued behind one does not run later than
/// two minutes. Waiting costs little: until then the order counts as working for the risk guard,
/// which errs toward refusing an order, never toward a doubled position.
pub const NOT_PLACED_GRACE: Duration = Duration::from_secs(120);

/// Lookups of an unknown order: soon, then backing off to one every 15 s while the gateway does
/// not answer (each lookup also waits its turn in the REST budget).
pub(super) const LOOKUP_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(15),
    jitter: 0.2,
};

/// The least time between two account snapshots (three REST calls each).
pub const RECONCILE_SPACING: Duration = Duration::from_secs(1);

/// Coalesces snapshot requests (see `Core::reconcile`).
#[derive(Debug, Default)]
pub struct ReconcileThrottle {
    pub(super) last: Option<Instant>,
    pub(super) due: bool,
}

/// One lookup of an order whose place outcome is unknown.
#[derive(Debug)]
pub struct Lookup {
    pub local_id: u64,
    pub attempt: u32,
    /// When the search was sent.
    pub asked_at: Instant,
    /// The order if the search found it; the error if the search itself failed.
    pub result: Result<Option<Order>, GatewayError>,
}

/// What one lookup settles.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Found(Box<Order>),
    /// A search that succeeded, sent after the grace period, did not find it.
    NotPlaced,
    /// Still unknown: look again later.
    Retry,
}

/// The verdict of a lookup of an order unknown since `unknown_since`.
pub fn verdict(lookup: Lookup, unknown_since: Instant, grace: Duration) -> Verdict {
    match lookup.result {
        Ok(Some(order)) => Verdict::Found(Box::new(order)),
        Ok(None) if lookup.asked_at >= unknown_since + grace => Verdict::NotPlaced,
        Ok(None) | Err(_) => Verdict::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(asked_at: Instant, result: Result<Option<Order>, GatewayError>) -> Lookup {
        Lookup {
            local_id: 1,
            attempt: 0,
            asked_at,
            result,
        }
    }

    #[test]
    fn only_a_successful_search_after_the_grace_period_says_not_placed() {
        let since = Instant::now();
        let grace = Duration::from_secs(60);
        let failed = || {
            Err(GatewayError::Transport {
                endpoint: crate::gateway::Endpoint::OrderSearch,
                reason: "timed out".into(),
            })
        };
        assert_eq!(
            verdict(lookup(since, failed()), since, grace),
            Verdict::Retry
        );
        assert_eq!(
            verdict(lookup(since + grace * 10, failed()), since, grace),
            Verdict::Retry,
            "a failed lookup never settles, however late"
        );
        assert_eq!(
            verdict(lookup(since + grace / 2, Ok(None)), since, grace),
            Verdict::Retry,
            "a queued place may still run"
        );
        assert_eq!(
            verdict(lookup(since + grace, Ok(None)), since, grace),
            Verdict::NotPlaced
        );
    }

    #[test]
    fn lookups_back_off_to_a_cap() {
        assert!(LOOKUP_BACKOFF.delay(0, 0.0) <= Duration::from_millis(500));
        assert_eq!(LOOKUP_BACKOFF.delay(30, 0.0), Duration::from_secs(15));
    }
}
