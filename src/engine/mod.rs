//! The engine: one loop that owns the trading state (quotes, orders, positions, the risk guard),
//! feeds every strategy its events, and turns what the scripts ask for into orders. I/O tasks
//! (hubs, REST calls, the strategy host) talk to it over channels only.
//!
//! Data path: market feed (decoded and merged in the hub's connection task) → bounded queue →
//! loop → strategy mailbox → `bot.buy` → [`EngineBroker`] (a [`BotCall`](crate::script::BotCall)) → loop →
//! risk guard → a spawned REST call → its result back to the loop → user hub confirms.
//!
//! Order calls go through an `Exchange`: the REST client live, a simulated exchange in a
//! backtest, where `SteppedEngine` steps the same core event by event on a simulated clock.

mod bar_state;
mod bars;
mod book;
mod bracket;
mod broker;
mod contracts;
mod core;
mod day;
pub mod events;
mod flatten;
mod gateway_calls;
mod input;
mod leg_cancels;
mod lines;
mod pending_fills;
mod publish;
mod reconcile;
mod reconcile_rules;
mod record;
mod requests;
mod status;
mod stepped;
mod user_events;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// What the HTTP server needs of the strategies (webhook delivery, status), re-exported so
/// that it reaches them through the engine: `http` never imports `script`.
pub use crate::script::{
    Host, RunState, StrategyStatus, WebhookBody, WebhookOutcome, WebhookReply, WebhookRequest,
};
pub use book::{Book, ContractInfo, LocalOrder, OrderState};
pub use broker::EngineBroker;
pub use events::{
    EVENT_CAPACITY, EngineEvent, EventBus, FillRecord, SessionSummary, StrategyTally,
};
pub use reconcile_rules::NOT_PLACED_GRACE;
pub use status::{
    EngineStatus, EquityPoint, FillView, OrderStatusView, PositionStatus, QuoteSeen, Snapshot,
    StrategyPnl,
};
pub(crate) use stepped::{EngineInput, Exchange, Mutation, SteppedEngine};

use crate::feed::{MarketFeed, MarketFeedConfig, SessionTokens, UserFeed, UserFeedConfig};
use crate::gateway::GatewayClient;
use crate::gateway::wire::{Account, Timestamp};
use crate::metrics::Metrics;
use crate::risk::RiskGuard;
use crate::script::{HostConfig, SystemClock};
use input::{INPUT_CAPACITY, Input, send_from_sync};

/// What the engine needs to start.
pub struct EngineParams {
    pub client: GatewayClient,
    /// The account to trade; never another.
    pub account: Account,
    pub guard: RiskGuard,
    /// The market feed's settings; the engine points its queue counters at `metrics`.
    pub market_hub: MarketFeedConfig,
    pub user_hub_url: String,
    pub host: HostConfig,
    /// Watch the strategies directory for saves.
    pub watch: bool,
    pub metrics: Arc<Metrics>,
    /// How long after an unknown place outcome a lookup that finds nothing may conclude "not
    /// placed" (see [`NOT_PLACED_GRACE`], the default).
    pub not_placed_grace: Duration,
    /// Where the engine announces fills, halts, strategy trouble, feed state and the session's
    /// close; subscribe before starting to miss nothing.
    pub events: EventBus,
    /// The trade journal's directory (`STATE_DIR/<gateway>-<account>/journal`); `None` keeps none.
    pub journal_dir: Option<std::path::PathBuf>,
}

/// Pulls the kill switch of a running engine.
#[derive(Clone)]
pub struct Halter(mpsc::Sender<Input>);

impl Halter {
    /// # Errors
    /// When the engine has stopped.
    pub fn halt(&self, reason: &str) -> Result<(), String> {
        send_from_sync(&self.0, Input::Halt(reason.to_string()))
    }

    /// Lifts a halt (an operator's decision over HTTP).
    ///
    /// # Errors
    /// When the engine has stopped.
    pub fn resume(&self) -> Result<(), String> {
        send_from_sync(&self.0, Input::Resume)
    }

    /// Cancels every working order and closes every position, without halting (strategies
    /// keep running and may trade again).
    ///
    /// # Errors
    /// When the engine has stopped.
    pub fn flatten_all(&self) -> Result<(), String> {
        send_from_sync(&self.0, Input::FlattenAll)
    }
}

impl Halter {
    /// The kill switch of a stepped engine (a replay's operator): applied at its next settle.
    pub(crate) fn of_stepped(engine: &SteppedEngine) -> Self {
        Halter(engine.sender())
    }
}

/// The running engine.
pub struct Engine {
    tx: mpsc::Sender<Input>,
    /// Shared with the HTTP server for webhooks.
    host: Option<Arc<Host>>,
    status: watch::Receiver<EngineStatus>,
    events: EventBus,
    task: JoinHandle<()>,
    market: MarketFeed,
    user: UserFeed,
}

