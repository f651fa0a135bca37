//! What the running strategies declare, read across all of them: the symbols, bar series and
//! market streams the engine must serve, and each strategy's own limits.

use std::sync::Arc;

use super::Host;
use crate::bars::Timeframe;
use crate::risk::StrategyLimits;
use crate::script::spec::Spec;

impl Host {
    /// Each running strategy's declaration, as it stands now.
    fn specs(&self) -> Vec<Arc<Spec>> {
        self.strategies()
            .values()
            .map(|e| Arc::clone(&e.shared.spec.read().unwrap_or_else(|e| e.into_inner())))
            .collect()
    }

    /// One strategy's declaration.
    fn spec(&self, strategy: &str) -> Option<Arc<Spec>> {
        let map = self.strategies();
        let entry = map.get(strategy)?;
        let spec = entry.shared.spec.read().unwrap_or_else(|e| e.into_inner());
        Some(Arc::clone(&spec))
    }

    /// The union of the symbols the running strategies declared: what the feed must subscribe.
    pub fn symbols(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .specs()
            .iter()
            .flat_map(|spec| spec.symbols.clone())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Every bar series the running strategies declared: (symbol as declared, timeframe, bars
    /// to keep), the largest `bars_history` winning where strategies share a series.
    pub fn bar_series(&self) -> Vec<(String, Timeframe, usize)> {
        let mut all: Vec<(String, Timeframe, usize)> = Vec::new();
        for spec in self.specs() {
            for (symbol, tf) in spec.bars.series(&spec.symbols) {
                match all.iter_mut().find(|(s, t, _)| *s == symbol && *t == tf) {
                    Some(found) => found.2 = found.2.max(spec.bars.history),
                    None => all.push((symbol, tf, spec.bars.history)),
                }
            }
        }
        all.sort();
        all
    }

    /// The symbols whose market trades (`trades = true`) and depth (`depth = true`) some running
    /// strategy declared: what the feed must subscribe beyond quotes. Sorted, without repeats.
    pub fn market_streams(&self) -> (Vec<String>, Vec<String>) {
        let (mut trades, mut depth) = (Vec::new(), Vec::new());
        for spec in self.specs() {
            if spec.trades {
                trades.extend(spec.symbols.iter().cloned());
            }
            if spec.depth {
                depth.extend(spec.symbols.iter().cloned());
            }
        }
        for v in [&mut trades, &mut depth] {
            v.sort();
            v.dedup();
        }
        (trades, depth)
    }

    /// A strategy's own `limits`, for the risk guard (`None` when there is no such strategy).
    pub fn limits(&self, strategy: &str) -> Option<StrategyLimits> {
        self.spec(strategy).map(|spec| spec.limits)
    }

    /// Whether `strategy` declared `symbol` (case aside) in its `symbols`.
    pub fn declares(&self, strategy: &str, symbol: &str) -> bool {
        self.spec(strategy)
            .is_some_and(|spec| spec.symbols.iter().any(|s| s.eq_ignore_ascii_case(symbol)))
    }
}
