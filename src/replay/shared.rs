//! What a replay's driver thread and its HTTP side share: the speed, the progress, the stop
//! flag, and the engine's handles the server reads.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};

use tokio::sync::watch;

use crate::engine::{EngineStatus, Halter, Host};
use crate::metrics::Metrics;

/// How fast a recording plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Recorded time runs this many times faster than the wall clock.
    Times(f64),
    /// As fast as the engine goes (a backtest, watched).
    Max,
}

impl Speed {
    /// `10`, `0.5`, or `max`.
    ///
    /// # Errors
    /// Anything else, zero and negative speeds included, with what is accepted.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(Speed::Times(x)),
            _ => Err(format!(
                "{s:?} is not a speed: give a number above 0 (10 plays ten times faster than \
                 recorded, 1 as recorded) or max"
            )),
        }
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Times(x) => write!(f, "{x}x"),
            Speed::Max => f.write_str("max"),
        }
    }
}

/// What the driver thread and the HTTP side share.
pub(crate) struct Shared {
    /// The recorded time played up to.
    pub(super) clock_ms: AtomicI64,
    /// Set by the HTTP side: the driver ends the replay at its next step.
    pub(super) stop: AtomicBool,
    /// The replay is over (the report is made).
    pub(super) finished: AtomicBool,
    pub(super) data: String,
    pub(super) speed: Speed,
}

/// The running engine, as the HTTP server sees it.
pub(crate) struct Handle {
    pub(super) host: Arc<Host>,
    pub(super) status: watch::Receiver<EngineStatus>,
    pub(super) halter: Halter,
    pub(super) metrics: Arc<Metrics>,
}
