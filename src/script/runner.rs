//! One strategy's thread: calling the current version's handlers under the instruction budget
//! and the watchdog, timers, reload with state carried over (a new version is built by
//! [`version`](super::version)), pausing, and saving state.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use mlua::{FromLuaMulti, Function, IntoLuaMulti, Value};

use super::events::Event;
use super::mailbox::{Delivery, Mailbox};
use super::sandbox;
use super::spec::{QuoteMode, Spec};
use super::state;
use super::status::{RunState, StrategyStatus};
use super::tables::event_table;
use super::version::{Carry, RunnerConfig, Version, build};
use super::watchdog::{Recovered, Watched};

#[path = "runner_webhook.rs"]
mod webhook;

/// The parts of a strategy the host and its thread share.
pub struct Shared {
    pub mailbox: Mailbox,
    pub status: Mutex<StrategyStatus>,
    pub spec: RwLock<Arc<Spec>>,
    pub watch: Watched,
}

impl Shared {
    /// The status with the mailbox's counters and a live stall duration filled in.
    pub fn status(&self) -> StrategyStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.quotes_coalesced = self.mailbox.quotes_coalesced();
        s.webhooks_refused = self.mailbox.webhooks_refused();
        if s.state == RunState::Stuck {
            s.stalled = self.watch.stalled().or(s.stalled);
        }
        s
    }

    /// The thread panicked: mark the strategy crashed and queue nothing more for it. Its last
    /// saved state stays on disk; the VM is gone.
    pub fn crashed(&self, message: String) {
        self.watch.clear();
        self.mailbox
            .close("strategy crashed (details in the engine log)".into());
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        tracing::error!(strategy = %s.name, panic = %message, "strategy CRASHED: it gets no further events until moontick restarts");
        s.state = RunState::Crashed;
        s.stalled = None;
        s.crash = Some(message);
    }
}

/// The strategy's thread: owns the current version and works through the mailbox.
pub struct Runner {
    cfg: RunnerConfig,
    shared: Arc<Shared>,
    /// Boxed: it is taken out and put back around every call, and a move of the box is a
    /// pointer, not the whole version.
    current: Option<Box<Version>>,
    generation: u64,
    consecutive_errors: u32,
    paused: bool,
    /// Paused by the operator ([`Delivery::Hold`]): unlike `paused`, a reload keeps it.
    held: bool,
    next_flush: Instant,
    /// What [`Runner::step`] takes the mailbox into.
    batch: VecDeque<Delivery>,
}

impl Runner {
    pub fn new(cfg: RunnerConfig, shared: Arc<Shared>) -> Self {
        let next_flush = Instant::now() + cfg.state_flush_every;
        Runner {
            cfg,
            shared,
            current: None,
            generation: 0,
            consecutive_errors: 0,
            paused: false,
            held: false,
            next_flush,
            batch: VecDeque::new(),
        }
    }

