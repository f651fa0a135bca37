//! The engine loop stepped by a caller instead of run by tokio: the same [`Core`] (risk guard,
//! book, strategies, bars), fed one event at a time on a simulated clock and settled before the
//! next, with orders going to an in-process [`Exchange`]. A backtest drives it.
//!
//! The strategies run inline, on the caller's thread ([`HostConfig::inline`]): the caller
//! waits for them after every event anyway, and handing each event to a strategy thread and
//! waiting for it to settle cost more than the event itself. Their `bot.*` calls are answered
//! at once by the core, as the engine loop answers them live.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::{mpsc, watch};

use super::book::ContractInfo;
use super::core::Core;
use super::gateway_calls::SharedExchange;
use super::input::{INPUT_CAPACITY, Input};
use super::status::EngineStatus;
use crate::feed::{MarketEvent, UserEvent};
use crate::gateway::wire::Account;
use crate::metrics::Metrics;
use crate::risk::RiskGuard;
use crate::script::StrategyStatus;
use crate::script::{BotCall, BotReply, Broker, Host, HostConfig, ManualClock, Refusal};

pub(crate) use super::gateway_calls::Exchange;
pub(crate) use super::input::Input as EngineInput;
pub(crate) use super::input::Mutation;

/// A stepped engine (see the module documentation).
pub(crate) struct SteppedEngine {
    core: Arc<Mutex<Core>>,
    rx: mpsc::Receiver<Input>,
    host: Arc<Host>,
}

/// Answers a strategy's `bot.*` call on the strategy's (the caller's) thread. The core is
/// never locked while a strategy runs, so this cannot wait on itself.
struct InlineBroker {
    core: Weak<Mutex<Core>>,
}

impl Broker for InlineBroker {
    fn answer(&self, strategy: &str, call: BotCall) -> BotReply {
        match self.core.upgrade() {
            Some(core) => lock(&core).on_bot_call(strategy, call),
            None => BotReply::Refused(Refusal::new("the engine is stopping")),
        }
    }
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}

impl SteppedEngine {
    /// Knows `contracts` up front (there is no gateway to resolve symbols against), loads the
    /// strategies on `clock` (`on_start` included), and hands them to the core.
    ///
    /// # Errors
    /// When the strategies directory cannot be read.
    pub fn start(
        exchange: SharedExchange,
        account: Account,
        guard: RiskGuard,
        mut host: HostConfig,
        contracts: Vec<ContractInfo>,
        clock: Arc<ManualClock>,
        more: &mut dyn FnMut(&mut Self) -> bool,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(INPUT_CAPACITY);
        let (status_tx, _) = watch::channel(EngineStatus::default());
        let mut core = Core::new(
            None,
            exchange,
            account,
            guard,
            tx,
            None,
            status_tx,
            Arc::new(Metrics::new()),
        );
        core.sim_clock = Some(clock.clone());
        core.started = core.now_utc();
        core.day = super::day::Day::new(core.started);
        core.session = super::events::SessionTally::new(crate::cme::trading_day(core.started));
        core.bars = super::bar_state::Bars::new(host.bars.clone());
        core.on_input(Input::Resolved(contracts));
        let core = Arc::new(Mutex::new(core));
        let broker = Arc::new(InlineBroker {
            core: Arc::downgrade(&core),
        });
        host.inline = true;
        let host = Arc::new(Host::start(host, broker, clock)?);
        lock(&core).on_input(Input::HostReady(host.clone()));
        let mut engine = Self { core, rx, host };
        // The first loads run here, after the core has the host (their `on_start` may call
        // `bot.*`); then what they declare is resolved, as a live start does.
        engine.settle(more);
        lock(&engine.core).resolve_declared();
        Ok(engine)
    }

    /// Where the bar series take their history from (there is no gateway to ask): the series
    /// the strategies declare start now, history and all, before the first event.
    pub fn set_bar_history(&mut self, history: super::bar_state::HistoryFn) {
        {
            let mut core = lock(&self.core);
            core.bars.history = Some(history);
            core.sync_bars();
        }
        self.settle(&mut |_| false);
    }

    /// The strategies' status (load errors among it).
    pub fn status(&self) -> Vec<StrategyStatus> {
        self.host.status()
    }

    /// The strategies, for an HTTP server watching a replay (webhooks, their status).
    pub fn host(&self) -> Arc<Host> {
        self.host.clone()
    }

    /// The engine's status as [`Self::publish`] last left it.
    pub fn engine_status(&self) -> watch::Receiver<EngineStatus> {
        lock(&self.core).status.subscribe()
    }

    /// Republishes [`Self::engine_status`] (the tokio loop does it on its own; a stepped one
    /// when its driver wants it seen).
    pub fn publish(&mut self) {
        lock(&self.core).publish();
    }

    /// Where the operator's kill switch, resume and flatten go (`Halter::of_stepped`): applied
    /// at the next [`Self::settle`].
    pub(super) fn sender(&self) -> mpsc::Sender<Input> {
        lock(&self.core).tx.clone()
    }

    /// The counters the core increments.
    pub fn metrics(&self) -> Arc<Metrics> {
        lock(&self.core).metrics.clone()
    }

    /// The earliest strategy timer on the clock, as the strategies last saw it.
    pub fn next_timer_ms(&self) -> Option<i64> {
        self.host.next_timer_ms()
    }

    /// A recorded market event, as the feed would hand it to the loop.
    pub fn market(&mut self, event: MarketEvent) {
        lock(&self.core).on_market(event);
    }

    /// An order, fill or position event, as the user hub would report it.
    pub fn user(&mut self, event: UserEvent) {
        lock(&self.core).on_user(event);
    }

    /// An outcome of an order call, as a REST task would report it.
    pub fn input(&mut self, input: EngineInput) {
        lock(&self.core).on_input(input);
    }

    /// The loop's periodic work (the daily loss limit, bar closes) at the clock's time.
    pub fn tick(&mut self) {
        lock(&self.core).on_tick();
    }

    /// Runs the strategies through their due timers and what was queued for them, applies
    /// what `more` delivers (the exchange's outcomes; it returns whether it delivered anything)
    /// and what the core sent itself, until nothing is left: then the next event may come.
    pub fn settle(&mut self, more: &mut dyn FnMut(&mut Self) -> bool) {
        loop {
            let mut progressed = false;
            while let Ok(input) = self.rx.try_recv() {
                lock(&self.core).on_input(input);
                progressed = true;
            }
            progressed |= more(self);
            progressed |= self.host.run_inline();
            if !progressed {
                return;
            }
        }
    }

    /// Stops the strategies (`on_stop("shutdown")`), answering their calls, and applies what
    /// follows.
    pub fn shutdown(mut self, more: &mut dyn FnMut(&mut Self) -> bool) -> Vec<StrategyStatus> {
        let host = self.host.clone();
        let last = host.shutdown();
        // Stopped strategies take nothing more: only the core and the exchange are left.
        loop {
            let mut progressed = false;
            while let Ok(input) = self.rx.try_recv() {
                lock(&self.core).on_input(input);
                progressed = true;
            }
            if !(more(&mut self) || progressed) {
                return last;
            }
        }
    }
}
