//! The seams between the HTTP server and the rest of the program: [`Ops`] (readiness, status,
//! kill switch — implemented by the engine) and [`Strategies`] (webhook delivery and strategy
//! status — implemented by the Lua [`Host`]).
//!
//! The server never reaches into the engine's state: it asks through these traits, so the
//! engine keeps sole ownership of its trading state and can answer from a snapshot.

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::engine::{Host, RunState, StrategyStatus, WebhookRequest};
use crate::metrics::Metrics;

/// What the engine tells the HTTP server. Called from the server's tasks: implementations must
/// answer quickly and must not block on the engine loop (read a snapshot, send a command).
///
/// For the engine (issue 5): implement this on a handle that reads a shared snapshot (e.g. a
/// `watch::Receiver<Snapshot>` the engine loop updates) and sends `halt` as a command to the loop.
pub trait Ops: Send + Sync + 'static {
    /// `Ok` when the engine can trade: token valid, hubs connected. `Err(reason)` otherwise,
    /// e.g. `"market hub reconnecting"`; the reason is shown on `/readyz` (never a secret).
    /// Strategy loading is checked by the server itself through [`Strategies`].
    ///
    /// # Errors
    /// The reason the engine is not ready.
    fn readiness(&self) -> Result<(), String>;

    /// A JSON object merged into `/status`: connection states (`"connections"`), positions,
    /// open orders, risk state (`"risk"`), account. The server adds `"strategies"`.
    fn status(&self) -> Value;

    /// The kill switch: no new orders, working orders cancelled, positions flattened.
    ///
    /// # Errors
    /// Why the halt could not be started (the server answers 500 with it).
    fn halt(&self, reason: &str) -> Result<(), String>;

    /// Lifts a halt (`POST /resume`): new orders are checked by the risk guard again.
    ///
    /// # Errors
    /// Why the resume could not be started (the server answers 500 with it).
    fn resume(&self) -> Result<(), String>;

    /// Cancels every working order and closes every position, without halting
    /// (`POST /flatten`).
    ///
    /// # Errors
    /// Why it could not be started (the server answers 500 with it).
    fn flatten_all(&self) -> Result<(), String>;
}

/// Where webhooks go and where strategy status comes from.
pub trait Strategies: Send + Sync + 'static {
    /// Hands the request to the strategy's `on_webhook`; the answer comes on `req.reply`.
    /// Returns `false` (and drops or answers the request) when there is no such strategy.
    fn webhook(&self, strategy: &str, req: WebhookRequest) -> bool;
    /// Every strategy, sorted by name.
    fn status(&self) -> Vec<StrategyStatus>;
    /// The operator pauses (`true`) or resumes (`false`) a strategy; `false` when there is no
    /// such strategy.
    fn hold(&self, strategy: &str, paused: bool) -> bool;
}

impl Strategies for Host {
    fn webhook(&self, strategy: &str, req: WebhookRequest) -> bool {
        Host::webhook(self, strategy, req)
    }

    fn status(&self) -> Vec<StrategyStatus> {
        Host::status(self)
    }

    fn hold(&self, strategy: &str, paused: bool) -> bool {
        Host::hold(self, strategy, paused)
    }
}

impl<T: Strategies + ?Sized> Strategies for std::sync::Arc<T> {
    fn webhook(&self, strategy: &str, req: WebhookRequest) -> bool {
        (**self).webhook(strategy, req)
    }

    fn status(&self) -> Vec<StrategyStatus> {
        (**self).status()
    }

    fn hold(&self, strategy: &str, paused: bool) -> bool {
        (**self).hold(strategy, paused)
    }
}

/// A plain [`Ops`] whose readiness and status are set from outside: for tests, and for
/// `moontick run` until the engine owns these answers.
#[derive(Debug)]
pub struct SimpleOps {
    inner: Mutex<SimpleState>,
}

#[derive(Debug)]
struct SimpleState {
    ready: Result<(), String>,
    status: Value,
    halted: Option<String>,
    flattened: u32,
}

