//! The one-shot commands behind the CLI (`sim`, `check`, `token`, `quote`): each takes the typed config and
//! prints its result on stdout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use serde_json::json;

use crate::config::Config;
use crate::feed::{MarketEvent, MarketFeed, MarketFeedConfig, SessionTokens};
use crate::gateway::requests::RetrieveBarsRequest;
use crate::gateway::wire::BarUnit;
use crate::gateway::{self, GatewayClient, SymbolResolver, TransportOptions};
use crate::sim::{SimConfig, Simulator};

pub(crate) fn live_client(config: &Config) -> anyhow::Result<GatewayClient> {
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

/// `moontick sim`: the simulator alone on `config.addr` until `shutdown` resolves (`main`:
/// Ctrl-C or SIGTERM). Its URL is the first line on stdout.
///
/// # Errors
/// When the address cannot be bound.
pub async fn sim(config: SimConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // The public demo key is printed so a user can paste it; any other key is a secret.
    let key = if config.api_key.expose() == "demo" {
        "\"demo\""
    } else {
        "as given by --api-key"
    };
    let user = config.user.clone();
    let addr = config.addr;
    let sim = Simulator::start(config)
        .await
        .with_context(|| format!("starting the simulator on {addr} (is --port in use?)"))?;
    println!(
        "ProjectX simulator at {} (user {user:?}, API key {key}); Ctrl-C stops it",
        sim.url()
    );
    shutdown.await;
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
/// while it needs no refresh (over 5 minutes, or half its lifetime, left), refreshing or logging in
/// otherwise.
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

    let mut hub_config = MarketFeedConfig::new(config.market_hub_url.clone());
    hub_config.quote_event = config.quote_event.clone();
    let tokens = SessionTokens::new(Arc::clone(client.session()));
    let (hub, mut events) = MarketFeed::connect(hub_config, tokens).await.context(
        "the market hub refused the connection: check the token and PROJECT_X_MARKET_HUB_URL",
    )?;
    hub.subscribe_quotes(&contract.id, symbol.into())
        .await
        .context("subscribing to quotes")?;

    let live = tokio::time::timeout(wait, async {
        while let Some(event) = events.recv().await {
            if let MarketEvent::Quote(quote) = event
                && *quote.contract == *contract.id
                && (quote.bid.is_some() || quote.last.is_some())
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
            "bid": q.bid,
            "ask": q.ask,
            "last": q.last,
            "volume": q.volume,
            "time": chrono::DateTime::from_timestamp_millis(q.time_ms).map(|t| t.to_rfc3339()),
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
