//! The engine loop's state and its handlers: hub events in, strategy events out, `bot.*`
//! requests answered through the risk guard, REST results applied.

use rustc_hash::FxHashMap;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::book::{Book, ContractInfo, strategy_of_tag};
use super::events::{EngineEvent, EventBus, SessionTally};
use super::gateway_calls::{self as calls, SharedExchange};
use super::input::Input;
use super::pending_fills::{PendingFills, UNATTRIBUTED_JOURNAL_GRACE};
use super::status::EngineStatus;
use crate::feed::{ConnectionState, MarketEvent, MarketEvents, MarketFeed, UserEvent};
use crate::gateway::wire::{Account, Order, Position, Trade};
use crate::gateway::{GatewayClient, SymbolResolver};
use crate::journal::Journal;
use crate::market::Quote;
use crate::metrics::Metrics;
use crate::risk::RiskGuard;
use crate::script::{Event, FeedStatus, Host, StrategyStatus};

pub(crate) struct Core {
    /// The REST client for what is not an order call (symbols, bar history, lookups); `None`
    /// in a backtest, where contracts are known up front and outcomes are never unknown.
    pub(super) client: Option<GatewayClient>,
    pub(super) resolver: Option<Arc<SymbolResolver>>,
    /// Where orders go: the gateway, or a backtest's simulated exchange.
    pub(super) exchange: SharedExchange,
    /// The simulated clock of a backtest; `None` live (wall time).
    pub(super) sim_clock: Option<Arc<crate::script::ManualClock>>,
    pub(super) account: Account,
    pub(super) guard: RiskGuard,
    pub(super) tx: mpsc::Sender<Input>,
    pub(super) market: Option<MarketFeed>,
    pub(super) host: Option<Arc<Host>>,
    pub(super) book: Book,
    /// Every contract we know, by id.
    pub(super) contracts: FxHashMap<Arc<str>, Arc<ContractInfo>>,
    /// What strategies call contracts (`MNQ`, or a contract id), upper-cased.
    pub(super) symbols: HashMap<String, Arc<ContractInfo>>,
    pub(super) subscribed: HashSet<Arc<str>>,
    /// Contracts whose market trades are subscribed (for bars or for `trades = true`), and
    /// those whose depth is (`depth = true`): each subscribed once.
    pub(super) trades_subscribed: HashSet<Arc<str>>,
    pub(super) depth_subscribed: HashSet<Arc<str>>,
    /// Contracts closed with the gateway's close-position call while strategies held them: its
    /// fills are shared out to those strategies (see `Book::share_close`).
    pub(super) closing: HashSet<Arc<str>>,
    pub(super) resolving: HashSet<String>,
    /// Symbols whose resolution failed, and when to try again.
    pub(super) resolve_retry: HashMap<String, tokio::time::Instant>,
    /// The latest quote of each contract we know, as the feed merged it.
    pub(super) quotes: FxHashMap<Arc<str>, Quote>,
    pub(super) started: DateTime<Utc>,
    pub(super) started_instant: tokio::time::Instant,
    pub(super) status: watch::Sender<EngineStatus>,
    pub(super) metrics: Arc<Metrics>,
    /// Per strategy: the version and load error last seen, and quotes coalesced so far, so
    /// reloads and drops become metric increments.
    pub(super) seen_strategies: HashMap<String, (u64, Option<String>, u64)>,
    pub(super) market_state: ConnectionState,
    pub(super) user_state: ConnectionState,
    /// Strategies the host stopped running whose orders were already flattened.
    pub(super) removed: HashSet<String>,
    pub(super) reconcile_throttle: super::reconcile_rules::ReconcileThrottle,
    pub(super) not_placed_grace: Duration,
    /// The day's fills, per-strategy realised P&L and equity curve, for the dashboard.
    pub(super) day: super::day::Day,
    /// Bar series: backfill, live aggregation, `on_bar`.
    pub(super) bars: super::bar_state::Bars,
    /// What the engine tells the world (dashboard, notifications).
    pub(super) events: EventBus,
    /// Every fill, appended as it is attributed; `None` in tests that keep no state.
    pub(super) journal: Option<Journal>,
    /// Fills not attributed yet (their order's id unknown): journaled once attributed, or
    /// after a grace without a strategy, never twice.
    pub(super) pending_fills: PendingFills,
    /// The CME trading day's fills and P&L so far, for the summary at its close.
    pub(super) session: SessionTally,
    /// Each strategy's run state last seen, so changes become events.
    pub(super) seen_states: HashMap<String, crate::script::RunState>,
}

