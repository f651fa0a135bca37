//! `moontick run`, the main job: the gateway session (or the embedded simulator), the engine
//! with its strategies, and the HTTP server, started in that order and stopped in reverse. The
//! caller binds the listener and decides when to stop (`main` on Ctrl-C/SIGTERM, tests on cue).

pub mod record;
pub mod state_dir;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;

use crate::commands::live_client;
use crate::config::Config;
use crate::engine::{Engine, EngineParams, EventBus};
use crate::feed::MarketFeedConfig;
use crate::feed::record::{RecordCounters, RecordError, Recorder, RecorderConfig};
use crate::gateway::wire::Account;
use crate::gateway::{self, Credentials, GatewayClient, TransportOptions};
use crate::http::{self, App, EngineOps, HttpConfig};
use crate::metrics::Metrics;
use crate::money::Money;
use crate::notify::{Notifier, NotifyOptions};
use crate::risk::RiskGuard;
use crate::script::{HostConfig, RunState};
use crate::sim::{SimConfig, Simulator};

/// The gateway `run` trades against: live, or the embedded simulator it started.
pub(crate) struct Gateway {
    pub(crate) client: GatewayClient,
    pub(crate) sim: Option<Simulator>,
    pub(crate) market_url: String,
    user_url: String,
    /// Names the state subdirectory ([`state_dir::SIMULATOR`] or the API host).
    label: String,
}

/// Runs the engine and serves HTTP on `listener` until `shutdown` resolves; then stops taking
/// webhooks, stops the strategies (`on_stop("shutdown")`, state saved) and returns. Without
/// credentials it starts the embedded simulator on loopback (saying so on its first line) and
/// trades against it.
///
/// `STATE_DIR` is locked for as long as this runs, and the state lives in
/// `STATE_DIR/<gateway>-<account>/`.
///
/// # Errors
/// A missing `WEBHOOK_SECRET` beyond loopback, a `STATE_DIR` that is in use or not writable, a
/// failed login, live credentials without a valid `PROJECT_X_ACCOUNT_ID`, or an unreadable
/// risk state.
pub async fn run(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    // Before anything starts: a missing secret is a configuration error, reported as one.
    config.check_http()?;
    let _lock = state_dir::lock(&config.state_dir)?;
    let gateway = connect(config).await?;
    // Stopped however `run` returns, an early error included.
    let _refresher = AbortOnDrop(gateway.client.session().spawn_refresher());
    let accounts = gateway
        .client
        .accounts(true)
        .await
        .context("listing accounts")?;
    let account = select_account(config.account_id, &accounts, gateway.sim.is_some())?;
    tracing::info!(account = account.id, name = %account.name, balance = %Money(account.balance), "trading account");
    let state = state_dir::account_dir(&config.state_dir, &gateway.label, account.id)?;
    warn_about_legacy_state(&config.state_dir, &state);

    let metrics = Arc::new(Metrics::new());
    let guard = RiskGuard::open(config.risk.clone(), Some(&state), Utc::now())?;
    if let Some(why) = guard.halted() {
        tracing::error!(
            "TRADING IS HALTED, carried over from earlier today: {why}. New orders are refused \
             until the next trading day (17:00 Chicago) or POST /resume"
        );
    }
    let mut market_hub = MarketFeedConfig::new(gateway.market_url.clone());
    market_hub.quote_event = config.quote_event.clone();
    let recorder = config.record_dir.as_ref().and_then(|dir| {
        start_recorder(config, dir, &metrics)
            .inspect_err(|e| {
                tracing::error!("recording is off: {e}. Trading goes on (RECORD_DIR= disables it)")
            })
            .ok()
    });
    market_hub.record = recorder.as_ref().map(Recorder::tap);
    let mut host = HostConfig::new(&config.strategies_dir);
    host.state_dir = Some(state.clone());
    let rt = &config.strategy_runtime;
    (host.quote_backlog, host.quote_backlog_age) = (rt.quote_backlog, rt.quote_backlog_age);
    (host.watchdog, host.shutdown_timeout) = (rt.watchdog, rt.shutdown_timeout);
    let session = Arc::clone(gateway.client.session());
    let account_id = account.id;
    let events = EventBus::default();
    // Subscribed before the engine starts, so a strategy that fails to load is announced too.
    let notifier = Notifier::start(
        &config.notify,
        NotifyOptions::default(),
        [&config.jwt_token, &config.api_key, &config.webhook_secret]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        events.subscribe(),
    )?;
    let journal_dir = state.join(crate::journal::DIR);
    let engine = Engine::start(EngineParams {
        client: gateway.client.clone(),
        account,
        guard,
        market_hub,
        user_hub_url: gateway.user_url.clone(),
        host,
        watch: true,
        metrics: Arc::clone(&metrics),
        not_placed_grace: config.not_placed_grace,
        events,
        journal_dir: Some(journal_dir.clone()),
    })
    .await?;

    let ops = Arc::new(EngineOps::new(
        &engine,
        session,
        account_id,
        gateway.sim.is_some(),
    ));
    let mut http_config = HttpConfig::from_config(config);
    http_config.journal_dir = Some(journal_dir);
    let app = Arc::new(App::new(http_config, engine.host(), ops, metrics));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP server listening");
    }
    let server = http::serve(listener, app, shutdown).await;
    tracing::info!("shutting down: no new webhooks taken");
    if let Err(e) = server {
        tracing::warn!(error = %e, "HTTP server failed");
    }
    // After the HTTP server, so webhooks answered 202 still run; the engine keeps answering
    // the strategies' `bot.*` calls while their `on_stop` runs.
    let statuses = engine.shutdown().await;
    let not_stopped: Vec<String> = statuses
        .iter()
        .filter(|s| s.state != RunState::Stopped)
        .map(|s| format!("{} ({})", s.name, s.state.as_str()))
        .collect();
    if not_stopped.is_empty() {
        tracing::info!(
            "{} strategies stopped, state saved in {}",
            statuses.len(),
            state.display()
        );
    } else {
        println!(
            "moontick: strategies that did not stop (their last periodic state save is kept): {}",
            not_stopped.join(", ")
        );
    }
    if let Some(recorder) = recorder {
        recorder.finish().await;
    }
    if let Some(notifier) = notifier {
        // A halt or a crash announced during shutdown still goes out, within bounds.
        notifier.shutdown(std::time::Duration::from_secs(5)).await;
    }
    if let Some(sim) = gateway.sim {
        sim.shutdown().await;
    }
    Ok(())
}

