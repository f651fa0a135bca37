//! The strategy host: one thread per strategy file, routing of engine events to their
//! mailboxes, starting/reloading/stopping strategies as files come and go, and status.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::broker::{Broker, Clock};
use super::events::{Event, WebhookOutcome, WebhookRequest};
use super::mailbox::{Delivery, Mailbox, QueueLimits};
use super::runner::{Runner, Shared};
use super::sandbox::Limits;
use super::spec::Spec;
use super::status::{RunState, StrategyStatus};
use super::version::RunnerConfig;
use super::watch::{self, Change, Watcher};
use super::watchdog;

#[path = "host_declared.rs"]
mod declared;

/// How the host runs strategies. Built by the caller from the global `Config`; the host never
/// reads the environment itself.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where `*.lua` strategies live; modules for `require` are in its `lib/`.
    pub strategies_dir: PathBuf,
    /// Where `state` is saved as `<name>.json`; `None` keeps state in memory only.
    pub state_dir: Option<PathBuf>,
    pub limits: Limits,
    /// Non-quote events queued before the host warns that a strategy is falling behind (they
    /// are never dropped).
    pub queue_capacity: usize,
    /// Quotes waiting for one strategy beyond which they coalesce (latest per contract) until it
    /// catches up.
    pub quote_backlog: usize,
    /// Age of the oldest waiting delivery beyond which quotes coalesce, likewise.
    pub quote_backlog_age: Duration,
    /// Webhooks waiting for one strategy beyond which more are refused (503).
    pub webhook_backlog: usize,
    /// A callback running longer than this marks its strategy stuck.
    pub watchdog: Duration,
    /// How long [`Host::shutdown`] waits for the strategies to stop.
    pub shutdown_timeout: Duration,
    /// Handler failures in a row that pause a strategy.
    pub max_consecutive_errors: u32,
    pub state_flush_every: Duration,
    pub debounce: Duration,
    /// Where the engine keeps bars; strategies read `bot.bars` from it. A fresh, empty store
    /// unless the engine's is set here.
    pub bars: crate::bars::BarStore,
    /// Strategies run on the caller's thread, stepped by [`Host::run_inline`], instead of on
    /// threads of their own: a backtest, whose driver waits for every strategy after every
    /// event anyway. Nothing runs until the first `run_inline` (the first load included).
    pub inline: bool,
}

impl HostConfig {
    pub fn new(strategies_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            strategies_dir: strategies_dir.into(),
            state_dir: None,
            limits: Limits::default(),
            queue_capacity: 10_000,
            quote_backlog: 10_000,
            quote_backlog_age: Duration::from_millis(50),
            webhook_backlog: 100,
            watchdog: Duration::from_secs(2),
            shutdown_timeout: Duration::from_secs(15),
            max_consecutive_errors: 10,
            state_flush_every: Duration::from_secs(30),
            debounce: Duration::from_millis(200),
            bars: crate::bars::BarStore::new(),
            inline: false,
        }
    }

    fn lib_dir(&self) -> PathBuf {
        self.strategies_dir.join("lib")
    }
}

/// Problems starting the host (a strategy that fails to load is not one: it is reported in
/// its [`StrategyStatus`]).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot read strategies directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch strategies directory {path}: {source}")]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

struct Entry {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    cfg: HostConfig,
    broker: Arc<dyn Broker>,
    clock: Arc<dyn Clock>,
    // Written only when a file appears or disappears; the hot path takes the read side.
    strategies: RwLock<HashMap<String, Entry>>,
    /// Threads of strategies whose file was deleted, joined at shutdown.
    retired: Mutex<Vec<(String, JoinHandle<()>)>>,
    /// Ends the watchdog thread.
    stop_watchdog: Arc<AtomicBool>,
    /// The runners of an inline host ([`HostConfig::inline`]), by strategy name.
    inline: Mutex<Vec<(String, Runner)>>,
}

/// The running strategies. Dropping it without [`Host::shutdown`] asks every strategy to stop
/// (`on_stop("shutdown")`, state saved) without waiting for them.
pub struct Host {
    inner: Arc<Inner>,
    // Behind a lock so that `watch` and `shutdown` work through a shared `Arc<Host>` (the HTTP
    // server holds one for webhooks).
    watcher: Mutex<Option<Watcher>>,
}

/// The strategy name of a file directly in the strategies directory, if it is one.
fn strategy_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".lua")?;
    // Editors' swap and backup files (`.x.lua.swp`, `#x.lua#`, `.#x.lua`) are not strategies.
    if stem.is_empty() || stem.starts_with('.') || stem.starts_with('#') {
        return None;
    }
    Some(stem.to_owned())
}

