//! Which contracts the engine knows: strategies' symbols resolved to front-month contracts
//! (retried when the gateway fails), quotes subscribed for them (trades and depth too where a
//! strategy declared `trades`/`depth`, or bars), and contracts we hold.

use std::sync::Arc;
use std::time::Duration;

use super::book::ContractInfo;
use super::core::Core;
use super::input::Input;

/// How long a symbol that did not resolve waits before the next try.
const RESOLVE_RETRY: Duration = Duration::from_secs(5);

impl Core {
    /// Resolves what the strategies declare and is not known yet: new symbols after a reload,
    /// and ones whose resolution failed (a 429 at start, say) once their retry is due.
    pub(super) fn resolve_declared(&mut self) {
        let now = tokio::time::Instant::now();
        let resolving = &mut self.resolving;
        self.resolve_retry.retain(|symbol, due| {
            let keep = *due > now;
            if !keep {
                resolving.remove(symbol);
            }
            keep
        });
        if let Some(host) = self.host.clone() {
            for symbol in host.symbols() {
                let retrying = !self.resolve_retry.is_empty()
                    && self
                        .resolve_retry
                        .contains_key(&symbol.to_ascii_uppercase());
                if !retrying {
                    self.resolve(&symbol);
                }
            }
        }
    }

    /// Resolves a symbol in the background; its quotes are subscribed once it is known.
    pub(super) fn resolve(&mut self, symbol: &str) {
        // Most symbols are written in capitals: no key to build then (this runs every tick).
        let key = match symbol.bytes().any(|b| b.is_ascii_lowercase()) {
            true => std::borrow::Cow::Owned(symbol.to_ascii_uppercase()),
            false => std::borrow::Cow::Borrowed(symbol),
        };
        if self.symbols.contains_key(key.as_ref()) || !self.resolving.insert(key.into_owned()) {
            return;
        }
        let Some(resolver) = self.resolver.clone() else {
            // A backtest knows its contracts up front; nothing else is resolvable there.
            tracing::warn!("{symbol}: no gateway to resolve it against");
            return;
        };
        let (tx, symbol) = (self.tx.clone(), symbol.to_string());
        tokio::spawn(async move {
            match resolver.resolve(&symbol).await {
                Ok(c) => {
                    let info = ContractInfo {
                        id: c.id.as_str().into(),
                        symbol: symbol.as_str().into(),
                        name: c.name.as_str().into(),
                        description: c.description.as_str().into(),
                        tick_size: c.tick_size,
                        tick_value: c.tick_value,
                    };
                    tracing::info!(
                        "{symbol} is {} (tick {} = ${})",
                        c.id,
                        c.tick_size,
                        crate::money::Money(c.tick_value)
                    );
                    let _ = tx.send(Input::Resolved(vec![info])).await;
                }
                Err(e) => {
                    tracing::error!("{e}; trying again in {RESOLVE_RETRY:?}");
                    let _ = tx.send(Input::ResolveFailed(symbol)).await;
                }
            }
        });
    }

    /// Makes sure a contract we hold is known (for P&L) and quoted (for the loss limit).
    pub(super) fn ensure_contract(&mut self, contract_id: &str) {
        if !self.contracts.contains_key(contract_id) {
            self.resolve(contract_id);
        }
    }

    /// A symbol that did not resolve is tried again after [`RESOLVE_RETRY`].
    pub(super) fn on_resolve_failed(&mut self, symbol: &str) {
        let due = tokio::time::Instant::now() + RESOLVE_RETRY;
        self.resolve_retry.insert(symbol.to_ascii_uppercase(), due);
    }

    /// Subscribes market trades and depth for the resolved symbols of strategies that declared
    /// `trades = true` / `depth = true`. Symbols not resolved yet are picked up on a later tick.
    pub(super) fn sync_market_streams(&mut self) {
        let Some(host) = self.host.clone() else {
            return;
        };
        let (trades, depth) = host.market_streams();
        for symbol in trades {
            if let Some(info) = self.contract_for(&symbol) {
                self.ensure_trades(&info.id);
            }
        }
        for symbol in depth {
            let Some(info) = self.contract_for(&symbol) else {
                continue;
            };
            if self.depth_subscribed.insert(info.id.clone())
                && let Some(market) = self.market.clone()
            {
                let id = info.id.to_string();
                tokio::spawn(async move {
                    if let Err(e) = market.subscribe_depth(&id).await {
                        tracing::error!("subscribing to depth for {id}: {e}");
                    }
                });
            }
        }
    }

    /// Subscribes a contract's market trades once, whoever wants them (bars, `on_trade`): a
    /// second subscription could make the hub send every print twice.
    pub(super) fn ensure_trades(&mut self, contract: &Arc<str>) {
        if self.trades_subscribed.insert(contract.clone())
            && let Some(market) = self.market.clone()
        {
            let id = contract.to_string();
            tokio::spawn(async move {
                if let Err(e) = market.subscribe_trades(&id).await {
                    tracing::error!("subscribing to trades for {id}: {e}");
                }
            });
        }
    }

    pub(super) fn contract_for(&self, symbol: &str) -> Option<Arc<ContractInfo>> {
        self.symbols.get(&symbol.to_ascii_uppercase()).cloned()
    }
}
