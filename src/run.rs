//! `moontick run`, the main job: the gateway session (or the embedded simulator), the engine
//! with its strategies, and the HTTP server, started in that order and stopped in reverse.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;

use crate::commands::live_client;
use crate::config::Config;
use crate::engine::{Engine, EngineParams};
use crate::feed::MarketFeedConfig;
use crate::gateway::wire::Account;
use crate::gateway::{self, Credentials, TransportOptions};
use crate::http::{self, App, EngineOps, HttpConfig};
use crate::metrics::Metrics;
use crate::risk::RiskGuard;
use crate::script::{HostConfig, RunState};
use crate::sim::{SimConfig, Simulator};

/// Without credentials it starts the embedded simulator on loopback (saying so on its first
/// line) and trades against it. Runs until Ctrl-C or SIGTERM, then stops taking webhooks,
/// stops the strategies (`on_stop("shutdown")`, state saved) and returns.
///
/// # Errors
/// A missing `WEBHOOK_SECRET` beyond loopback, a failed login, live credentials without a valid
/// `PROJECT_X_ACCOUNT_ID`, an unreadable risk state, or a port that cannot be bound.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    // Before anything starts: a missing secret is a configuration error, reported as one.
    config.check_http()?;
    let (client, sim, market_url, user_url) = if config.has_gateway_credentials() {
        let client = live_client(config)?;
        client.session().ensure_valid_token().await.context(
            "login failed: check PROJECT_X_USERNAME / PROJECT_X_API_KEY (or JWT_TOKEN) and PROJECT_X_API_URL",
        )?;
        (
            client,
            None,
            config.market_hub_url.clone(),
            config.user_hub_url.clone(),
        )
    } else {
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
        let (market, user) = (sim.market_hub_url(), sim.user_hub_url());
        (client, Some(sim), market, user)
    };
    let refresher = client.session().spawn_refresher();
    let accounts = client.accounts(true).await.context("listing accounts")?;
    let account = select_account(config.account_id, &accounts, sim.is_some())?;
    tracing::info!(account = account.id, name = %account.name, balance = account.balance, "trading account");

    let metrics = Arc::new(Metrics::new());
    let guard = RiskGuard::open(config.risk.clone(), Some(&config.state_dir), Utc::now())?;
    let mut market_hub = MarketFeedConfig::new(market_url);
    market_hub.quote_event = config.quote_event.clone();
    let mut host = HostConfig::new(&config.strategies_dir);
    host.state_dir = Some(config.state_dir.clone());
    let rt = &config.strategy_runtime;
    (host.quote_backlog, host.quote_backlog_age) = (rt.quote_backlog, rt.quote_backlog_age);
    (host.watchdog, host.shutdown_timeout) = (rt.watchdog, rt.shutdown_timeout);
    let session = Arc::clone(client.session());
    let account_id = account.id;
    let engine = Engine::start(EngineParams {
        client,
        account,
        guard,
        market_hub,
        user_hub_url: user_url,
        host,
        watch: true,
        metrics: Arc::clone(&metrics),
    })
    .await?;

    let ops = Arc::new(EngineOps::new(&engine, session, account_id, sim.is_some()));
    let app = Arc::new(App::new(
        HttpConfig::from_config(config),
        engine.host(),
        ops,
        metrics,
    ));
    let addr = SocketAddr::new(config.bind_addr, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the HTTP server to {addr} (PORT / BIND_ADDR)"))?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "HTTP server listening");
    let (stop_http, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(listener, app, async {
        let _ = stopped.await;
    }));

    shutdown_signal().await;
    tracing::info!("shutting down: no new webhooks; draining requests in flight");
    let _ = stop_http.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server failed"),
        Err(e) => tracing::warn!(error = %e, "HTTP server task failed"),
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
        tracing::info!("{} strategies stopped, state saved", statuses.len());
    } else {
        println!(
            "moontick: strategies that did not stop (their last periodic state save is kept): {}",
            not_stopped.join(", ")
        );
    }
    refresher.abort();
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(())
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
                    "\n  {} {:?} balance {:.2}{}",
                    a.id,
                    a.name,
                    a.balance,
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

/// Resolves on Ctrl-C or SIGTERM (what Docker and Railway send).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