/// The recorder of `RECORD_DIR`, counting into `metrics`.
///
/// # Errors
/// The directory cannot be created or written.
pub(crate) fn start_recorder(
    config: &Config,
    dir: &Path,
    metrics: &Metrics,
) -> Result<Recorder, RecordError> {
    let mut rc = RecorderConfig::new(dir);
    rc.max_bytes = config.record_max_bytes;
    let counters = RecordCounters {
        written: metrics.record_written.clone(),
        dropped_queue: metrics.record_dropped("queue"),
        dropped_cap: metrics.record_dropped("cap"),
        dropped_io: metrics.record_dropped("io"),
    };
    let recorder = Recorder::start(rc, counters)?;
    tracing::info!(dir = %dir.display(), "recording market data (RECORD_DIR)");
    Ok(recorder)
}

/// Aborts a background task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Logs in to the live gateway, or starts the embedded simulator when there are no credentials.
pub(crate) async fn connect(config: &Config) -> anyhow::Result<Gateway> {
    if config.has_gateway_credentials() {
        let client = live_client(config)?;
        client.session().ensure_valid_token().await.context(
            "login failed: check PROJECT_X_USERNAME / PROJECT_X_API_KEY (or JWT_TOKEN) and PROJECT_X_API_URL",
        )?;
        return Ok(Gateway {
            client,
            sim: None,
            market_url: config.market_hub_url.clone(),
            user_url: config.user_hub_url.clone(),
            label: state_dir::gateway_label(&config.api_url),
        });
    }
    let sim = Simulator::start(SimConfig::default())
        .await
        .context("starting the simulator")?;
    println!(
        "moontick: no ProjectX credentials set; trading against the built-in simulator at {} \
         (no real orders). Set JWT_TOKEN or PROJECT_X_USERNAME + PROJECT_X_API_KEY to go live.",
        sim.url()
    );
    let demo = sim.config();
    let credentials = Credentials {
        username: demo.user.clone(),
        api_key: demo.api_key.clone(),
    };
    let client = gateway::connect(
        &sim.url(),
        None,
        Some(credentials),
        TransportOptions::default(),
    )?;
    Ok(Gateway {
        client,
        market_url: sim.market_hub_url(),
        user_url: sim.user_hub_url(),
        sim: Some(sim),
        label: state_dir::SIMULATOR.into(),
    })
}

/// State files of an earlier version, kept directly in `STATE_DIR`, are not read: whose
/// account they belong to is unknown, and a simulator halt must never stop a live run.
fn warn_about_legacy_state(root: &Path, now_in: &Path) {
    let legacy: Vec<PathBuf> = state_dir::legacy_files(root);
    if !legacy.is_empty() {
        let names: Vec<String> = legacy.iter().map(|p| p.display().to_string()).collect();
        tracing::warn!(
            "state files from an earlier version are in {} and are not read: {}. State is now \
             kept per gateway and account, in {}; move them there if they belong to this account",
            root.display(),
            names.join(", "),
            now_in.display()
        );
    }
}

/// The account to trade: the one `PROJECT_X_ACCOUNT_ID` names. Live trading never guesses; on
/// the simulator the first tradable account is taken.
///
/// # Errors
/// Live without an account id, or with one the user cannot trade; the message lists the
/// accounts the user can see.
pub fn select_account(
    wanted: Option<i32>,
    accounts: &[Account],
    simulated: bool,
) -> anyhow::Result<Account> {
    let list = || {
        accounts
            .iter()
            .map(|a| {
                format!(
                    "\n  {} {:?} balance {}{}",
                    a.id,
                    a.name,
                    Money(a.balance),
                    if a.can_trade { "" } else { " (cannot trade)" }
                )
            })
            .collect::<String>()
    };
    match wanted {
        Some(id) => match accounts.iter().find(|a| a.id == id) {
            Some(a) if a.can_trade => Ok(a.clone()),
            Some(_) => anyhow::bail!("account {id} cannot trade; your accounts:{}", list()),
            None => anyhow::bail!(
                "PROJECT_X_ACCOUNT_ID={id} is not one of your active accounts:{}",
                list()
            ),
        },
        None if simulated => accounts
            .iter()
            .find(|a| a.can_trade)
            .cloned()
            .context("the simulator lists no tradable account"),
        None => anyhow::bail!(
            "set PROJECT_X_ACCOUNT_ID to the account to trade (moontick never picks one for you):{}",
            list()
        ),
    }
}