impl SimpleOps {
    /// Not ready until [`SimpleOps::set_ready`] says otherwise.
    pub fn new(reason: impl Into<String>) -> Self {
        SimpleOps {
            inner: Mutex::new(SimpleState {
                ready: Err(reason.into()),
                status: json!({}),
                halted: None,
                flattened: 0,
            }),
        }
    }

    pub fn set_ready(&self, ready: Result<(), String>) {
        self.lock().ready = ready;
    }

    pub fn set_status(&self, status: Value) {
        self.lock().status = status;
    }

    /// How many times `/flatten` was called.
    pub fn flattened(&self) -> u32 {
        self.lock().flattened
    }

    /// The reason of the last halt, if `/halt` was called.
    pub fn halted(&self) -> Option<String> {
        self.lock().halted.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimpleState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Ops for SimpleOps {
    fn readiness(&self) -> Result<(), String> {
        self.lock().ready.clone()
    }

    fn status(&self) -> Value {
        let s = self.lock();
        let mut v = s.status.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("halted".into(), json!(s.halted));
        }
        v
    }

    fn halt(&self, reason: &str) -> Result<(), String> {
        self.lock().halted = Some(reason.to_owned());
        Ok(())
    }

    fn resume(&self) -> Result<(), String> {
        self.lock().halted = None;
        Ok(())
    }

    fn flatten_all(&self) -> Result<(), String> {
        self.lock().flattened += 1;
        Ok(())
    }
}

/// Why the strategies are not ready: every one still loading, never loaded, stuck or crashed,
/// by name.
pub(crate) fn strategies_ready(all: &[StrategyStatus]) -> Result<(), String> {
    let problems: Vec<String> = all
        .iter()
        .filter_map(|s| {
            Some(match s.state {
                RunState::Starting => format!("strategy {} is still loading", s.name),
                RunState::Failed => format!("strategy {} failed to load", s.name),
                RunState::Stuck => match &s.stalled {
                    Some(st) => format!(
                        "strategy {} is stuck in {} for {:.1} s",
                        s.name,
                        st.handler,
                        st.for_ms as f64 / 1000.0
                    ),
                    None => format!("strategy {} is stuck", s.name),
                },
                RunState::Crashed => format!("strategy {} crashed", s.name),
                _ => return None,
            })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Every state `moontick_strategy_state` reports.
const STATES: [RunState; 7] = [
    RunState::Starting,
    RunState::Running,
    RunState::Paused,
    RunState::Stuck,
    RunState::Crashed,
    RunState::Failed,
    RunState::Stopped,
];

/// `GET /metrics`: the registry, with each strategy's current state set just before encoding
/// (a state is a fact of now, not a count the engine could increment).
pub(crate) fn metrics_text(metrics: &Metrics, all: &[StrategyStatus]) -> String {
    let names = STATES.map(RunState::as_str);
    for s in all {
        metrics.strategy_state(&s.name, s.state.as_str(), &names);
    }
    metrics.encode()
}

/// One strategy as `/status` shows it. The path is relative to the strategies directory's
/// parent as configured, never absolute, and load errors are `file:line: message`.
pub(crate) fn strategy_json(s: &StrategyStatus) -> Value {
    json!({
        "name": s.name,
        "file": s.path.file_name().map(|f| f.to_string_lossy().into_owned()),
        "version": s.generation,
        "state": s.state.as_str(),
        "last_reload_ms": s.loaded_at_ms,
        "load_error": s.load_error,
        "last_error": s.last_error,
        "errors": s.errors,
        "handled": s.handled,
        "quotes_handled": s.quotes_handled,
        "quotes_coalesced": s.quotes_coalesced,
        "webhooks_refused": s.webhooks_refused,
        "stuck": s.stalled.as_ref().map(|st| json!({"handler": st.handler, "for_ms": st.for_ms})),
        "crash": s.crash,
    })
}
