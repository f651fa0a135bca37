//! The built-in ProjectX gateway simulator: REST and the SignalR hubs (`/hubs/market`,
//! `/hubs/user`) on one loopback port, its configuration, and the handle tests and the default
//! run use to start, steer and stop it.
//!
//! Pieces:
//! - [`contracts`] (the catalog), [`market`] (price walk, bars), [`orders`] (the pure matching
//!   engine), `ledger` (positions and trades), `rules` (order validation and fill rules);
//! - [`auth`] (JWTs), [`faults`] (fault switches), [`control`] (`/sim/faults`, the switches
//!   from outside), [`events`] (what the broadcast channels carry);
//! - `http` (the hyper server and request pipeline), `api` (the REST endpoint handlers),
//!   `reply` (the responses and header helpers both use);
//! - `hub_upgrade` (hub token check, negotiate, WebSocket upgrade), `hub` (the SignalR session:
//!   handshake, pings, calls, hub faults), `market_hub` and `user_hub` (what each hub answers
//!   and sends).

mod api;
pub mod auth;
pub mod contracts;
pub mod control;
pub mod events;
pub mod faults;
mod http;
mod hub;
mod hub_upgrade;
mod ledger;
pub mod market;
mod market_hub;
pub mod orders;
mod reply;
mod rules;
mod user_hub;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use self::auth::TokenIssuer;
use self::events::{QuoteEvent, UserEvent};
use self::faults::Faults;
use self::market::{Market, MarketView};
use self::orders::Engine;
use crate::gateway::budget::RestBudget;
use crate::gateway::wire::Account;
use crate::gateway::{Clock, Endpoint, WallClock};
use crate::secret::Secret;

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    pub user: String,
    pub api_key: Secret,
    /// Lifetime of issued tokens (the real gateway's is 24 h; tests use seconds).
    pub token_lifetime: Duration,
    /// Quotes per second per active contract; 0 means quotes move only through
    /// [`Simulator::set_price`] and [`Simulator::step_quotes`].
    pub quote_rate: f64,
    /// Seeds the price walks and the history before the start.
    pub seed: u64,
    /// The account's bracket mode: `false` is the gateway's default "Position Brackets" mode,
    /// where brackets on place are refused.
    pub auto_oco_brackets: bool,
    /// Answer 429 beyond the documented budget (200 / 60 s, bars 50 / 30 s) per user.
    pub rate_limits: bool,
    pub starting_balance: f64,
    /// When tokens are issued and expire (tests share a manual clock with the client).
    pub clock: Arc<dyn Clock>,
    /// The hubs ping each client this often (ASP.NET's KeepAliveInterval, 15 s).
    pub hub_keep_alive: Duration,
    /// A hub client that sends nothing for this long is disconnected (ASP.NET's
    /// ClientTimeoutInterval, 30 s).
    pub hub_client_timeout: Duration,
    /// Faults switched on at start (`moontick sim --fault`), in order.
    pub faults: Vec<control::FaultSpec>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            user: "demo".into(),
            api_key: Secret::new("demo"),
            token_lifetime: Duration::from_secs(24 * 3600),
            quote_rate: 4.0,
            seed: 42,
            auto_oco_brackets: true,
            rate_limits: true,
            starting_balance: 50_000.0,
            hub_keep_alive: Duration::from_secs(15),
            hub_client_timeout: Duration::from_secs(30),
            clock: Arc::new(WallClock),
            faults: Vec::new(),
        }
    }
}

/// The tradable practice account.
pub const ACCOUNT_ID: i32 = 10_001;
/// An account that is neither tradable nor visible (filtered by `onlyActiveAccounts`).
pub const INACTIVE_ACCOUNT_ID: i32 = 10_002;

/// Counters of what clients did, for tests.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Requests that arrived per endpoint (faulted, refused and rate-limited ones included).
    pub calls: HashMap<Endpoint, u64>,
    /// Successful logins (tokens issued by `Auth/loginKey`).
    pub logins: u64,
    /// Successful `Auth/validate` calls (tokens refreshed).
    pub validates: u64,
    /// Requests answered 401 because of their token.
    pub unauthorized: u64,
    /// Requests answered 429 by the budget (not by a fault).
    pub rate_limited: u64,
    /// The bearer token of the most recent request that carried one.
    pub last_bearer: Option<Secret>,
    /// The token of every accepted hub upgrade, oldest first (a reconnect after a refresh shows
    /// the new one).
    pub hub_tokens: Vec<Secret>,
    /// Hub connections accepted (upgraded) since the start.
    pub hub_connects: u64,
    /// Hub connections open now.
    pub hub_open: u64,
    /// Hub upgrades and negotiations answered 401 because of their token.
    pub hub_unauthorized: u64,
    /// Successful `negotiate` requests.
    pub hub_negotiations: u64,
    /// When the latest `Order/place` request arrived (the tick-to-order benchmark's stop watch).
    pub last_place_at: Option<std::time::Instant>,
}

