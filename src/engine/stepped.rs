//! The engine loop stepped by a caller instead of run by tokio: the same [`Core`] (risk guard,
//! book, strategies, bars), fed one event at a time on a simulated clock and settled before the
//! next, with orders going to an in-process [`Exchange`]. A backtest drives it.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::book::ContractInfo;
use super::broker::EngineBroker;
use super::core::Core;
use super::gateway_calls::SharedExchange;
use super::input::{INPUT_CAPACITY, Input};
use super::status::EngineStatus;
use crate::feed::{MarketEvent, UserEvent};
use crate::gateway::wire::Account;
use crate::metrics::Metrics;
use crate::risk::RiskGuard;
use crate::script::{Host, HostConfig, ManualClock, StrategyStatus};

pub(crate) use super::gateway_calls::Exchange;
pub(crate) use super::input::Input as EngineInput;
pub(crate) use super::input::Mutation;

/// A stepped engine (see the module documentation).
pub(crate) struct SteppedEngine {
    core: Core,
    rx: mpsc::Receiver<Input>,
    host: Arc<Host>,
}

impl SteppedEngine {
    /// Knows `contracts` up front (there is no gateway to resolve symbols against), starts the
    /// strategies on `clock`, and hands them to the core.
    ///
    /// # Errors
    /// When the strategies directory cannot be read.
    pub fn start(
        exchange: SharedExchange,
        account: Account,
        guard: RiskGuard,
        host: HostConfig,
        contracts: Vec<ContractInfo>,
        clock: Arc<ManualClock>,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(INPUT_CAPACITY);
        let (status_tx, _) = watch::channel(EngineStatus::default());
        let mut core = Core::new(
            None,
            exchange,
            account,
            guard,
            tx.clone(),
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
        let broker = Arc::new(EngineBroker::new(tx));
        let host = Arc::new(Host::start(host, broker, clock)?);
        core.on_input(Input::HostReady(host.clone()));
        let mut engine = Self { core, rx, host };
        engine.settle(&mut |_| false);
        Ok(engine)
    }

    /// Where the bar series take their history from (there is no gateway to ask): the series
    /// the strategies declare start now, history and all, before the first event.
    pub fn set_bar_history(&mut self, history: super::bar_state::HistoryFn) {
        self.core.bars.history = Some(history);
        self.core.sync_bars();
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
        self.core.status.subscribe()
    }

    /// Republishes [`Self::engine_status`] (the tokio loop does it on its own; a stepped one
    /// when its driver wants it seen).
    pub fn publish(&mut self) {
        self.core.publish();
    }

    /// Where the operator's kill switch, resume and flatten go (`Halter::of_stepped`): applied
    /// at the next [`Self::settle`].
    pub(super) fn sender(&self) -> mpsc::Sender<Input> {
        self.core.tx.clone()
    }

    /// The counters the core increments.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.core.metrics.clone()
    }

    /// The earliest strategy timer on the clock, as the strategies last saw it.
    pub fn next_timer_ms(&self) -> Option<i64> {
        self.host.next_timer_ms()
    }

    /// Wakes the strategies whose timers are due by `now_ms` (the clock is there already);
    /// [`Self::settle`] then waits for them to have fired.
    pub fn wake_timers(&self, now_ms: i64) {
        self.host.wake_due(now_ms);
    }

    /// A recorded market event, as the feed would hand it to the loop.
    pub fn market(&mut self, event: MarketEvent) {
        self.core.on_market(event);
    }

    /// An order, fill or position event, as the user hub would report it.
    pub fn user(&mut self, event: UserEvent) {
        self.core.on_user(event);
    }

    /// An outcome of an order call, as a REST task would report it.
    pub fn input(&mut self, input: EngineInput) {
        self.core.on_input(input);
    }

    /// The loop's periodic work (the daily loss limit, bar closes) at the clock's time.
    pub fn tick(&mut self) {
        self.core.on_tick();
    }

    /// Answers the strategies' `bot.*` calls and applies what `more` delivers (the exchange's
    /// outcomes; it returns whether it delivered anything) until every strategy has finished
    /// what it was given and nothing is left: then the next event may come.
    pub fn settle(&mut self, more: &mut dyn FnMut(&mut Self) -> bool) {
        let mut spins = 0u32;
        loop {
            let mut progressed = false;
            while let Ok(input) = self.rx.try_recv() {
                self.core.on_input(input);
                progressed = true;
            }
            if more(self) {
                progressed = true;
            }
            if progressed {
                spins = 0;
                continue;
            }
            // Checked before the queue again: a strategy that sent a call is not idle until
            // it has its answer, so an empty queue after an idle host means it is all done.
            if self.host.idle() && self.rx.is_empty() {
                return;
            }
            spins += 1;
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }

    /// Stops the strategies (`on_stop("shutdown")`) while still answering their calls.
    pub fn shutdown(mut self, more: &mut dyn FnMut(&mut Self) -> bool) -> Vec<StrategyStatus> {
        let host = self.host.clone();
        let stopping = std::thread::spawn(move || host.shutdown());
        // Not `settle`: a stopped strategy waits for nothing, so it never reads as idle.
        let mut drain = |engine: &mut Self| {
            while let Ok(input) = engine.rx.try_recv() {
                engine.core.on_input(input);
            }
            while more(engine) {}
        };
        while !stopping.is_finished() {
            drain(&mut self);
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        drain(&mut self);
        stopping.join().unwrap_or_default()
    }
}
