//! Request budgets: a sliding-window counter that keeps the client under the gateway's documented
//! rate limits, and that the simulator uses to decide when to answer 429.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// At most `limit` events in any window of `window`.
///
/// A sliding window rather than fixed buckets, because the gateway does not document which it
/// uses; staying under a sliding window keeps us under a fixed one too.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    sent: Mutex<VecDeque<Instant>>,
}

impl SlidingWindow {
    pub fn new(limit: usize, window: Duration) -> Self {
        assert!(
            limit > 0,
            "a budget of zero requests would never let one through"
        );
        Self {
            limit,
            window,
            sent: Mutex::new(VecDeque::with_capacity(limit)),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Takes a slot now, or says how long until one frees up.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        while sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.window)
        {
            sent.pop_front();
        }
        if sent.len() < self.limit {
            sent.push_back(now);
            Ok(())
        } else {
            let oldest = *sent.front().expect("full window is not empty");
            Err(self.window - now.duration_since(oldest))
        }
    }

    /// Waits for a slot and takes it.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire(Instant::now()) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Slots used in the window ending now.
    pub fn used(&self, now: Instant) -> usize {
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter()
            .filter(|&&t| now.duration_since(t) < self.window)
            .count()
    }
}

/// The gateway's two documented limits: 50 / 30 s for bars, 200 / 60 s for everything else.
#[derive(Debug)]
pub struct RestBudget {
    pub general: SlidingWindow,
    pub bars: SlidingWindow,
}

impl RestBudget {
    /// The documented limits themselves (what the simulator enforces).
    pub fn documented() -> Self {
        Self::new(200, 50)
    }

    /// What the client allows itself: 90% of the documented limits, because the server counts
    /// arrivals and we count departures, and other tools may share the same API key.
    pub fn client_default() -> Self {
        Self::new(180, 45)
    }

    pub fn new(general_per_minute: usize, bars_per_30s: usize) -> Self {
        Self {
            general: SlidingWindow::new(general_per_minute, Duration::from_secs(60)),
            bars: SlidingWindow::new(bars_per_30s, Duration::from_secs(30)),
        }
    }

    pub fn for_endpoint(&self, endpoint: super::Endpoint) -> &SlidingWindow {
        if endpoint.is_bars() {
            &self.bars
        } else {
            &self.general
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_then_says_how_long_to_wait() {
        let w = SlidingWindow::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(w.try_acquire(t0).is_ok());
        assert!(w.try_acquire(t0 + Duration::from_secs(1)).is_ok());
        assert!(w.try_acquire(t0 + Duration::from_secs(2)).is_ok());
        assert_eq!(
            w.try_acquire(t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
        // The first slot frees exactly one window after it was taken.
        assert!(w.try_acquire(t0 + Duration::from_secs(10)).is_ok());
        assert!(w.try_acquire(t0 + Duration::from_secs(10)).is_err());
        assert_eq!(w.used(t0 + Duration::from_secs(10)), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_the_window_to_slide() {
        let w = SlidingWindow::new(2, Duration::from_secs(30));
        let start = Instant::now();
        for _ in 0..5 {
            w.acquire().await;
        }
        // Five requests at two per 30 s: the fifth goes out at 60 s.
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }
}
