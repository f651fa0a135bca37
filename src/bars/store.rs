//! The bar store: closed bars of every series (one per contract and timeframe, shared by all
//! strategies that declare it), written by the engine loop and read by strategy threads.
//!
//! It lives outside any strategy's VM, so a reload keeps the bars. Reads take two short
//! uncontended locks and copy the bars out: `bot.bars` never waits for the engine loop, and
//! the loop never waits for a strategy building Lua tables.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use super::bar::Bar;
use super::timeframe::Timeframe;

/// Closed bars of one contract and timeframe, oldest first, at most `capacity` of them.
#[derive(Debug)]
pub struct Series(Mutex<Ring>);

#[derive(Debug)]
struct Ring {
    bars: VecDeque<Bar>,
    capacity: usize,
}

impl Series {
    fn new(capacity: usize) -> Self {
        Series(Mutex::new(Ring {
            bars: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
        }))
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a closed bar, dropping the oldest past the capacity.
    pub fn push(&self, bar: Bar) {
        let mut ring = self.ring();
        if ring.bars.len() >= ring.capacity {
            ring.bars.pop_front();
        }
        ring.bars.push_back(bar);
    }

    /// Keeps at least `capacity` bars from now on.
    pub fn grow(&self, capacity: usize) {
        let mut ring = self.ring();
        ring.capacity = ring.capacity.max(capacity);
    }

    pub fn len(&self) -> usize {
        self.ring().bars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last `n` closed bars, oldest first, into `out` (cleared first).
    pub fn last(&self, n: usize, out: &mut Vec<Bar>) {
        out.clear();
        let ring = self.ring();
        let skip = ring.bars.len().saturating_sub(n);
        out.extend(ring.bars.range(skip..).copied());
    }

    /// The newest closed bar.
    pub fn latest(&self) -> Option<Bar> {
        self.ring().bars.back().copied()
    }
}

/// The series of one contract, by timeframe (a handful: a list beats a map).
type ContractSeries = Vec<(Timeframe, Arc<Series>)>;

#[derive(Debug, Default)]
struct Inner {
    /// Per contract id: its series.
    series: RwLock<HashMap<Arc<str>, ContractSeries>>,
    /// The names strategies use for contracts (`MNQ`, a contract id), exact and upper-cased.
    names: RwLock<HashMap<String, Arc<str>>>,
}

/// The shared store; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct BarStore(Arc<Inner>);

impl BarStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that strategies call `contract` by `symbol`.
    pub fn name(&self, symbol: &str, contract: &Arc<str>) {
        let mut names = self.0.names.write().unwrap_or_else(|e| e.into_inner());
        for key in [symbol.to_owned(), symbol.to_ascii_uppercase()] {
            names.insert(key, contract.clone());
        }
    }

    /// The contract a strategy's symbol stands for, once resolved.
    pub fn contract_of(&self, symbol: &str) -> Option<Arc<str>> {
        let names = self.0.names.read().unwrap_or_else(|e| e.into_inner());
        names
            .get(symbol)
            .or_else(|| names.get(&symbol.to_ascii_uppercase()))
            .cloned()
    }

    /// The series of a contract and timeframe, created (keeping `capacity` bars) when new.
    pub fn ensure(&self, contract: &Arc<str>, tf: Timeframe, capacity: usize) -> Arc<Series> {
        if let Some(s) = self.series(contract, tf) {
            s.grow(capacity);
            return s;
        }
        let mut map = self.0.series.write().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(contract.clone()).or_default();
        if let Some((_, s)) = list.iter().find(|(t, _)| *t == tf) {
            return s.clone();
        }
        let s = Arc::new(Series::new(capacity));
        list.push((tf, s.clone()));
        s
    }

    pub fn series(&self, contract: &str, tf: Timeframe) -> Option<Arc<Series>> {
        let map = self.0.series.read().unwrap_or_else(|e| e.into_inner());
        map.get(contract)?
            .iter()
            .find(|(t, _)| *t == tf)
            .map(|(_, s)| s.clone())
    }

    /// The last `n` closed bars of `symbol`'s `tf` series, oldest first, into `out`; empty
    /// until the symbol is resolved and its backfill arrived.
    pub fn last(&self, symbol: &str, tf: Timeframe, n: usize, out: &mut Vec<Bar>) {
        out.clear();
        let series = self.contract_of(symbol).and_then(|c| self.series(&c, tf));
        if let Some(s) = series {
            s.last(n, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(t: i64) -> Bar {
        Bar {
            time_ms: t,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 1,
        }
    }

    #[test]
    fn a_series_keeps_its_newest_bars_oldest_first_and_is_shared_by_name() {
        let store = BarStore::new();
        let c: Arc<str> = "CON.F.US.MNQ.Z25".into();
        let tf = Timeframe::parse("1m").unwrap();
        store.name("MNQ", &c);
        let s = store.ensure(&c, tf, 3);
        assert!(
            Arc::ptr_eq(&s, &store.ensure(&c, tf, 2)),
            "one series per contract and timeframe"
        );
        for t in 0..5 {
            s.push(bar(t));
        }
        let mut out = Vec::new();
        store.last("mnq", tf, 10, &mut out);
        assert_eq!(out.iter().map(|b| b.time_ms).collect::<Vec<_>>(), [2, 3, 4]);
        store.last("MNQ", tf, 2, &mut out);
        assert_eq!(out.iter().map(|b| b.time_ms).collect::<Vec<_>>(), [3, 4]);
        store.last("ES", tf, 2, &mut out);
        assert!(out.is_empty());
        store.ensure(&c, tf, 4).push(bar(5));
        assert_eq!(s.len(), 4, "grown");
    }
}
