//! A sliding-window rate limit, shared by the risk guard (orders per minute) and the REST
//! budget (requests per window): neither owns the other's idea of time.

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