/// Market events handled per wake-up of the loop beyond the first.
const MARKET_BATCH: usize = 63;

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Option<GatewayClient>,
        exchange: SharedExchange,
        account: Account,
        guard: RiskGuard,
        tx: mpsc::Sender<Input>,
        market: Option<MarketFeed>,
        status: watch::Sender<EngineStatus>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let started = Utc::now();
        let run_id = format!("{:x}", started.timestamp() % 0xFF_FFFF);
        Self {
            resolver: client.clone().map(|c| Arc::new(SymbolResolver::new(c))),
            client,
            exchange,
            sim_clock: None,
            account,
            guard,
            tx,
            market,
            host: None,
            book: Book::new(run_id),
            contracts: FxHashMap::default(),
            symbols: HashMap::new(),
            subscribed: HashSet::new(),
            trades_subscribed: HashSet::new(),
            depth_subscribed: HashSet::new(),
            closing: HashSet::new(),
            resolving: HashSet::new(),
            resolve_retry: HashMap::new(),
            quotes: FxHashMap::default(),
            started,
            started_instant: tokio::time::Instant::now(),
            status,
            metrics,
            seen_strategies: HashMap::new(),
            market_state: ConnectionState::default(),
            user_state: ConnectionState::default(),
            removed: HashSet::new(),
            reconcile_throttle: Default::default(),
            not_placed_grace: super::reconcile_rules::NOT_PLACED_GRACE,
            day: super::day::Day::new(started),
            bars: Default::default(),
            events: EventBus::default(),
            journal: None,
            pending_fills: PendingFills::default(),
            session: SessionTally::new(crate::cme::trading_day(started)),
            seen_states: HashMap::new(),
        }
    }

    /// The account as it was at start: today's fills are counted, positions and working
    /// orders known (orders of an earlier run are still attributed by their customTag).
    pub fn seed(&mut self, orders: &[Order], positions: &[Position], trades: &[Trade]) {
        self.book.mark_trades_seen(trades);
        let owner: HashMap<i64, &str> = orders
            .iter()
            .filter_map(|o| Some((o.id, o.custom_tag.as_deref().and_then(strategy_of_tag)?)))
            .collect();
        self.day.seed(
            trades,
            |id| id.to_owned(),
            |order| owner.get(&order).map(|s| (*s).to_owned()),
        );
        self.journal_missed(orders, trades);
        for t in trades.iter().filter(|t| !t.voided) {
            let cost = t.fees + t.commissions.unwrap_or(0.0);
            self.session
                .add("", t.profit_and_loss.unwrap_or(0.0) - cost, cost);
        }
        self.book.replace_positions(positions);
        for o in orders.iter().filter(|o| !o.status.is_terminal()) {
            if let Some(s) = o.custom_tag.as_deref().and_then(strategy_of_tag) {
                tracing::info!("working order {} from an earlier run of strategy {s}", o.id);
            }
            self.book.apply_order(o);
        }
        for p in positions {
            self.ensure_contract(&p.contract_id);
        }
    }

    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Input>,
        mut market_rx: MarketEvents,
        mut user_rx: mpsc::Receiver<UserEvent>,
        mut market_state: watch::Receiver<ConnectionState>,
        mut user_state: watch::Receiver<ConnectionState>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                input = rx.recv() => match input {
                    Some(Input::HostStopped(statuses, reply)) => {
                        let _ = reply.send(statuses);
                        return;
                    }
                    Some(input) => {
                        let structural = !matches!(input, Input::Bot { .. });
                        self.on_input(input);
                        if structural {
                            self.publish();
                        }
                    }
                    None => return,
                },
                Some(event) = user_rx.recv() => self.on_user(event),
                Some(event) = market_rx.recv() => {
                    self.on_market(event);
                    // What else is already queued, without a trip through the select (its
                    // six futures cost more than a quote does); bounded so a `bot` call
                    // waits for at most this many quotes.
                    for _ in 0..MARKET_BATCH {
                        let Some(event) = market_rx.try_recv() else { break };
                        self.on_market(event);
                    }
                }
                Ok(()) = market_state.changed() => {
                    let state = market_state.borrow_and_update().clone();
                    self.on_market_state(&state);
                    self.publish();
                }
                Ok(()) = user_state.changed() => {
                    let state = user_state.borrow_and_update().clone();
                    self.on_user_state(&state);
                    self.publish();
                }
                _ = tick.tick() => {
                    self.on_tick();
                    self.publish();
                }
            }
        }
    }

    pub(super) fn on_input(&mut self, input: Input) {
        match input {
            Input::Bot {
                strategy,
                call,
                reply,
            } => {
                let answer = self.on_bot_call(&strategy, call);
                let _ = reply.send(answer);
            }
            Input::HostReady(host) => {
                for symbol in host.symbols() {
                    self.resolve(&symbol);
                }
                self.host = Some(host);
            }
            Input::Resolved(found) => {
                for c in found {
                    let c = Arc::new(c);
                    self.symbols
                        .insert(c.symbol.to_ascii_uppercase(), c.clone());
                    self.symbols.insert(c.id.to_ascii_uppercase(), c.clone());
                    let known = self
                        .contracts
                        .entry(c.id.clone())
                        .or_insert_with(|| c.clone());
                    // Quotes carry the name the contract was first known by, as routing did.
                    let symbol = known.symbol.clone();
                    if self.subscribed.insert(c.id.clone())
                        && let Some(market) = self.market.clone()
                    {
                        let id = c.id.to_string();
                        tokio::spawn(async move {
                            if let Err(e) = market.subscribe_quotes(&id, symbol).await {
                                tracing::error!("subscribing to quotes for {id}: {e}");
                            }
                        });
                    }
                }
            }
            Input::Placed { local_id, result } => self.on_placed(local_id, result),
            Input::PlaceLookedUp(lookup) => self.on_place_looked_up(lookup),
            Input::Mutated { what, result } => self.on_mutated(what, result),
            Input::Snapshot {
                orders,
                positions,
                trades,
            } => self.on_snapshot(orders, positions, trades),
            Input::Halt(reason) => self.halt(&reason),
            Input::Resume => self.resume(),
            Input::FlattenAll => {
                if let Err(e) = self.flatten_all("operator") {
                    tracing::warn!("flatten all (operator): {}", e.reason);
                }
            }
            Input::Shutdown(reply) => {
                self.journal_unattributed(Duration::ZERO);
                let tx = self.tx.clone();
                let host = self.host.take();
                // The host stops on a blocking thread while this loop keeps answering its
                // strategies' last `bot.*` calls from `on_stop`.
                tokio::task::spawn_blocking(move || {
                    let statuses: Vec<StrategyStatus> =
                        host.map(|h| h.shutdown()).unwrap_or_default();
                    let _ = tx.blocking_send(Input::HostStopped(statuses, reply));
                });
            }
            Input::ResolveFailed(symbol) => self.on_resolve_failed(&symbol),
            Input::Backfilled {
                contract,
                timeframe,
                epoch,
                result,
            } => self.on_backfilled(&contract, timeframe, epoch, result),
            // `run` returns on it before it gets here.
            Input::HostStopped(..) => {}
        }
    }

    /// Now on the engine clock: the simulated one in a backtest, else wall time.
    pub(super) fn now_utc(&self) -> DateTime<Utc> {
        match &self.sim_clock {
            Some(c) => DateTime::from_timestamp_millis(crate::script::Clock::now_ms(&**c))
                .unwrap_or_default(),
            None => Utc::now(),
        }
    }

    /// [`Self::now_utc`] in ms since the Unix epoch.
    pub(super) fn now_ms(&self) -> i64 {
        self.now_utc().timestamp_millis()
    }

    /// The instant the risk guard's order rate is judged at: on a simulated clock, the
    /// loop's start plus simulated time elapsed, so a backtest's refusals do not depend on
    /// how fast the machine runs it.
    pub(super) fn now_instant(&self) -> tokio::time::Instant {
        match &self.sim_clock {
            Some(c) => {
                let ms = crate::script::Clock::now_ms(&**c) - self.started.timestamp_millis();
                self.started_instant + Duration::from_millis(ms.max(0) as u64)
            }
            None => tokio::time::Instant::now(),
        }
    }

    pub(super) fn send(&self, strategy: &str, event: Event) {
        if let Some(host) = &self.host {
            host.send(strategy, event);
        }
    }

    pub(super) fn dispatch(&self, event: Event) -> usize {
        self.host.as_ref().map_or(0, |host| host.dispatch(event))
    }

    // ---- market and user events -------------------------------------------------------

    pub(super) fn on_market(&mut self, event: MarketEvent) {
        match event {
            MarketEvent::Quote(q) => {
                self.metrics.quotes_received.inc();
                // Merged once, in the feed: stored and forwarded as it is.
                if !self.contracts.contains_key(&q.contract) {
                    return;
                }
                let queued = self.dispatch(Event::Quote(q.clone()));
                self.metrics.quotes_delivered.inc_by(queued as u64);
                self.bars_on_quote(&q);
                match self.quotes.get_mut(&q.contract) {
                    Some(last) => *last = q,
                    None => {
                        self.quotes.insert(q.contract.clone(), q);
                    }
                }
            }
            MarketEvent::Stale {
                contract_id,
                silent_for,
            } => {
                tracing::warn!("no quote for {contract_id} in {silent_for:?}: feed stale");
                self.dispatch(Event::Feed(FeedStatus::Stale));
            }
            MarketEvent::Resumed { contract_id } => {
                tracing::info!("quotes for {contract_id} resumed");
                self.dispatch(Event::Feed(FeedStatus::Live));
            }
            MarketEvent::Trades(trades) => {
                // Every print, one event each and in the feed's order: the mailbox keeps
                // events in order and never coalesces them (`on_trade`, `trades = true`).
                for t in &trades {
                    if self.contracts.contains_key(&t.contract) {
                        self.dispatch(Event::Trade(t.clone()));
                    }
                }
                self.bars_on_trades(&trades);
            }
            MarketEvent::Depth(d) => {
                if self.contracts.contains_key(&d.contract) {
                    self.dispatch(Event::Depth(d));
                }
            }
        }
    }

    pub(super) fn on_market_state(&mut self, state: &ConnectionState) {
        let was_live = self.market_state.is_live();
        self.market_state = state.clone();
        match (was_live, state.is_live()) {
            (false, true) => {
                tracing::info!("market hub live");
                self.bars_reset();
                self.events.send(EngineEvent::FeedUp { hub: "market" });
                self.dispatch(Event::Feed(FeedStatus::Live));
            }
            (true, false) => {
                self.bars_reset();
                self.metrics.reconnect("market");
                tracing::warn!("market hub {}", state.label());
                self.events.send(EngineEvent::FeedDown {
                    hub: "market",
                    state: state.label().to_string(),
                });
                self.dispatch(Event::Feed(FeedStatus::Reconnecting));
            }
            _ => {}
        }
    }

    // ---- risk -----------------------------------------------------------------------------

    pub(super) fn open_pnl(&self) -> f64 {
        self.book
            .positions()
            .filter_map(|p| {
                let c = self.contracts.get(p.contract_id.as_str())?;
                let mark = self.quotes.get(&c.id)?.mark()?;
                Some((mark - p.average_price) * f64::from(p.net_size()) * c.point_value())
            })
            .sum()
    }

    /// What strategies call a contract, or its id when it is not known.
    pub(super) fn symbol_of(&self, contract_id: &str) -> String {
        self.contracts
            .get(contract_id)
            .map_or_else(|| contract_id.to_owned(), |c| c.symbol.to_string())
    }

    pub(super) fn on_tick(&mut self) {
        let now = self.now_utc();
        self.day.roll(now);
        self.day
            .sample(now, self.guard.realized_pnl() + self.open_pnl(), false);
        self.resolve_declared();
        self.sync_market_streams();
        self.sync_bars();
        self.bars_on_tick();
        self.flatten_removed();
        self.reconcile_if_due();
        self.resend_leg_cancels(false);
        self.journal_unattributed(UNATTRIBUTED_JOURNAL_GRACE);
        self.close_session_if_due();
        if self.guard.halted().is_none() && self.guard.loss_limit_reached(self.open_pnl()) {
            let reason = format!(
                "daily loss limit {} reached",
                crate::money::Money(self.guard.limits().daily_loss_limit)
            );
            self.halt(&reason);
        }
    }

    /// Lifts a halt: new orders are checked by the guard again.
    pub(super) fn resume(&mut self) {
        let was = self.guard.halted().map(str::to_string);
        if let Some(why) = &was {
            tracing::warn!("trading resumed by the operator (was halted: {why})");
        }
        self.events.send(EngineEvent::Resumed { was });
        if let Err(e) = self.guard.resume() {
            tracing::error!("saving the resume: {e}");
        }
    }

    /// The kill switch: refuses new orders, cancels every working order on the account and
    /// closes every position.
    pub(super) fn halt(&mut self, reason: &str) {
        self.metrics.halts.inc();
        self.events.send(EngineEvent::Halted {
            reason: reason.to_string(),
        });
        if let Err(e) = self.guard.halt(reason) {
            tracing::error!("saving the halt: {e}");
        }
        let mut ids = self.book.working_broker_ids();
        // Legs included; marked so a later report of them does not cancel them twice.
        ids.extend(self.book.take_legs_to_cancel(None, None, None));
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            calls::spawn_cancel(self.exchange.clone(), self.tx.clone(), self.account.id, id);
        }
        let held: Vec<String> = self
            .book
            .positions()
            .map(|p| p.contract_id.clone())
            .collect();
        for contract in held {
            self.close_account_position(contract);
        }
    }
}
