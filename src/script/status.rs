//! Where each strategy is in its life and what `/status` shows for it: shared by the host, which
//! reads it, and the strategy threads and watchdog, which write it.

use std::path::PathBuf;

/// Where a strategy is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Its first load has not finished yet.
    Starting,
    Running,
    /// Paused after repeated handler failures, until the file is saved again (or the operator
    /// resumes it); or paused by the operator, until resumed.
    Paused,
    /// A callback has run longer than the watchdog allows; see `stalled`. It is running again
    /// as soon as that callback returns.
    Stuck,
    /// Its thread panicked; see `crash`. It gets no further events until the process restarts.
    Crashed,
    /// No version has ever loaded; see `load_error`.
    Failed,
    Stopped,
}

impl RunState {
    /// The lower-case name `/status`, `/readyz` and `/metrics` use.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Stuck => "stuck",
            RunState::Crashed => "crashed",
            RunState::Failed => "failed",
            RunState::Stopped => "stopped",
        }
    }
}

/// The callback a stuck strategy is inside, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// `on_quote`, `on_webhook`, `timer`, `load`, ...
    pub handler: &'static str,
    pub for_ms: u64,
}

/// What `/status` shows for one strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyStatus {
    pub name: String,
    pub path: PathBuf,
    /// The version running: 0 before the first successful load, +1 on every successful reload.
    pub generation: u64,
    /// When the running version loaded (engine clock, ms since the epoch); `None` before the
    /// first successful load.
    pub loaded_at_ms: Option<i64>,
    pub state: RunState,
    /// Why the latest load failed (`file:line: message`); cleared by a successful load.
    pub load_error: Option<String>,
    /// The latest handler failure (`handler: file:line: message`).
    pub last_error: Option<String>,
    pub errors: u64,
    /// Handler calls that returned normally.
    pub handled: u64,
    /// Of those, `on_quote` calls.
    pub quotes_handled: u64,
    /// Quotes replaced by a newer one of the same contract before the strategy read them: while
    /// its backlog was over the bound, or always with `quotes = "latest"`.
    pub quotes_coalesced: u64,
    /// Webhooks answered 503 without running: the strategy was stuck, crashed or had too many
    /// waiting.
    pub webhooks_refused: u64,
    /// Set while `state` is `Stuck`.
    pub stalled: Option<Stall>,
    /// The panic message, once `state` is `Crashed`.
    pub crash: Option<String>,
}

impl StrategyStatus {
    /// A strategy that has not loaded yet.
    pub fn starting(name: &str, path: PathBuf) -> Self {
        StrategyStatus {
            name: name.to_owned(),
            path,
            generation: 0,
            loaded_at_ms: None,
            state: RunState::Starting,
            load_error: None,
            last_error: None,
            errors: 0,
            handled: 0,
            quotes_handled: 0,
            quotes_coalesced: 0,
            webhooks_refused: 0,
            stalled: None,
            crash: None,
        }
    }
}
