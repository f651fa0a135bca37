//! The one-shot commands behind the CLI (`token`, `quote`): each takes the typed config and
//! prints its result on stdout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use serde_json::json;

use crate::config::Config;
use crate::gateway::Session;
use crate::gateway::requests::RetrieveBarsRequest;
use crate::gateway::wire::Account;
use crate::gateway::wire::BarUnit;
use crate::gateway::{self, Credentials, GatewayClient, SymbolResolver, TransportOptions};
use crate::http::{self, App, CountingBroker, HttpConfig, Ops, OrderTally};
use crate::metrics::Metrics;
use crate::script::{Host, HostConfig, MemoryBroker, SystemClock};
use crate::signalr::{MarketEvent, MarketHub, MarketHubConfig};
use crate::sim::{SimConfig, Simulator};

fn live_client(config: &Config) -> anyhow::Result<GatewayClient> {
    anyhow::ensure!(
        config.has_gateway_credentials(),
        "no ProjectX credentials: set PROJECT_X_USERNAME and PROJECT_X_API_KEY (or JWT_TOKEN)"
    );
    let options = TransportOptions {
        timeout: config.rest_timeout,
        ..TransportOptions::default()
    };
    gateway::connect(
        &config.api_url,
        config.jwt_token.clone(),
        config.credentials(),
        options,
    )
}

