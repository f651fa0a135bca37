//! What the market feed reports to the engine: merged quotes, domain trades and depth, and
//! stale/resumed reports.

use std::sync::Arc;
use std::time::Duration;

use crate::market::{Depth, Quote, Trade};

/// What the market feed reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MarketEvent {
    /// A quote, merged: the latest known state of the contract.
    Quote(Quote),
    /// Market trade prints of one contract.
    Trades(Vec<Trade>),
    Depth(Depth),
    /// A quote-subscribed contract has had no quote for `silent_for` (reported once per silence).
    Stale {
        contract_id: Arc<str>,
        silent_for: Duration,
    },
    /// Quotes came back for a contract reported stale.
    Resumed {
        contract_id: Arc<str>,
    },
}
