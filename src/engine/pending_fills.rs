//! Fills the journal waits on: held until their strategy is known, or written without one
//! after a grace, never twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::gateway::wire::Trade;

/// How long a fill whose order is not known yet waits for its strategy before it is journaled
/// without one. The hub can report a fill before the place call's answer names the order; that
/// answer comes within a REST round trip, while a crash inside this window would lose the line.
pub(super) const UNATTRIBUTED_JOURNAL_GRACE: Duration = Duration::from_secs(3);

/// Fills remembered as journaled without a strategy (to skip a late attribution); beyond this
/// the memory starts over (a late attribution after thousands of manual fills is moot).
const JOURNALED_UNATTRIBUTED_KEPT: usize = 4096;

/// Fills held for their strategy, and those already journaled without one.
#[derive(Debug, Default)]
pub(crate) struct PendingFills {
    held: HashMap<i64, (Trade, Instant)>,
    written_blank: HashSet<i64>,
}

impl PendingFills {
    /// Holds a fill no order of ours accounts for yet, seen at `now`.
    pub fn hold(&mut self, trade: &Trade, now: Instant) {
        self.held.entry(trade.id).or_insert((trade.clone(), now));
    }

    /// A fill now attributed: true when it still has to be journaled (it was not written
    /// without a strategy already).
    pub fn attributed(&mut self, fill_id: i64) -> bool {
        self.held.remove(&fill_id);
        !self.written_blank.remove(&fill_id)
    }

    /// The held fills seen at least `grace` before `now`, oldest id first; they count as
    /// journaled without a strategy from now on.
    pub fn due(&mut self, now: Instant, grace: Duration) -> Vec<Trade> {
        let mut due: Vec<Trade> = Vec::new();
        self.held.retain(|_, (t, seen)| {
            let keep = now.saturating_duration_since(*seen) < grace;
            if !keep {
                due.push(t.clone());
            }
            keep
        });
        due.sort_by_key(|t| t.id);
        for t in &due {
            if self.written_blank.len() >= JOURNALED_UNATTRIBUTED_KEPT {
                self.written_blank.clear();
            }
            self.written_blank.insert(t.id);
        }
        due
    }
}