    /// What the host shares with this runner.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn status(&self, f: impl FnOnce(&mut StrategyStatus)) {
        f(&mut self.shared.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Runs until a `Stop` arrives.
    pub fn run(mut self) {
        let mut batch = VecDeque::new();
        loop {
            self.fire_due_timers();
            let deadline = self.prepare_wait();
            // Everything waiting in one go: one lock and at most one wake-up per burst.
            self.shared.mailbox.take(&mut batch, deadline);
            if let Some(reason) = self.handle(&mut batch) {
                return self.stop(&reason);
            }
        }
    }

    /// One turn on the caller's thread, never waiting (a backtest steps its strategies so,
    /// see [`HostConfig::inline`](super::HostConfig::inline)): fires the timers due on the
    /// clock, then handles everything queued. Returns whether it did anything, and the reason
    /// when a `Stop` came: the caller then ends the strategy with [`Runner::stop`].
    pub(super) fn step(&mut self) -> (bool, Option<String>) {
        let fired = self.fire_due_timers();
        self.flush_if_due();
        self.publish_next_timer();
        // The batch and the mailbox's queue swap on every take: both keep their capacity, so
        // a step allocates nothing.
        let mut batch = std::mem::take(&mut self.batch);
        self.shared.mailbox.try_take(&mut batch);
        let took = !batch.is_empty();
        let stop = self.handle(&mut batch);
        self.batch = batch;
        (fired || took, stop)
    }

    /// Saves state when due and publishes the next timer; returns how long the thread may wait
    /// for the next delivery.
    fn prepare_wait(&mut self) -> Option<Instant> {
        self.flush_if_due();
        let timer_due = self.publish_next_timer().map(|(due_ms, now_ms)| {
            // Timers are on the engine clock; the wait is on this machine's. Waiting at
            // most a second at a time notices a clock that was stepped (a simulated one, or
            // a wall clock corrected) within that second.
            let wait = due_ms.saturating_sub(now_ms).clamp(0, 1000);
            Instant::now() + std::time::Duration::from_millis(wait as u64)
        });
        match (timer_due, self.cfg.state_dir.is_some()) {
            (Some(t), true) => Some(t.min(self.next_flush)),
            (Some(t), false) => Some(t),
            (None, true) => Some(self.next_flush),
            (None, false) => None,
        }
    }

    /// Tells the mailbox when the next timer falls due (see [`Mailbox::next_timer_ms`]);
    /// returns that and the engine clock's now, when there is a timer.
    fn publish_next_timer(&self) -> Option<(i64, i64)> {
        let v = self.current.as_ref()?;
        let due_ms = v
            .ctx
            .timers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_due();
        self.shared.mailbox.set_next_timer(due_ms);
        Some((due_ms?, v.ctx.clock.now_ms()))
    }

    /// Handles what was taken from the mailbox, in order; the reason when a `Stop` came.
    fn handle(&mut self, batch: &mut VecDeque<Delivery>) -> Option<String> {
        while let Some(d) = batch.pop_front() {
            match d {
                Delivery::Reload => self.reload(),
                Delivery::Stop(reason) => {
                    // Nothing is queued after a stop; a webhook behind it would be answered
                    // "strategy stopped" when its reply channel drops.
                    batch.clear();
                    return Some(reason);
                }
                Delivery::Event(e) => self.deliver(e),
                Delivery::Webhook(req) => self.webhook(req),
                Delivery::Hold(on) => self.hold(on),
            }
        }
        None
    }

    fn reload(&mut self) {
        let generation = self.generation + 1;
        let mut reason = "start";
        let carry = match &self.current {
            Some(old) => {
                reason = "reload";
                Carry::Old(old)
            }
            None => match self
                .cfg
                .state_dir
                .as_deref()
                .map(|d| state::load(d, &self.cfg.name))
            {
                Some(Ok(Some(json))) => {
                    reason = "restart";
                    Carry::Saved(json)
                }
                Some(Err(e)) => {
                    tracing::warn!(strategy = %self.cfg.name, error = %e, "saved state unreadable; starting with an empty state");
                    Carry::Fresh
                }
                _ => Carry::Fresh,
            },
        };
        self.shared.watch.begin("load", None);
        let built = build(&self.cfg, generation, carry);
        self.end_watch();
        let new = match built {
            Ok(v) => v,
            Err(msg) => {
                if self.current.is_some() {
                    tracing::error!(strategy = %self.cfg.name, error = %msg, "new version failed to load; the last good version keeps running");
                } else {
                    tracing::error!(strategy = %self.cfg.name, error = %msg, "strategy failed to load");
                }
                self.status(|s| {
                    s.load_error = Some(msg);
                    if s.generation == 0 {
                        s.state = RunState::Failed;
                    }
                });
                return;
            }
        };
        if let Some(old) = self.current.take() {
            if let Some(f) = old.handler("on_stop") {
                self.call::<()>(&old, "on_stop", &f, "reload");
            }
            // on_stop may have written to state after the first copy.
            let merged = old.state().and_then(|from| {
                new.state()
                    .and_then(|into| state::merge_into(&new.lua, &from, &into, &self.cfg.name))
            });
            if let Err(e) = merged {
                tracing::warn!(strategy = %self.cfg.name, error = %sandbox::describe(&e), "state changed by on_stop could not be carried over");
            }
        }
        self.generation = generation;
        self.paused = false;
        self.consecutive_errors = 0;
        self.shared
            .mailbox
            .set_latest_only(new.spec.quotes == QuoteMode::Latest);
        *self.shared.spec.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new.spec.clone());
        let loaded_at = self.cfg.clock.now_ms();
        let held = self.held;
        self.status(|s| {
            s.generation = generation;
            s.loaded_at_ms = Some(loaded_at);
            s.state = if held {
                RunState::Paused
            } else {
                RunState::Running
            };
            s.load_error = None;
        });
        tracing::info!(strategy = %self.cfg.name, generation, reason, "strategy loaded");
        if let Some(f) = new.handler("on_start") {
            let ctx = new
                .lua
                .create_table()
                .and_then(|t| t.raw_set("reason", reason).map(|_| t));
            if let Ok(ctx) = ctx {
                self.call::<()>(&new, "on_start", &f, ctx);
            }
        }
        self.current = Some(Box::new(new));
    }