impl Host {
    /// Starts one thread per `*.lua` file in the strategies directory; each loads its file and
    /// calls `on_start` (`reason = "restart"` when saved state was found). Returns once every
    /// file has been loaded or has failed to (see [`Host::status`]).
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn start(
        cfg: HostConfig,
        broker: Arc<dyn Broker>,
        clock: Arc<dyn Clock>,
    ) -> Result<Host, HostError> {
        let dir = cfg.strategies_dir.clone();
        let read = std::fs::read_dir(&dir).map_err(|source| HostError::ReadDir {
            path: dir.clone(),
            source,
        })?;
        let mut files: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && strategy_name(p).is_some())
            .collect();
        files.sort();
        let inner = Arc::new(Inner {
            cfg,
            broker,
            clock,
            strategies: RwLock::new(HashMap::new()),
            retired: Mutex::new(Vec::new()),
            stop_watchdog: Arc::new(AtomicBool::new(false)),
            inline: Mutex::new(Vec::new()),
        });
        spawn_watchdog(&inner);
        for f in files {
            inner.file_changed(&f);
        }
        let host = Host {
            inner,
            watcher: Mutex::new(None),
        };
        // Wait for the first load of each file so that routing knows every strategy's symbols
        // before the first quote, and `symbols()` is complete. A load is bounded by the
        // instruction budget, and one stuck elsewhere is marked stuck by the watchdog, so this
        // ends. An inline host loads in its first `run_inline`.
        while !host.inner.cfg.inline && host.status().iter().any(|s| s.state == RunState::Starting)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(host)
    }

    /// Watches the strategies directory (and its `lib/`) from now on: a saved file reloads its
    /// strategy, a new file starts one, a deleted file stops one, a changed module in `lib/`
    /// reloads them all.
    ///
    /// # Errors
    /// When the operating system refuses the watch.
    pub fn watch(&self) -> Result<(), HostError> {
        let inner = self.inner.clone();
        let dir = self.inner.cfg.strategies_dir.clone();
        let w = watch::spawn(
            &dir,
            &self.inner.cfg.lib_dir(),
            self.inner.cfg.debounce,
            move |change| match change {
                Change::Strategy(path) => inner.file_changed(&path),
                Change::Lib => inner.reload_all(),
            },
        )
        .map_err(|source| HostError::Watch { path: dir, source })?;
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
        Ok(())
    }

    /// Routes a market or feed event to every strategy that wants it: quotes, depth, trades and
    /// positions by `symbols` (depth and trades only when the strategy set `depth`/`trades`),
    /// feed status to all. Orders and fills belong to one strategy: use [`Host::send`].
    /// Returns how many strategies it was queued for.
    pub fn dispatch(&self, event: Event) -> usize {
        let map = self.strategies();
        let mut queued = 0;
        // Each strategy that wants the event gets a copy, the last one the event itself.
        let mut last: Option<&Mailbox> = None;
        for entry in map.values() {
            let wanted = {
                // Read in place, not cloned out: the guard ends before the mailbox is locked.
                let spec = entry.shared.spec.read().unwrap_or_else(|e| e.into_inner());
                match &event {
                    Event::Feed(_) => true,
                    Event::Bar(b) => spec.wants_bar(&b.contract, &b.symbol, b.timeframe),
                    Event::Trade(_) if !spec.trades => false,
                    Event::Depth(_) if !spec.depth => false,
                    e => e.instrument().is_some_and(|(c, s)| spec.wants(c, s)),
                }
            };
            if wanted {
                if let Some(m) = last.replace(&entry.shared.mailbox) {
                    m.push(Delivery::Event(event.clone()));
                }
                queued += 1;
            }
        }
        if let Some(m) = last {
            m.push(Delivery::Event(event));
        }
        queued
    }

    /// Runs the strategies of an inline host ([`HostConfig::inline`]) on this thread, in name
    /// order, through their due timers and everything queued for them, without waiting.
    /// Returns whether any of them did anything. Their `bot.*` calls must be answered on
    /// this thread too.
    pub fn run_inline(&self) -> bool {
        let mut runners = self.inner.inline.lock().unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        let mut i = 0;
        while i < runners.len() {
            let runner = &mut runners[i].1;
            let stepped = std::panic::catch_unwind(AssertUnwindSafe(|| runner.step()));
            match stepped {
                Ok((progressed, None)) => {
                    any |= progressed;
                    i += 1;
                }
                Ok((_, Some(reason))) => {
                    any = true;
                    runners.remove(i).1.stop(&reason);
                }
                // As a strategy thread that panicked: crashed, and gone.
                Err(p) => {
                    any = true;
                    let (_, runner) = runners.remove(i);
                    runner.shared().crashed(panic_message(p.as_ref()));
                }
            }
        }
        any
    }

    /// The strategies, read-locked (a poisoned lock still holds a usable map).
    fn strategies(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.inner
            .strategies
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers an event to one strategy. Returns `false` when there is no such strategy.
    pub fn send(&self, strategy: &str, event: Event) -> bool {
        self.deliver(strategy, Delivery::Event(event))
    }

    /// Queues a delivery for one strategy; `false` when there is no such strategy.
    fn deliver(&self, strategy: &str, delivery: Delivery) -> bool {
        let map = self.strategies();
        match map.get(strategy) {
            Some(e) => {
                e.shared.mailbox.push(delivery);
                true
            }
            None => false,
        }
    }

    /// Hands a webhook to a strategy's `on_webhook`; the answer arrives on the request's reply
    /// channel. An unknown strategy is answered at once with an error, and `false` returned.
    pub fn webhook(&self, strategy: &str, req: WebhookRequest) -> bool {
        let map = self.strategies();
        match map.get(strategy) {
            Some(e) => {
                // Refused at once (the reply says why) when the strategy is stuck, crashed or
                // has too many waiting.
                e.shared.mailbox.push(Delivery::Webhook(req));
                true
            }
            None => {
                let _ = req.reply.send(WebhookOutcome::failed(format!(
                    "no strategy named '{strategy}'"
                )));
                false
            }
        }
    }

    /// The operator pauses (`true`) or resumes (`false`) a strategy: it takes effect after
    /// what is already queued for it. Returns `false` when there is no such strategy.
    pub fn hold(&self, strategy: &str, paused: bool) -> bool {
        self.deliver(strategy, Delivery::Hold(paused))
    }

    /// The earliest timer of any strategy on the engine clock, as their threads last saw.
    pub fn next_timer_ms(&self) -> Option<i64> {
        let map = self.strategies();
        map.values()
            .filter_map(|e| e.shared.mailbox.next_timer_ms())
            .min()
    }

    /// Every known strategy, sorted by name.
    pub fn status(&self) -> Vec<StrategyStatus> {
        let map = self.strategies();
        let mut out: Vec<StrategyStatus> = map.values().map(|e| e.shared.status()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The status of one strategy.
    pub fn strategy(&self, name: &str) -> Option<StrategyStatus> {
        self.status().into_iter().find(|s| s.name == name)
    }

    /// Stops watching, calls every `on_stop("shutdown")` after the events already queued, saves
    /// state, and waits for the strategy threads — at most `shutdown_timeout` in all. Returns
    /// their final status: a strategy whose state is not `Stopped` did not stop (stuck, or
    /// crashed); its last periodic save is what remains of its state. Those are logged by name.
    pub fn shutdown(&self) -> Vec<StrategyStatus> {
        let deadline = Instant::now() + self.inner.cfg.shutdown_timeout;
        drop(
            self.watcher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let mut entries: Vec<(String, Entry)> = {
            let mut map = self
                .inner
                .strategies
                .write()
                .unwrap_or_else(|e| e.into_inner());
            map.drain().collect()
        };
        for (_, e) in &entries {
            e.shared.mailbox.push(Delivery::Stop("shutdown".into()));
        }
        let retired =
            std::mem::take(&mut *self.inner.retired.lock().unwrap_or_else(|e| e.into_inner()));
        let mut threads: Vec<(String, JoinHandle<()>)> = retired;
        for (name, e) in &mut entries {
            if let Some(t) = e.thread.take() {
                threads.push((name.clone(), t));
            }
        }
        // Inline: `on_stop` runs here, on the caller's thread.
        while !self
            .inner
            .inline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
            && Instant::now() < deadline
        {
            self.run_inline();
        }
        let mut hung = Vec::new();
        let limit = self.inner.cfg.watchdog;
        for (name, t) in threads {
            while !t.is_finished() && Instant::now() < deadline {
                // The watchdog no longer sees these entries: one stuck in `on_stop` is marked
                // here.
                for (n, e) in &entries {
                    let s = &e.shared;
                    s.watch.check(n, limit, &s.status, &s.mailbox);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                // Detached: a thread stuck in native code cannot be stopped from outside, and
                // waiting for it would keep the process from ever exiting.
                hung.push(name);
            }
        }
        self.inner.stop_watchdog.store(true, Ordering::Relaxed);
        let mut last: Vec<StrategyStatus> =
            entries.iter().map(|(_, e)| e.shared.status()).collect();
        last.sort_by(|a, b| a.name.cmp(&b.name));
        let not_stopped: Vec<String> = last
            .iter()
            .filter(|s| s.state != RunState::Stopped)
            .map(|s| format!("{} ({})", s.name, s.state.as_str()))
            .collect();
        if !not_stopped.is_empty() {
            tracing::error!(
                strategies = %not_stopped.join(", "),
                still_running = %hung.join(", "),
                "strategies did not stop; their last saved state is kept"
            );
        }
        last
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        drop(
            self.watcher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let mut map = self
            .inner
            .strategies
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for (_, e) in map.drain() {
            e.shared.mailbox.push(Delivery::Stop("shutdown".into()));
        }
        self.inner.stop_watchdog.store(true, Ordering::Relaxed);
    }
}

/// Starts the watchdog over every strategy of `inner`; it ends with the host.
fn spawn_watchdog(inner: &Arc<Inner>) {
    let limit = inner.cfg.watchdog;
    // Stuck is reported within a quarter of the limit after it passes.
    let period = (limit / 4).clamp(Duration::from_millis(1), Duration::from_millis(250));
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let spawned = watchdog::spawn(period, inner.stop_watchdog.clone(), move || {
        let Some(inner) = weak.upgrade() else {
            return false;
        };
        let map = inner.strategies.read().unwrap_or_else(|e| e.into_inner());
        for (name, e) in map.iter() {
            e.shared
                .watch
                .check(name, limit, &e.shared.status, &e.shared.mailbox);
        }
        true
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the strategy watchdog; stuck strategies will not be reported");
    }
}

impl Inner {
    /// Brings the strategy of `path` in line with the file: start, reload or stop it.
    fn file_changed(&self, path: &Path) {
        let Some(name) = strategy_name(path) else {
            return;
        };
        let Some(file_name) = path.file_name() else {
            return;
        };
        // Load through the configured directory so error messages show the path the user
        // knows (`strategies/x.lua`), not the watcher's absolute one.
        let path = self.cfg.strategies_dir.join(file_name);
        let mut map = self.strategies.write().unwrap_or_else(|e| e.into_inner());
        if path.is_file() {
            match map.get(&name) {
                Some(e) => e.shared.mailbox.push(Delivery::Reload),
                None => {
                    tracing::info!(strategy = %name, path = %path.display(), "new strategy file");
                    let entry = self.spawn(&name, path);
                    map.insert(name, entry);
                }
            }
        } else if let Some(e) = map.remove(&name) {
            tracing::info!(strategy = %name, "strategy file deleted; stopping it");
            e.shared.mailbox.push(Delivery::Stop("removed".into()));
            if let Some(t) = e.thread {
                self.retired
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((name, t));
            }
        }
    }

    fn reload_all(&self) {
        let map = self.strategies.read().unwrap_or_else(|e| e.into_inner());
        for e in map.values() {
            e.shared.mailbox.push(Delivery::Reload);
        }
    }

    fn spawn(&self, name: &str, path: PathBuf) -> Entry {
        let limits = QueueLimits {
            quote_backlog: self.cfg.quote_backlog.max(1),
            quote_backlog_age: self.cfg.quote_backlog_age,
            webhook_backlog: self.cfg.webhook_backlog,
            event_warn: self.cfg.queue_capacity,
        };
        let shared = Arc::new(Shared {
            mailbox: Mailbox::new(name, limits),
            status: Mutex::new(StrategyStatus::starting(name, path.clone())),
            spec: RwLock::new(Arc::new(Spec::default())),
            watch: Default::default(),
        });
        let cfg = RunnerConfig {
            name: name.to_owned(),
            path,
            lib_dir: self.cfg.lib_dir(),
            state_dir: self.cfg.state_dir.clone(),
            limits: self.cfg.limits,
            max_consecutive_errors: self.cfg.max_consecutive_errors.max(1),
            state_flush_every: self.cfg.state_flush_every,
            broker: self.broker.clone(),
            clock: self.clock.clone(),
            bars: self.cfg.bars.clone(),
        };
        // The first load goes through the mailbox like any reload, so events sent before it
        // finishes wait for it instead of being lost.
        shared.mailbox.push(Delivery::Reload);
        if self.cfg.inline {
            let runner = Runner::new(cfg, shared.clone());
            let mut inline = self.inline.lock().unwrap_or_else(|e| e.into_inner());
            let at = inline.partition_point(|(n, _)| n.as_str() < name);
            inline.insert(at, (name.to_owned(), runner));
            return Entry {
                shared,
                thread: None,
            };
        }
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("strategy-{name}"))
            .spawn(move || {
                // A panic anywhere in the strategy's handling (a `bot` call, the host's own
                // code) must not leave it looking alive while nothing runs.
                let runner = Runner::new(cfg, s.clone());
                if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(|| runner.run())) {
                    s.crashed(panic_message(p.as_ref()));
                }
            })
            .map_err(
                |e| tracing::error!(strategy = %name, error = %e, "cannot start strategy thread"),
            )
            .ok();
        if thread.is_none() {
            shared
                .status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .state = RunState::Failed;
        }
        Entry { shared, thread }
    }
}

/// The text of a panic payload.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".into())
}
