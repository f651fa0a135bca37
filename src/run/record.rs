//! `moontick record MNQ ES`: the gateway connection of `run` (or its embedded simulator) and the
//! market feed with its recorder, without the engine: quotes, trades and depth to `RECORD_DIR`.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;

use super::{AbortOnDrop, connect, start_recorder};
use crate::config::Config;
use crate::feed::{MarketFeed, MarketFeedConfig, SessionTokens};
use crate::gateway::SymbolResolver;
use crate::metrics::Metrics;

/// `moontick record MNQ ES`: records quotes, trades and depth of the named contracts to
/// `RECORD_DIR` without trading, until `shutdown` resolves; then writes out what is queued and
/// prints what was recorded. Without credentials it records the embedded simulator (saying so).
///
/// # Errors
/// No symbols, an empty `RECORD_DIR`, a directory that cannot be written, a failed login, an
/// unknown symbol, or a market hub that refuses the connection.
pub async fn record(
    config: &Config,
    symbols: &[String],
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !symbols.is_empty(),
        "name the contracts to record, e.g. `moontick record MNQ ES`"
    );
    let dir = config
        .record_dir
        .clone()
        .context("RECORD_DIR is set empty (recording disabled): set it to a directory")?;
    let gateway = connect(config).await?;
    let _refresher = AbortOnDrop(gateway.client.session().spawn_refresher());
    let metrics = Metrics::new();
    let recorder =
        start_recorder(config, &dir, &metrics).context("RECORD_DIR cannot be written")?;

    let resolver = SymbolResolver::new(gateway.client.clone());
    let mut contracts = Vec::with_capacity(symbols.len());
    for symbol in symbols {
        let contract = resolver
            .resolve(symbol)
            .await
            .with_context(|| format!("resolving {symbol}"))?;
        contracts.push((symbol.trim().to_ascii_uppercase(), contract.id));
    }
    let mut hub_config = MarketFeedConfig::new(gateway.market_url.clone());
    hub_config.quote_event = config.quote_event.clone();
    hub_config.record = Some(recorder.tap());
    let tokens = SessionTokens::new(Arc::clone(gateway.client.session()));
    let (hub, mut events) = MarketFeed::connect(hub_config, tokens).await.context(
        "the market hub refused the connection: check the token and PROJECT_X_MARKET_HUB_URL",
    )?;
    for (symbol, id) in &contracts {
        hub.subscribe_quotes(id, symbol.as_str().into())
            .await
            .with_context(|| format!("subscribing to {id} quotes"))?;
        hub.subscribe_trades(id)
            .await
            .with_context(|| format!("subscribing to {id} trades"))?;
        hub.subscribe_depth(id)
            .await
            .with_context(|| format!("subscribing to {id} depth"))?;
    }
    let names: Vec<String> = contracts
        .iter()
        .map(|(s, id)| format!("{s} ({id})"))
        .collect();
    println!(
        "moontick: recording {} to {} without trading; Ctrl-C stops",
        names.join(", "),
        dir.display()
    );

    // The engine is not running: the events are read only so the feed's queue never fills.
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            event = events.recv() => if event.is_none() { break },
        }
    }
    hub.close().await;
    drop(events);
    recorder.finish().await;
    let dropped: u64 = ["queue", "cap", "io"]
        .iter()
        .map(|r| metrics.record_dropped(r).get())
        .sum();
    println!(
        "moontick: recorded {} market events to {} ({dropped} dropped)",
        metrics.record_written.get(),
        dir.display()
    );
    if let Some(sim) = gateway.sim {
        sim.shutdown().await;
    }
    Ok(())
}