impl Stats {
    pub fn calls(&self, ep: Endpoint) -> u64 {
        self.calls.get(&ep).copied().unwrap_or(0)
    }
}

/// The market and the accounts, behind one lock so a fill and the quote that caused it are
/// published in order. Held only for in-memory work, never across an await.
pub(crate) struct State {
    pub market: Market,
    pub engine: Engine,
    events: Vec<UserEvent>,
}

impl State {
    /// Runs an engine operation with the market and an event buffer.
    pub fn engine<R>(
        &mut self,
        f: impl FnOnce(&mut Engine, &Market, &mut Vec<UserEvent>) -> R,
    ) -> R {
        f(&mut self.engine, &self.market, &mut self.events)
    }
}

/// Everything the server tasks share.
pub(crate) struct Shared {
    pub config: SimConfig,
    state: Mutex<State>,
    pub quotes: broadcast::Sender<QuoteEvent>,
    pub user: broadcast::Sender<UserEvent>,
    pub tokens: TokenIssuer,
    pub faults: Faults,
    pub stats: Mutex<Stats>,
    /// When each `Order/place` request arrives, for waiters that must not poll `stats`.
    pub place_arrivals: watch::Sender<Option<std::time::Instant>>,
    budgets: Mutex<HashMap<String, Arc<RestBudget>>>,
    frozen: AtomicBool,
    pub hubs: hub_upgrade::Hubs,
    /// Quote records the market hub wrote to its clients, all connections together.
    pub quotes_sent: Arc<AtomicU64>,
}

impl Shared {
    fn new(config: SimConfig) -> Self {
        let now = Utc::now();
        let account = |id, name: &str, balance, active| Account {
            id,
            name: name.into(),
            balance,
            can_trade: active,
            is_visible: active,
            simulated: true,
        };
        let accounts = vec![
            account(
                ACCOUNT_ID,
                "PRAC-V2-DEMO-10001",
                config.starting_balance,
                true,
            ),
            account(INACTIVE_ACCOUNT_ID, "PRAC-V2-DEMO-10002", 0.0, false),
        ];
        let state = State {
            market: Market::new(config.seed, now),
            engine: Engine::new(accounts, config.auto_oco_brackets),
            events: Vec::with_capacity(16),
        };
        let faults = Faults::default();
        Self {
            tokens: TokenIssuer::with_generation(
                config.token_lifetime,
                faults.token_generation.clone(),
                config.clock.clone(),
            ),
            config,
            state: Mutex::new(state),
            // Lagging quote readers lose old quotes (they are coalesced downstream anyway);
            // user events get a deeper buffer because they must not be dropped.
            quotes: broadcast::channel(4096).0,
            user: broadcast::channel(16_384).0,
            faults,
            stats: Mutex::new(Stats::default()),
            place_arrivals: watch::channel(None).0,
            budgets: Mutex::new(HashMap::new()),
            frozen: AtomicBool::new(false),
            hubs: hub_upgrade::Hubs::default(),
            quotes_sent: Arc::default(),
        }
    }

    /// Locks the state, runs `f`, and publishes the user events it produced (still under the
    /// lock, so subscribers see them in the order they happened).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        let r = f(&mut st);
        self.publish(&mut st);
        r
    }

    /// The current full quote of a quoting contract, for a new subscriber.
    pub fn quote_snapshot(&self, contract_id: &str) -> Option<QuoteEvent> {
        self.lock().market.snapshot(contract_id, Utc::now())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, st: &mut State) {
        for e in st.events.drain(..) {
            // No subscriber is not an error: nobody is listening yet.
            let _ = self.user.send(e);
        }
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn budget(&self, user: &str) -> Arc<RestBudget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        budgets
            .entry(user.to_string())
            .or_insert_with(|| Arc::new(RestBudget::documented()))
            .clone()
    }

    /// `n` steps of every active contract's walk, each followed by matching and a quote event.
    /// The lock is released every few steps so requests are not starved at high rates.
    fn step_quotes(&self, n: u64) {
        const CHUNK: u64 = 64;
        let mut done = 0;
        while done < n {
            let now = Utc::now();
            let mut st = self.lock();
            let quoting: Vec<usize> = st.market.quoting().collect();
            for _ in 0..CHUNK.min(n - done) {
                for &i in &quoting {
                    self.step_one(&mut st, i, now, None);
                }
            }
            done += CHUNK.min(n - done);
        }
    }

    fn step_one(&self, st: &mut State, i: usize, now: chrono::DateTime<Utc>, price: Option<f64>) {
        let q = match price {
            Some(p) => st.market.set_price(i, p, now),
            None => st.market.step(i, now),
        };
        let State {
            market,
            engine,
            events,
        } = st;
        engine.on_quote(&q.contract_id, market, now, events);
        let _ = self.quotes.send(q);
        self.publish(st);
    }
}

