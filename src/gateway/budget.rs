//! Request budgets: sliding windows ([`crate::rate`]) that keep the client under the gateway's
//! documented rate limits, and that the simulator uses to decide when to answer 429.

use std::time::Duration;

use crate::rate::SlidingWindow;

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

    pub fn for_endpoint(&self, endpoint: super::endpoint::Endpoint) -> &SlidingWindow {
        if endpoint.is_bars() {
            &self.bars
        } else {
            &self.general
        }
    }
}
