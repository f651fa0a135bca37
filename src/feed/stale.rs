//! The stale-quote clock: per quote-subscribed contract, when its last quote came, so a silent
//! contract is reported once per silence and its return noticed. Pure: the caller brings time.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Tracks, per subscribed contract, when its last quote came, to report silence.
#[derive(Debug)]
pub struct StaleTracker {
    after: Duration,
    contracts: HashMap<String, Freshness>,
}

#[derive(Debug)]
struct Freshness {
    last: Instant,
    stale: bool,
}

impl StaleTracker {
    pub fn new(after: Duration) -> Self {
        Self {
            after,
            contracts: HashMap::new(),
        }
    }

    /// Starts the clock for a contract (from `now`, as if a quote had just come); a contract
    /// already watched keeps its clock.
    pub fn watch(&mut self, contract_id: &str, now: Instant) {
        self.contracts
            .entry(contract_id.to_string())
            .or_insert(Freshness {
                last: now,
                stale: false,
            });
    }

    pub fn unwatch(&mut self, contract_id: &str) {
        self.contracts.remove(contract_id);
    }

    /// Records a quote; `true` when the contract had been reported stale (it has resumed).
    pub fn on_quote(&mut self, contract_id: &str, now: Instant) -> bool {
        match self.contracts.get_mut(contract_id) {
            Some(f) => {
                f.last = now;
                std::mem::replace(&mut f.stale, false)
            }
            None => false,
        }
    }

    /// Contracts that became stale since the last check, with how long they have been silent.
    /// Each silence is reported once.
    pub fn check(&mut self, now: Instant) -> Vec<(String, Duration)> {
        let mut out = Vec::new();
        for (id, f) in &mut self.contracts {
            let silent = now.saturating_duration_since(f.last);
            if !f.stale && silent >= self.after {
                f.stale = true;
                out.push((id.clone(), silent));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_is_reported_once_per_silence_and_resumes() {
        let t0 = Instant::now();
        let mut s = StaleTracker::new(Duration::from_secs(5));
        s.watch("A", t0);
        s.watch("B", t0);
        assert!(s.check(t0 + Duration::from_secs(4)).is_empty());
        assert!(!s.on_quote("A", t0 + Duration::from_secs(4)));
        let stale = s.check(t0 + Duration::from_secs(6));
        assert_eq!(stale, vec![("B".to_string(), Duration::from_secs(6))]);
        assert!(
            s.check(t0 + Duration::from_secs(7)).is_empty(),
            "reported once"
        );
        assert!(s.on_quote("B", t0 + Duration::from_secs(8)), "resumed");
        assert_eq!(
            s.check(t0 + Duration::from_secs(9)).len(),
            1,
            "A is stale now"
        );
        s.unwatch("A");
        assert!(!s.on_quote("A", t0 + Duration::from_secs(9)));
        assert!(!s.on_quote("unknown", t0));
    }
}
