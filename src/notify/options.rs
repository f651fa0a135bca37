//! The notifier's knobs (queue bound, tries, backoff, timeouts) and its counters.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::backoff::Backoff;

/// How notices are queued and retried; the defaults suit real receivers, tests shorten them.
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// Notices waiting per target; beyond it the oldest go.
    pub queue: usize,
    /// Tries per notice, the first included.
    pub attempts: u32,
    pub backoff: Backoff,
    /// The longest `Retry-After` honoured (a receiver asking for an hour gets this).
    pub retry_after_cap: Duration,
    /// One POST, connect to answer.
    pub timeout: Duration,
    /// A hub down this long is announced (shorter drops are routine reconnects).
    pub feed_down_after: Duration,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        Self {
            queue: 100,
            attempts: 5,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                jitter: 0.2,
            },
            retry_after_cap: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            feed_down_after: Duration::from_secs(30),
        }
    }
}

/// What the notifier has done, for logs and tests.
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub retries: AtomicU64,
    /// Notices given up on (after the attempts, or on a 4xx).
    pub failed: AtomicU64,
    /// Engine events the notifier fell too far behind to read.
    pub missed: AtomicU64,
}
