//! The built-in ProjectX gateway simulator: REST and the SignalR hubs (`/hubs/market`,
//! `/hubs/user`) on one loopback port, its configuration, and the handle tests and the default
//! run use to start, steer and stop it.
//!
//! Pieces:
//! - `config` ([`SimConfig`], the accounts), `shared` (what the server tasks share: the market
//!   and accounts behind one lock, channels, tokens, budgets, [`Stats`]);
//! - [`contracts`] (the catalog), [`market`] (price walk, bars), [`orders`] (the pure matching
//!   engine), `ledger` (positions and trades), `rules` (order validation and fill rules);
//! - [`auth`] (JWTs), [`faults`] (fault switches), [`fault_spec`] (their JSON vocabulary),
//!   [`control`] (`/sim/faults`, the switches from outside), [`events`] (what the broadcast
//!   channels carry);
//! - `http` (the hyper server and request pipeline), `api` (the REST endpoint handlers),
//!   `reply` (the responses and header helpers both use);
//! - `hub_upgrade` (hub token check, negotiate, WebSocket upgrade), `hubs` (negotiated tokens
//!   and the stop signal), `hub` (the SignalR session: handshake, pings, calls, hub faults),
//!   `market_hub` and `user_hub` (what each hub answers and sends).

mod api;
pub mod auth;
mod config;
pub mod contracts;
pub mod control;
pub mod events;
pub mod fault_spec;
pub mod faults;
mod http;
mod hub;
mod hub_upgrade;
mod hubs;
mod ledger;
pub mod market;
mod market_hub;
pub mod orders;
mod reply;
mod rules;
mod shared;
mod user_hub;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use self::config::{ACCOUNT_ID, INACTIVE_ACCOUNT_ID, SimConfig};
use self::events::{QuoteEvent, UserEvent};
use self::faults::Faults;
use self::market::MarketView;
use self::shared::Shared;
pub use self::shared::Stats;
use crate::secret::Secret;

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
