//! Retry delays (hub reconnects, lookups of unknown orders): exponential backoff with a cap and
//! jitter, as a pure function of the attempt.

use std::time::Duration;

/// Delay before reconnect attempt `n` is `initial · 2ⁿ`, capped at `max`, then shortened by a
/// random share of up to `jitter` (0.0–1.0) of itself.
///
/// Jitter only ever shortens the delay, so the cap is a real upper bound, and spreads the
/// reconnects of many clients cut off by the same server restart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub jitter: f64,
}

/// The longest a hub waits between reconnect attempts by default: after an outage the
/// engine is blind (no fills, no order updates) until the hub is back, so it must not sleep
/// through most of a minute once the gateway is reachable again.
pub const RECONNECT_CAP: Duration = Duration::from_secs(10);

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: RECONNECT_CAP,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0 = the first reconnect), with `random` in `[0, 1)`
    /// choosing the jitter. Saturates instead of overflowing for any attempt.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let initial = self.initial.as_nanos();
        // 2^attempt overflows u128 past 127; any factor that large is past the cap anyway.
        let exp = if attempt >= 127 {
            u128::MAX
        } else {
            1u128 << attempt
        };
        let base = initial.saturating_mul(exp).min(self.max.as_nanos());
        let jitter = self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        let cut = (base as f64 * jitter) as u128;
        let nanos = base.saturating_sub(cut);
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }

    /// [`Backoff::delay`] with a fresh random jitter.
    pub fn delay_jittered(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            jitter: 0.5,
        }
    }

    #[test]
    fn attempt_zero_is_the_initial_delay() {
        assert_eq!(b().delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(b().delay(1, 0.0), Duration::from_millis(200));
        assert_eq!(b().delay(3, 0.0), Duration::from_millis(800));
    }

    #[test]
    fn the_default_reconnect_delay_is_at_most_ten_seconds() {
        let d = Backoff::default();
        assert!(d.max <= Duration::from_secs(10));
        assert_eq!(d.delay(u32::MAX, 0.0), d.max);
    }

    #[test]
    fn delay_stops_at_the_cap() {
        assert_eq!(b().delay(7, 0.0), Duration::from_secs(10)); // 12.8 s capped
        assert_eq!(b().delay(40, 0.0), Duration::from_secs(10));
    }

    #[test]
    fn huge_attempts_do_not_overflow() {
        for attempt in [63, 64, 126, 127, 128, u32::MAX] {
            assert_eq!(b().delay(attempt, 0.0), Duration::from_secs(10));
            assert!(b().delay(attempt, 0.999) <= Duration::from_secs(10));
        }
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            jitter: 0.0,
        };
        assert!(huge.delay(u32::MAX, 0.0) > Duration::from_secs(1 << 40));
    }

    #[test]
    fn jitter_only_shortens_within_its_share() {
        assert_eq!(b().delay(0, 0.5), Duration::from_millis(75));
        let d = b().delay(50, 0.999_999);
        assert!(
            d >= Duration::from_secs(5) && d <= Duration::from_secs(10),
            "{d:?}"
        );
        // Out-of-range inputs are clamped rather than trusted.
        assert_eq!(b().delay(0, -3.0), Duration::from_millis(100));
        assert_eq!(b().delay(0, 7.0), Duration::from_millis(50));
        for _ in 0..100 {
            assert!(b().delay_jittered(2) <= Duration::from_millis(400));
        }
    }
}
