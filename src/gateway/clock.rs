//! The time token freshness is judged by: the wall clock in a real run, a manual clock in tests
//! (so expiry is stepped, never slept through). The simulator's token issuer reads the same
//! clock, so both sides agree on when a token expires.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A source of the current time that can also wait for a moment to come.
pub trait Clock: Send + Sync + Debug + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once [`Clock::now`] has reached `at`.
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system clock; waits on tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        // A hair past the moment, so a timer that fires early does not wake a caller for whom
        // the moment has not come yet.
        Box::pin(tokio::time::sleep(wait + Duration::from_millis(10)))
    }
}

/// A clock that moves only when told to ([`ManualClock::advance`]); waiters wake when it passes
/// their moment.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: watch::channel(start).0,
        }
    }

    /// Moves the clock forward (a negative step is ignored: time does not run back).
    pub fn advance(&self, by: chrono::Duration) {
        if by > chrono::Duration::zero() {
            self.now.send_modify(|t| *t += by);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as `self`, which this future borrows.
            let _ = rx.wait_for(|now| *now >= at).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_its_sleepers_when_it_passes_their_moment() {
        let clock = ManualClock::new(Utc::now());
        let start = clock.now();
        let at = start + chrono::Duration::seconds(30);
        let mut sleeping = clock.sleep_until(at);
        let still = tokio::time::timeout(Duration::ZERO, &mut sleeping).await;
        assert!(still.is_err(), "not yet");
        clock.advance(chrono::Duration::seconds(29));
        let still = tokio::time::timeout(Duration::ZERO, &mut sleeping).await;
        assert!(still.is_err(), "not yet");
        clock.advance(chrono::Duration::seconds(-100));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(29));
        clock.advance(chrono::Duration::seconds(1));
        sleeping.await;
    }
}
