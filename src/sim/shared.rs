//! What the simulator's server tasks share: the market and accounts behind one lock (a fill is
//! published in order with the quote that caused it), the broadcast channels, tokens, faults,
//! per-user REST budgets and the counters tests read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use tokio::sync::{broadcast, watch};

use super::auth::TokenIssuer;
use super::config::{ACCOUNT_ID, INACTIVE_ACCOUNT_ID, SimConfig};
use super::events::{QuoteEvent, UserEvent};
use super::faults::Faults;
use super::hubs::Hubs;
use super::market::Market;
use super::orders::Engine;
use crate::gateway::Endpoint;
use crate::gateway::budget::RestBudget;
use crate::gateway::wire::Account;
use crate::secret::Secret;

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
    pub(super) frozen: AtomicBool,
    pub hubs: Hubs,
    /// Quote records the market hub wrote to its clients, all connections together.
    pub quotes_sent: Arc<AtomicU64>,
    /// Hub clients dropped for falling too far behind the event stream, and the events they
    /// had missed by then (see `hub::serve`).
    pub lagging_dropped: AtomicU64,
    pub lagging_skipped: AtomicU64,
}

impl Shared {
    pub(super) fn new(config: SimConfig) -> Self {
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
            hubs: Hubs::default(),
            quotes_sent: Arc::default(),
            lagging_dropped: AtomicU64::new(0),
            lagging_skipped: AtomicU64::new(0),
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

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
    pub(super) fn step_quotes(&self, n: u64) {
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

    pub(super) fn step_one(
        &self,
        st: &mut State,
        i: usize,
        now: chrono::DateTime<Utc>,
        price: Option<f64>,
    ) {
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