impl Engine {
    /// Connects the hubs, reads the account's orders, positions and today's fills, starts the
    /// strategies, and runs the loop.
    ///
    /// # Errors
    /// When the initial REST snapshot fails or the strategies directory cannot be read.
    pub async fn start(params: EngineParams) -> anyhow::Result<Engine> {
        let EngineParams {
            client,
            account,
            mut guard,
            mut market_hub,
            user_hub_url,
            host,
            watch,
            metrics,
            not_placed_grace,
            events,
            journal_dir,
        } = params;
        let account_id = account.id;
        let session = Arc::clone(client.session());

        let day_start = crate::cme::trading_day_start(chrono::Utc::now());
        let (orders, positions, trades) = tokio::try_join!(
            client.search_orders(account_id, Timestamp::from(day_start), None),
            client.open_positions(account_id),
            client.search_trades(account_id, Timestamp::from(day_start), None),
        )
        .context("reading the account's orders, positions and today's fills")?;
        let realized: f64 = trades
            .iter()
            .filter(|t| !t.voided)
            .map(|t| t.profit_and_loss.unwrap_or(0.0) - t.fees - t.commissions.unwrap_or(0.0))
            .sum();
        // The gateway's fills are the truth, but a simulator restarted beside a kept state
        // directory has none: take the worse of the two so a restart never forgets a loss.
        let realized = realized.min(guard.realized_pnl()) + 0.0;
        guard.set_realized(realized, chrono::Utc::now())?;
        tracing::info!(
            "account {account_id}: {} open position(s), {} order(s) and {} fill(s) today, realised P&L {}",
            positions.len(),
            orders.len(),
            trades.len(),
            crate::money::Money(realized)
        );

        market_hub.counters.conflated = metrics.feed_quotes_conflated.clone();
        market_hub.counters.dropped = metrics.feed_events_dropped.clone();
        let (market, market_rx) =
            MarketFeed::spawn(market_hub, SessionTokens::new(session.clone()));
        let mut user_feed = UserFeedConfig::new(user_hub_url);
        user_feed.waits = metrics.feed_user_waits.clone();
        let (user, user_rx) = UserFeed::spawn(user_feed, SessionTokens::new(session));
        user.subscribe_accounts()
            .await
            .context("subscribing to the account")?;
        user.subscribe_orders(account_id)
            .await
            .context("subscribing to orders")?;
        user.subscribe_positions(account_id)
            .await
            .context("subscribing to positions")?;
        user.subscribe_trades(account_id)
            .await
            .context("subscribing to trades")?;

        let (tx, rx) = mpsc::channel(INPUT_CAPACITY);
        let (status_tx, status) = watch::channel(EngineStatus::default());
        let mut core = core::Core::new(
            Some(client.clone()),
            Arc::new(client),
            account,
            guard,
            tx.clone(),
            Some(market.clone()),
            status_tx,
            metrics,
        );
        core.not_placed_grace = not_placed_grace;
        core.bars = bar_state::Bars::new(host.bars.clone());
        core.events = events.clone();
        core.journal = journal_dir.map(crate::journal::Journal::new);
        core.seed(&orders, &positions, &trades);
        if let Some(why) = core.guard.halted() {
            // Nobody may be watching the log at a restart: the halt is news again.
            events.send(EngineEvent::Halted {
                reason: format!("{why} (carried over from earlier today)"),
            });
        }
        let task = tokio::spawn(core.run(rx, market_rx, user_rx, market.state(), user.state()));

        let broker = Arc::new(EngineBroker::new(tx.clone()));
        let started = tokio::task::spawn_blocking(move || -> anyhow::Result<Host> {
            let host = Host::start(host, broker, Arc::new(SystemClock))?;
            if watch {
                host.watch()?;
            }
            Ok(host)
        })
        .await
        .context("the strategy host panicked while starting")??;
        for s in started.status() {
            match &s.load_error {
                Some(e) => tracing::error!("strategy {} did not load: {e}", s.name),
                None => tracing::info!("strategy {} loaded (version {})", s.name, s.generation),
            }
        }
        let host = Arc::new(started);
        let _ = tx.send(Input::HostReady(Arc::clone(&host))).await;
        Ok(Engine {
            tx,
            host: Some(host),
            status,
            events,
            task,
            market,
            user,
        })
    }

    /// The strategy host, for webhooks and strategy status.
    pub fn host(&self) -> Arc<Host> {
        Arc::clone(self.host.as_ref().expect("the host lives until shutdown"))
    }

    /// A handle that can pull the kill switch from elsewhere (the HTTP server).
    pub fn halter(&self) -> Halter {
        Halter(self.tx.clone())
    }

    /// The engine's published state (for `/readyz`, `/status`).
    pub fn status(&self) -> watch::Receiver<EngineStatus> {
        self.status.clone()
    }

    /// The engine's events from now on (see [`EngineEvent`]); a subscriber that falls behind
    /// by more than [`EVENT_CAPACITY`] loses the oldest and is told how many.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// Waits until the engine is ready to trade ([`EngineStatus::readiness`]).
    ///
    /// # Errors
    /// The reason it is still not ready after `within`.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), String> {
        let mut rx = self.status.clone();
        match tokio::time::timeout(within, rx.wait_for(|s| s.readiness().is_ok())).await {
            Ok(Ok(_)) => Ok(()),
            _ => self
                .status
                .borrow()
                .readiness()
                .and(Err("the engine stopped".into())),
        }
    }

    /// The kill switch: no new orders, working orders cancelled, positions flattened.
    pub fn halt(&self, reason: &str) {
        let _ = send_from_sync(&self.tx, Input::Halt(reason.to_string()));
    }

    /// Stops the strategies (`on_stop("shutdown")`, state saved) while the loop still answers
    /// them, then the loop and the hubs.
    pub async fn shutdown(mut self) -> Vec<StrategyStatus> {
        drop(self.host.take());
        let (reply, done) = oneshot::channel();
        let statuses = if self.tx.send(Input::Shutdown(reply)).await.is_ok() {
            tokio::time::timeout(Duration::from_secs(30), done)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        self.task.abort();
        self.market.close().await;
        self.user.connection().close().await;
        statuses
    }
}