/// `moontick run`: until the engine lands, it opens the session (the embedded simulator when
/// there are no credentials, saying so first), picks the account, keeps the token fresh, loads
/// the strategies (orders refused), serves HTTP on `BIND_ADDR:PORT`, and waits for Ctrl-C or
/// SIGTERM, then drains HTTP, stops the strategies (state saved) and returns.
///
/// # Errors
/// `WEBHOOK_SECRET` missing while listening beyond loopback, a failed login, live credentials without a valid `PROJECT_X_ACCOUNT_ID`, an unreadable
/// strategies directory, or a port that cannot be bound.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    // Before anything starts: a missing secret is a configuration error, reported as one.
    config.check_http()?;
    let (client, sim) = if config.has_gateway_credentials() {
        let client = live_client(config)?;
        client.session().ensure_valid_token().await.context(
            "login failed: check PROJECT_X_USERNAME / PROJECT_X_API_KEY (or JWT_TOKEN) and PROJECT_X_API_URL",
        )?;
        (client, None)
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
        (client, Some(sim))
    };
    let refresher = client.session().spawn_refresher();
    let accounts = client.accounts(true).await.context("listing accounts")?;
    let account = select_account(config.account_id, &accounts, sim.is_some())?;
    tracing::info!(account = account.id, name = %account.name, balance = account.balance, "trading account");
    tracing::warn!(
        "the strategy engine is not built yet: strategies run, orders are refused; keeping the session alive until Ctrl-C"
    );

    // Strategies and the HTTP server. Until the engine (issue 5) owns them, strategies run
    // against a broker that refuses every order, and readiness is the session's token.
    let metrics = Arc::new(Metrics::new());
    let tally = Arc::new(OrderTally::new());
    let refusing = Arc::new(MemoryBroker::new());
    refusing.refuse_all(Some("the trading engine is not running yet"));
    let broker = Arc::new(CountingBroker::new(refusing, tally.clone()));
    let mut host_config = HostConfig::new(&config.strategies_dir);
    host_config.state_dir = Some(config.state_dir.clone());
    let mut host = tokio::task::spawn_blocking(move || {
        Host::start(host_config, broker, Arc::new(SystemClock))
    })
    .await
    .context("starting strategies")??;
    if let Err(e) = host.watch() {
        tracing::warn!(error = %e, "strategy files are not watched; edits need a restart");
    }
    let host = Arc::new(host);
    let ops = Arc::new(SessionOps {
        session: Arc::clone(client.session()),
        account: account.id,
        simulated: sim.is_some(),
    });
    let app = Arc::new(App::new(
        HttpConfig::from_config(config),
        host.clone(),
        ops,
        metrics,
        tally,
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
    // Strategies stop after the HTTP server, so webhooks answered 202 still run; `on_stop`
    // runs and state is saved before the process exits.
    match Arc::try_unwrap(host) {
        Ok(host) => {
            let _ = tokio::task::spawn_blocking(move || host.shutdown()).await;
        }
        Err(host) => drop(host),
    }
    refresher.abort();
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(())
}

/// What `run` can say about readiness before the engine exists: whether the session holds a
/// token that has not expired. There are no hubs yet, and `/status` says so.
struct SessionOps {
    session: Arc<Session>,
    account: i32,
    simulated: bool,
}

impl Ops for SessionOps {
    fn readiness(&self) -> Result<(), String> {
        match self.session.expires_at() {
            Some(t) if t > Utc::now() => Ok(()),
            Some(_) => Err("the session token has expired".into()),
            None => Err("no session token yet".into()),
        }
    }

    fn status(&self) -> serde_json::Value {
        json!({
            "connections": {
                "gateway": if self.simulated { "simulator" } else { "live" },
                "token_expires_at": self.session.expires_at().map(|t| t.to_rfc3339()),
                "market_hub": "not started (the engine is not built yet)",
                "user_hub": "not started (the engine is not built yet)",
            },
            "account": self.account,
            "positions": [],
            "open_orders": [],
            "risk": { "orders": "refused: the trading engine is not running yet" },
        })
    }

    fn halt(&self, _reason: &str) -> Result<(), String> {
        // Nothing can trade yet (every order is refused), so the switch has nothing to stop.
        Ok(())
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

/// `moontick sim`: the simulator alone until Ctrl-C or SIGTERM. Its URL is the first line on
/// stdout.
///
/// # Errors
/// When the port cannot be bound.
pub async fn sim(config: SimConfig) -> anyhow::Result<()> {
    // The public demo key is printed so a user can paste it; any other key is a secret.
    let key = if config.api_key.expose() == "demo" {
        "\"demo\""
    } else {
        "as given by --api-key"
    };
    let user = config.user.clone();
    let sim = Simulator::start(config)
        .await
        .context("starting the simulator")?;
    println!(
        "ProjectX simulator at {} (user {user:?}, API key {key}); Ctrl-C stops it",
        sim.url()
    );
    shutdown_signal().await;
    sim.shutdown().await;
    Ok(())
}

/// `moontick check [FILES]`: loads each strategy in the sandbox without trading and prints
/// `ok` or `error file:line: message` per file.
///
/// # Errors
/// When any strategy fails to load or validate.
pub fn check(config: &Config, mut files: Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    if files.is_empty() {
        files.push(config.strategies_dir.clone());
    }
    let ok = crate::script::check::run(&files, &mut std::io::stdout().lock());
    anyhow::ensure!(ok, "some strategies did not load (see above)");
    Ok(())
}

/// `moontick token`: prints `JWT_TOKEN=<token>` and its expiry, reusing the environment's token
/// while it has over 5 minutes left, refreshing or logging in otherwise.
///
/// # Errors
/// No token and no credentials, or the gateway refused both refresh and login.
pub async fn token(config: &Config) -> anyhow::Result<()> {
    let client = live_client(config)?;
    let token = client
        .session()
        .current()
        .await
        .context("getting a token")?;
    println!("JWT_TOKEN={}", token.value.expose());
    println!(
        "# expires: {}",
        token.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    Ok(())
}

/// `moontick quote SYMBOL`: one quote as JSON, from the market hub when one arrives within
/// `wait`, else from the latest REST bar (`"source": "bars"`).
///
/// # Errors
/// A failed login, an unknown symbol, or a market hub that refuses the connection.
pub async fn quote(config: &Config, symbol: &str, wait: Duration) -> anyhow::Result<()> {
    let client = live_client(config)?;
    client.session().ensure_valid_token().await.context(
        "login failed: check PROJECT_X_USERNAME / PROJECT_X_API_KEY (or JWT_TOKEN) and PROJECT_X_API_URL",
    )?;
    let contract = SymbolResolver::new(client.clone()).resolve(symbol).await?;

    let mut hub_config = MarketHubConfig::new(config.market_hub_url.clone());
    hub_config.quote_event = config.quote_event.clone();
    let (hub, mut events) = MarketHub::connect(hub_config, Arc::clone(client.session()))
        .await
        .context(
            "the market hub refused the connection: check the token and PROJECT_X_MARKET_HUB_URL",
        )?;
    hub.subscribe_quotes(&contract.id)
        .await
        .context("subscribing to quotes")?;

    let live = tokio::time::timeout(wait, async {
        while let Some(event) = events.recv().await {
            if let MarketEvent::Quote { contract_id, quote } = event
                && contract_id == contract.id
                && (quote.best_bid.is_some() || quote.last_price.is_some())
            {
                return Some(quote);
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    hub.close().await;

    let out = match live {
        Some(q) => json!({
            "symbol": symbol,
            "contract": contract.id,
            "bid": q.best_bid,
            "ask": q.best_ask,
            "last": q.last_price,
            "volume": q.volume,
            "time": q.timestamp.or(q.last_updated),
            "source": "signalr",
        }),
        None => {
            tracing::warn!(
                "no live quote for {} within {wait:?}; using the latest bar",
                contract.id
            );
            let now = Utc::now();
            let bars = client
                .retrieve_bars(&RetrieveBarsRequest {
                    contract_id: contract.id.clone(),
                    live: false,
                    start_time: (now - chrono::Duration::days(7)).into(),
                    end_time: now.into(),
                    unit: BarUnit::Minute,
                    unit_number: 1,
                    limit: 1,
                    include_partial_bar: true,
                })
                .await?;
            let bar = bars
                .first()
                .with_context(|| format!("no quote and no bars for {}", contract.id))?;
            json!({
                "symbol": symbol,
                "contract": contract.id,
                "bid": null,
                "ask": null,
                "last": bar.c,
                "volume": bar.v,
                "time": bar.t,
                "source": "bars",
            })
        }
    };
    println!("{out}");
    Ok(())
}
