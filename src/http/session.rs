//! Dashboard sessions: random tokens handed out by `POST /login`, kept in memory only (a restart
//! logs everyone out), bounded in number, compared in constant time; and the budget of failed
//! logins.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::rate::SlidingWindow;

/// How long a login lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Sessions kept at most; the oldest is dropped for a new one.
const MAX_SESSIONS: usize = 32;
/// Failed logins allowed per minute, over all callers, before logins are refused for a while.
pub(crate) const FAILED_LOGINS_PER_MINUTE: usize = 10;

/// Browser sessions and the failed-login budget.
pub(crate) struct Sessions {
    // A std mutex: held for a scan of at most MAX_SESSIONS tokens, never across an await.
    live: Mutex<Vec<(String, Instant)>>,
    failures: SlidingWindow,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            live: Mutex::new(Vec::new()),
            failures: SlidingWindow::new(FAILED_LOGINS_PER_MINUTE, Duration::from_secs(60)),
        }
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are credentials: only their number is shown.
        let n = self.lock().len();
        write!(f, "Sessions({n})")
    }
}

impl Sessions {
    /// Failed logins in the last minute (all callers).
    pub(crate) fn failures(&self) -> &SlidingWindow {
        &self.failures
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Instant)>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session's token: 32 random bytes from the thread's CSPRNG, in hex.
    pub(crate) fn create(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut live = self.lock();
        live.retain(|(_, exp)| *exp > now);
        if live.len() >= MAX_SESSIONS {
            live.remove(0);
        }
        live.push((token.clone(), now + SESSION_TTL));
        token
    }

    /// Whether `token` names a live session. Every token is compared, in constant time.
    pub(crate) fn valid(&self, token: &str) -> bool {
        let now = Instant::now();
        let live = self.lock();
        let mut ok = false;
        for (t, exp) in live.iter() {
            ok |= bool::from(t.as_bytes().ct_eq(token.as_bytes())) & (*exp > now);
        }
        ok
    }

    pub(crate) fn remove(&self, token: &str) {
        self.lock()
            .retain(|(t, _)| !bool::from(t.as_bytes().ct_eq(token.as_bytes())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_live_and_removable() {
        let s = Sessions::default();
        let a = s.create();
        let b = s.create();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.valid(&a) && s.valid(&b));
        assert!(!s.valid("") && !s.valid(&a[..63]));
        s.remove(&a);
        assert!(!s.valid(&a) && s.valid(&b));
        assert_eq!(format!("{s:?}"), "Sessions(1)");
        for _ in 0..MAX_SESSIONS {
            s.create();
        }
        assert!(!s.valid(&b), "the oldest session goes first");
    }
}