/// A running simulator. Dropping it stops the server too; [`Simulator::shutdown`] also waits.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `config.addr` and serves in spawned tasks (needs a Tokio runtime).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(config: SimConfig) -> io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        for fault in &shared.config.faults {
            fault.apply(&shared.faults);
        }
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(http::serve(listener, shared.clone(), stopped.clone())),
            tokio::spawn(run_quotes(shared.clone(), stopped)),
        ];
        tracing::info!(%addr, "simulator listening");
        Ok(Simulator {
            shared,
            addr,
            stop,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the REST base URL and the hubs' host.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes the hub connections, drains open REST connections (at most 2 s)
    /// and waits for the tasks.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.shared.hubs.stop();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats().clone()
    }

    /// Changes whenever an `Order/place` request arrives, carrying its arrival time.
    pub fn place_arrivals(&self) -> watch::Receiver<Option<std::time::Instant>> {
        self.shared.place_arrivals.subscribe()
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    pub fn account_id(&self) -> i32 {
        ACCOUNT_ID
    }

    /// The active (front-month) contract id of a ticker (`MNQ`, `MES`, `NQ`, `ES`).
    pub fn contract_id(&self, ticker: &str) -> Option<String> {
        let st = self.shared.lock();
        let spec = st
            .market
            .contracts()
            .iter()
            .find(|s| s.active && s.ticker.eq_ignore_ascii_case(ticker))?;
        Some(spec.id.to_string())
    }

    /// The expired contract (the quarter before the front month) of a ticker: absent from
    /// `Contract/search`, reachable by id, refused by `Order/place`.
    pub fn expired_contract_id(&self, ticker: &str) -> Option<String> {
        let st = self.shared.lock();
        let spec = st
            .market
            .contracts()
            .iter()
            .find(|s| !s.active && s.ticker.eq_ignore_ascii_case(ticker))?;
        Some(spec.id.to_string())
    }

    /// Every order of an account as the simulator holds it (bracket legs and suspended ones
    /// included), oldest first: the ground truth fault tests compare a strategy's ledger with.
    pub fn orders(&self, account_id: i32) -> Vec<crate::gateway::wire::Order> {
        self.shared
            .lock()
            .engine
            .orders(account_id)
            .cloned()
            .collect()
    }

    /// Moves a contract so its bid is `price` (snapped to the tick grid), its ask one tick above
    /// and its last trade at the bid; working orders react at once. Returns `false` for a
    /// contract that does not quote.
    pub fn set_price(&self, contract_id: &str, price: f64) -> bool {
        let mut st = self.shared.lock();
        let Some(i) = st
            .market
            .index_of(contract_id)
            .filter(|&i| st.market.contracts()[i].active)
        else {
            return false;
        };
        self.shared.step_one(&mut st, i, Utc::now(), Some(price));
        true
    }

    /// The current bid, ask and last of a contract.
    pub fn touch(&self, contract_id: &str) -> Option<market::Touch> {
        self.shared.lock().market.touch(contract_id)
    }

    /// Quote records the market hub has written to its clients since the start (also
    /// `GET /sim/stats`).
    pub fn quotes_sent(&self) -> u64 {
        self.shared.quotes_sent.load(Ordering::Relaxed)
    }

    /// Stops (or restarts) the background quote stream, so tests move the market alone.
    pub fn freeze_quotes(&self, frozen: bool) {
        self.shared.frozen.store(frozen, Ordering::SeqCst);
    }

    /// Runs `n` walk steps of every active contract now (deterministic given the seed).
    pub fn step_quotes(&self, n: u64) {
        self.shared.step_quotes(n);
    }

    /// A token for the configured user with a chosen lifetime (negative: already expired),
    /// without a login call: what a `JWT_TOKEN` from the environment looks like.
    pub fn mint_token(&self, lifetime: chrono::Duration) -> Secret {
        self.shared
            .tokens
            .issue_for(&self.shared.config.user, lifetime)
    }

    pub fn subscribe_quotes(&self) -> broadcast::Receiver<QuoteEvent> {
        self.shared.quotes.subscribe()
    }

    pub fn subscribe_user(&self) -> broadcast::Receiver<UserEvent> {
        self.shared.user.subscribe()
    }

    /// `ws://127.0.0.1:PORT/hubs/market`.
    pub fn market_hub_url(&self) -> String {
        format!("ws://{}/hubs/market", self.addr)
    }

    /// `ws://127.0.0.1:PORT/hubs/user`.
    pub fn user_hub_url(&self) -> String {
        format!("ws://{}/hubs/user", self.addr)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.shared.hubs.stop();
    }
}

/// The background quote stream: at low rates one step per period; at high rates (a benchmark
/// asks for up to 100,000/s) it wakes every millisecond and makes the steps that are due.
async fn run_quotes(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let rate = shared.config.quote_rate;
    if !(rate > 0.0 && rate.is_finite()) {
        return;
    }
    let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = tokio::time::Instant::now();
    let mut done: u64 = 0;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        // After a stall, catch up by at most one second's worth rather than bursting.
        let n = due.saturating_sub(done).min(rate.ceil() as u64);
        done = due;
        if n > 0 && !shared.frozen.load(Ordering::SeqCst) {
            shared.step_quotes(n);
        }
    }
}
