//! Symbol resolution: a ticker such as `MNQ` or `ES` becomes its front-month contract through
//! `Contract/search`; a full contract id passes through unchanged. Results are cached.

use std::collections::HashMap;
use std::sync::Mutex;

use super::client::GatewayClient;
use super::error::GatewayError;
use super::wire::Contract;

/// Why a symbol did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no active contract for {symbol:?} (looked for symbolId {wanted:?})")]
    NotFound { symbol: String, wanted: String },
    #[error("resolving {symbol:?}: {source}")]
    Gateway {
        symbol: String,
        source: GatewayError,
    },
}

/// ProjectX product roots that differ from the exchange ticker (gateway §7).
fn product_root(ticker: &str) -> &str {
    match ticker {
        "ES" => "EP",
        "NQ" => "ENQ",
        "6A" => "DA6",
        "6B" => "BP6",
        "6E" => "EU6",
        other => other,
    }
}

/// True for a full contract id (`CON.F.US.MNQ.Z25`), which is used as given.
pub fn is_contract_id(symbol: &str) -> bool {
    symbol.starts_with("CON.")
}

/// Resolves tickers to contracts and remembers the answers for the life of the program.
#[derive(Debug)]
pub struct SymbolResolver {
    client: GatewayClient,
    cache: Mutex<HashMap<String, Contract>>,
}

impl SymbolResolver {
    pub fn new(client: GatewayClient) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The contract for a ticker (front month, exact root match, `activeContract`) or for a full
    /// contract id.
    ///
    /// # Errors
    /// `NotFound` when the search has no active contract with exactly that root (the search is
    /// fuzzy: `NQ` also finds `MNQ`, which must not be taken for it).
    pub async fn resolve(&self, symbol: &str) -> Result<Contract, ResolveError> {
        let key = symbol.trim().to_ascii_uppercase();
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(hit.clone());
        }
        let gateway = |source| ResolveError::Gateway {
            symbol: symbol.to_string(),
            source,
        };
        let contract = if is_contract_id(symbol) {
            self.client
                .contract_by_id(symbol.trim())
                .await
                .map_err(gateway)?
        } else {
            let wanted = format!("F.US.{}", product_root(&key));
            let found = self
                .client
                .search_contracts(&key, false)
                .await
                .map_err(gateway)?;
            found
                .into_iter()
                .find(|c| c.active_contract && c.symbol_id.eq_ignore_ascii_case(&wanted))
                .ok_or_else(|| ResolveError::NotFound {
                    symbol: symbol.to_string(),
                    wanted,
                })?
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, contract.clone());
        Ok(contract)
    }

    /// The contract id for a ticker or contract id.
    ///
    /// # Errors
    /// As [`SymbolResolver::resolve`].
    pub async fn contract_id(&self, symbol: &str) -> Result<String, ResolveError> {
        if is_contract_id(symbol) {
            return Ok(symbol.trim().to_string());
        }
        Ok(self.resolve(symbol).await?.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickers_map_to_projectx_roots() {
        assert_eq!(product_root("ES"), "EP");
        assert_eq!(product_root("NQ"), "ENQ");
        assert_eq!(product_root("MNQ"), "MNQ");
        assert!(is_contract_id("CON.F.US.MNQ.Z25"));
        assert!(!is_contract_id("MNQ"));
    }
}