    /// The operator pauses or resumes the strategy. Resuming also lifts a pause after repeated
    /// errors (the operator has looked).
    fn hold(&mut self, on: bool) {
        self.held = on;
        if !on {
            self.paused = false;
            self.consecutive_errors = 0;
        }
        let loaded = self.current.is_some();
        self.status(|s| {
            if on && loaded {
                s.state = RunState::Paused;
            } else if !on && loaded && s.state == RunState::Paused {
                s.state = RunState::Running;
            }
        });
        tracing::warn!(strategy = %self.cfg.name, "strategy {} by the operator", if on { "PAUSED" } else { "resumed" });
    }

    pub(super) fn stop(mut self, reason: &str) {
        if let Some(v) = self.current.take() {
            if let Some(f) = v.handler("on_stop") {
                self.call::<()>(&v, "on_stop", &f, reason);
            }
            self.save_state(&v);
        }
        self.status(|s| s.state = RunState::Stopped);
        tracing::info!(strategy = %self.cfg.name, reason, "strategy stopped");
    }

    fn flush_if_due(&mut self) {
        if self.cfg.state_dir.is_none() || Instant::now() < self.next_flush {
            return;
        }
        self.next_flush = Instant::now() + self.cfg.state_flush_every;
        if let Some(v) = &self.current {
            self.save_state(v);
        }
    }

    fn save_state(&self, v: &Version) {
        let Some(dir) = &self.cfg.state_dir else {
            return;
        };
        let res = v
            .state()
            .and_then(|t| state::to_json(&v.lua, &t, &self.cfg.name))
            .map_err(|e| sandbox::describe(&e))
            .and_then(|json| state::save(dir, &self.cfg.name, &json).map_err(|e| e.to_string()));
        if let Err(e) = res {
            tracing::warn!(strategy = %self.cfg.name, error = %e, "could not save state");
        }
    }

    /// Calls a handler under a fresh instruction budget; a failure is logged with file and line
    /// and counted, and enough of them in a row pause the strategy.
    ///
    /// `R` is what the caller reads of the result: `()` reads nothing, which saves turning the
    /// handler's return into a Rust value on every quote.
    fn call<R: FromLuaMulti>(
        &mut self,
        v: &Version,
        name: &'static str,
        f: &Function,
        args: impl IntoLuaMulti,
    ) -> Option<R> {
        self.shared.watch.begin(name, Some(&v.budget));
        v.budget.reset();
        let result = f.call::<R>(args);
        let stalled = self.end_watch();
        match result {
            Ok(ret) => {
                self.consecutive_errors = 0;
                let quote = name == "on_quote";
                self.status(|s| {
                    s.handled += 1;
                    s.quotes_handled += u64::from(quote);
                });
                Some(ret)
            }
            Err(e) => {
                let mut msg = sandbox::describe(&e);
                if let Some(ran) = stalled.filter(|r| r.interrupted).map(|r| r.ran) {
                    // The interrupt goes through the budget; say what really stopped it.
                    let at = msg
                        .find("instruction budget exceeded")
                        .map_or("", |i| &msg[..i]);
                    msg = format!(
                        "{at}interrupted by the watchdog after {:.1} s",
                        ran.as_secs_f64()
                    );
                }
                self.consecutive_errors += 1;
                tracing::error!(strategy = %self.cfg.name, handler = name, error = %msg, "handler failed");
                let pause = self.consecutive_errors >= self.cfg.max_consecutive_errors;
                if pause && !self.paused {
                    self.paused = true;
                    tracing::error!(
                        strategy = %self.cfg.name,
                        errors = self.consecutive_errors,
                        "strategy PAUSED after {} failures in a row; it gets no events until its file is saved again",
                        self.consecutive_errors
                    );
                }
                self.status(|s| {
                    s.errors += 1;
                    s.last_error = Some(format!("{name}: {msg}"));
                    if pause {
                        s.state = RunState::Paused;
                    }
                });
                // A memory bomb leaves garbage behind; collect it before the next event.
                if matches!(e, mlua::Error::MemoryError(_)) {
                    let _ = v.lua.gc_collect();
                }
                None
            }
        }
    }

