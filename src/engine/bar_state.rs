//! The engine's bar state: per contract, the series strategies declared, each waiting for its
//! backfill or live with an aggregator ([`super::bars`] keeps them current).

use std::collections::HashMap;
use std::sync::Arc;

use crate::bars::{Aggregator, Bar, BarStore, Series, Timeframe};

/// Where a series takes its history from when there is no gateway (a backtest): given the
/// contract, the timeframe, the bars wanted and the cut, the bars of every trade before the cut
/// (the partial one included), oldest first.
pub(crate) type HistoryFn = Arc<dyn Fn(&str, Timeframe, usize, i64) -> Vec<Bar> + Send + Sync>;

/// Trades held for a series waiting for its backfill, beyond which it starts over.
const MAX_BUFFER: usize = 200_000;

pub(super) enum Phase {
    Waiting {
        since_ms: i64,
        cut_ms: Option<i64>,
        buffer: Vec<(f64, i64, i64)>,
        requested: bool,
        retry_at_ms: i64,
    },
    Live(Aggregator),
}

pub(super) struct SeriesState {
    pub(super) tf: Timeframe,
    /// Counts the waits; a backfill answers the wait that asked for it or is ignored.
    pub(super) epoch: u64,
    pub(super) history: usize,
    pub(super) store: Arc<Series>,
    pub(super) phase: Phase,
}

pub(super) struct ContractBars {
    pub(super) contract: Arc<str>,
    /// The name bar events carry (as quotes do).
    pub(super) symbol: Arc<str>,
    pub(super) subscribed_ms: i64,
    pub(super) last_trade_ms: Option<i64>,
    pub(super) last_volume: Option<i64>,
    pub(super) series: Vec<SeriesState>,
}

/// Every series of the run; kept when no strategy wants them any more (a reload may again).
#[derive(Default)]
pub(crate) struct Bars {
    pub(super) store: BarStore,
    pub(super) contracts: HashMap<Arc<str>, ContractBars>,
    /// A backtest's history (see [`HistoryFn`]); live, the gateway's.
    pub(super) history: Option<HistoryFn>,
}

impl Bars {
    pub fn new(store: BarStore) -> Self {
        Bars {
            store,
            contracts: HashMap::new(),
            history: None,
        }
    }
}

pub(super) fn waiting(now_ms: i64) -> Phase {
    Phase::Waiting {
        since_ms: now_ms,
        cut_ms: None,
        buffer: Vec::new(),
        requested: false,
        retry_at_ms: 0,
    }
}

impl SeriesState {
    /// One trade (or quote stand-in); closed bars are appended to `closed`.
    pub(super) fn trade(&mut self, price: f64, size: i64, time_ms: i64, closed: &mut Vec<Bar>) {
        match &mut self.phase {
            Phase::Live(agg) => agg.trade(price, size, time_ms, closed),
            Phase::Waiting { cut_ms, buffer, .. } => {
                let cut = *cut_ms.get_or_insert(time_ms.div_euclid(1000) * 1000 + 1000);
                if time_ms >= cut {
                    buffer.push((price, size, time_ms));
                    if buffer.len() > MAX_BUFFER {
                        tracing::warn!(timeframe = %self.tf, "bar backfill is late; starting the series over");
                        self.phase = waiting(time_ms);
                    }
                }
            }
        }
    }
}
