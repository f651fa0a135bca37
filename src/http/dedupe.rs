//! Remembers recent webhooks so that a resent alert (TradingView resends on timeouts and 5xx,
//! users double-fire alerts) runs its handler once. Memory is bounded twice: entries expire after
//! the window, and the oldest are evicted beyond a fixed count.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// What happened to a remembered webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Its handler has not answered yet.
    Running,
    /// Its handler answered.
    Done,
}

/// The keys of webhooks seen within the window. Keys are 64-bit keyed hashes, so neither a body
/// nor a secret inside one is kept in memory; `RandomState` is seeded per process, so nobody can
/// craft collisions offline.
#[derive(Debug)]
pub struct Dedupe {
    window: Duration,
    capacity: usize,
    hasher: RandomState,
    seen: HashMap<u64, (Instant, Seen)>,
    /// Insertion order, for expiry and eviction; an entry whose time no longer matches the map
    /// was forgotten or re-inserted since, and is skipped.
    order: VecDeque<(Instant, u64)>,
}

impl Dedupe {
    /// `window` zero disables dedupe.
    pub fn new(window: Duration, capacity: usize) -> Self {
        Dedupe {
            window,
            capacity: capacity.max(1),
            hasher: RandomState::new(),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The key of a webhook: its `id` when it has one, otherwise its whole body, per strategy.
    pub fn key(&self, strategy: &str, id: Option<&str>, body: &[u8]) -> u64 {
        match id {
            Some(id) => self.hasher.hash_one((strategy, 0u8, id)),
            None => self.hasher.hash_one((strategy, 1u8, body)),
        }
    }

    /// Records `key` as running unless it was seen within the window; returns what was seen
    /// before, if anything.
    pub fn check_and_insert(&mut self, key: u64, now: Instant) -> Option<Seen> {
        if self.window.is_zero() {
            return None;
        }
        self.expire(now);
        if let Some((_, seen)) = self.seen.get(&key) {
            return Some(*seen);
        }
        while self.seen.len() >= self.capacity {
            let Some((t, k)) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&k).is_some_and(|(at, _)| *at == t) {
                self.seen.remove(&k);
            }
        }
        self.seen.insert(key, (now, Seen::Running));
        self.order.push_back((now, key));
        None
    }

    /// Marks a webhook's handler as done (it stays remembered until the window ends).
    pub fn done(&mut self, key: u64) {
        if let Some((_, s)) = self.seen.get_mut(&key) {
            *s = Seen::Done;
        }
    }

    /// Forgets a webhook, so that a resend runs it: used when it never reached a handler or
    /// failed without placing an order.
    pub fn forget(&mut self, key: u64) {
        self.seen.remove(&key);
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, k)) = self.order.front() {
            if now.saturating_duration_since(t) < self.window {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&k).is_some_and(|(at, _)| *at == t) {
                self.seen.remove(&k);
            }
        }
        // Forgotten keys leave stale entries in `order`; drop them once they dominate so a
        // stream of failing webhooks cannot grow the queue.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let seen = &self.seen;
            self.order
                .retain(|(t, k)| seen.get(k).is_some_and(|(at, _)| at == t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_window_are_seen_and_expire_after_it() {
        let mut d = Dedupe::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let k = d.key("tv", Some("a1"), b"{}");
        assert_eq!(d.check_and_insert(k, t0), None);
        assert_eq!(d.check_and_insert(k, t0), Some(Seen::Running));
        d.done(k);
        assert_eq!(
            d.check_and_insert(k, t0 + Duration::from_secs(59)),
            Some(Seen::Done)
        );
        assert_eq!(d.check_and_insert(k, t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn id_wins_over_body_and_strategies_are_separate() {
        let d = Dedupe::new(Duration::from_secs(60), 100);
        assert_eq!(d.key("a", Some("1"), b"x"), d.key("a", Some("1"), b"y"));
        assert_ne!(d.key("a", Some("1"), b"x"), d.key("b", Some("1"), b"x"));
        assert_ne!(d.key("a", None, b"x"), d.key("a", None, b"y"));
    }

    #[test]
    fn memory_is_bounded_by_capacity() {
        let mut d = Dedupe::new(Duration::from_secs(60), 3);
        let now = Instant::now();
        for i in 0..10u64 {
            d.check_and_insert(i, now);
        }
        assert_eq!(d.len(), 3);
        for i in 100..1000u64 {
            d.check_and_insert(i, now);
            d.forget(i);
        }
        assert!(d.order.len() <= 7, "{}", d.order.len());
    }

    #[test]
    fn zero_window_disables() {
        let mut d = Dedupe::new(Duration::ZERO, 3);
        let now = Instant::now();
        assert_eq!(d.check_and_insert(1, now), None);
        assert_eq!(d.check_and_insert(1, now), None);
    }
}