    /// Ends the watchdog's view of a callback; when it had been marked stuck, logs that the
    /// strategy responds again and returns how long the callback ran.
    fn end_watch(&self) -> Option<Recovered> {
        let r = self
            .shared
            .watch
            .end(&self.shared.status, &self.shared.mailbox)?;
        tracing::warn!(strategy = %self.cfg.name, handler = r.handler, ran_ms = r.ran.as_millis() as u64, interrupted = r.interrupted, "strategy is responding again after a stuck callback");
        Some(r)
    }

    /// Calls the timers due on the clock; whether any was due.
    fn fire_due_timers(&mut self) -> bool {
        let due = self.current.as_ref().is_some_and(|v| {
            let next = v
                .ctx
                .timers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .next_due();
            next.is_some_and(|d| d <= v.ctx.clock.now_ms())
        });
        if !due {
            return false;
        }
        let Some(v) = self.current.take() else {
            return false;
        };
        let now = v.ctx.clock.now_ms();
        let due: Vec<(i64, i64, u64, bool)> = {
            let mut set = v.ctx.timers.lock().unwrap_or_else(|e| e.into_inner());
            let mut due = Vec::new();
            set.timers.retain_mut(|t| {
                if t.due_ms > now {
                    return true;
                }
                let when = t.due_ms;
                let again = t.reschedule(now);
                due.push((when, t.id, t.generation, again));
                again
            });
            // In the order they fell due (then of creation), as on a simulated clock that
            // jumped past several.
            due.sort_unstable();
            due
        };
        let any = !due.is_empty();
        for (_, id, generation, repeats) in due {
            // Timers belong to the version that made them; one from an older generation must
            // never run against the new code or state.
            if generation != v.generation || self.paused || self.held {
                continue;
            }
            let fns = v
                .ctx
                .timers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fns
                .clone();
            let Ok(Some(f)) = fns.raw_get::<Option<Function>>(id) else {
                continue;
            };
            if !repeats {
                let _ = fns.raw_set(id, Value::Nil);
            }
            self.call::<()>(&v, "timer", &f, ());
        }
        self.current = Some(v);
        any
    }

    fn deliver(&mut self, e: Event) {
        if self.paused || self.held {
            return;
        }
        let Some(mut v) = self.current.take() else {
            return;
        };
        let (name, ev) = match &e {
            Event::Quote(_) => ("on_quote", None),
            Event::Trade(_) => ("on_trade", None),
            Event::Depth(_) => ("on_depth", None),
            Event::Order(_) => ("on_order", None),
            Event::Fill(_) => ("on_fill", None),
            Event::Position(_) => ("on_position", None),
            Event::Feed(s) => ("on_feed", Some(s.as_str())),
            Event::Bar(_) => ("on_bar", None),
        };
        if let Event::Quote(q) = &e {
            // The quote slot is bound to this version's `on_quote`, if it has one.
            let lua = v.lua.clone();
            match v.quote.names_of(&lua, q) {
                Ok(Some(names)) => {
                    if let Some((trampoline, args)) = v.quote.args(q, names) {
                        self.call::<()>(&v, name, trampoline, args);
                    }
                }
                Ok(None) => {}
                Err(err) => self.table_error(&err),
            }
        } else if let Some(f) = v.handler(name) {
            let arg = match ev {
                Some(s) => v.lua.create_string(s).map(Value::String),
                None => event_table(&v.lua, &e).map(Value::Table),
            };
            match arg {
                Ok(arg) => {
                    self.call::<()>(&v, name, &f, arg);
                }
                Err(err) => self.table_error(&err),
            }
        }
        self.current = Some(v);
    }

    fn table_error(&self, err: &mlua::Error) {
        tracing::error!(strategy = %self.cfg.name, error = %sandbox::describe(err), "could not build the event table");
    }
}
