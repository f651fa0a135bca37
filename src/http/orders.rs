//! How the webhook relay knows whether a handler placed an order: a per-strategy tally of
//! accepted order requests, kept by a [`Broker`] wrapper that every `bot.*` call goes through.
//!
//! Why it matters: TradingView resends an alert that got a 5xx. Once a handler has placed an
//! order, a resend could double the position, so the relay must never answer 5xx after one.
//!
//! How it is used: the relay reads [`OrderTally::get`] for the strategy before it queues the
//! webhook and again when the reply arrives. Handlers of one strategy run one at a time on its
//! own thread, so every order the webhook's handler placed lies between the two readings. The
//! difference may also include orders from that strategy's other handlers (a quote that was
//! handled meanwhile): the check errs towards "an order was placed", which only turns a 5xx
//! into a 2xx, never the other way round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::script::{
    AccountView, Broker, OrderChange, OrderHandle, OrderIntent, OrderView, PositionView, Quote,
    Refusal,
};

/// Accepted order-placing calls per strategy (`submit` and `flatten`; a flatten sends closing
/// orders). Monotonic; never reset.
#[derive(Debug, Default)]
pub struct OrderTally {
    counts: RwLock<HashMap<String, Arc<AtomicU64>>>,
}

impl OrderTally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Orders the strategy has placed since start.
    pub fn get(&self, strategy: &str) -> u64 {
        self.counts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(strategy)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// Counts one placed order.
    pub fn record(&self, strategy: &str) {
        // The read lock is the common path: one entry per strategy is created once.
        if let Some(c) = self
            .counts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(strategy)
        {
            c.fetch_add(1, Ordering::AcqRel);
            return;
        }
        self.counts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(strategy.to_owned())
            .or_default()
            .fetch_add(1, Ordering::AcqRel);
    }
}

/// A [`Broker`] that forwards every call and counts the accepted order-placing ones in an
/// [`OrderTally`]. The engine wraps its broker in this before handing it to the `Host`.
pub struct CountingBroker {
    inner: Arc<dyn Broker>,
    tally: Arc<OrderTally>,
}

impl CountingBroker {
    pub fn new(inner: Arc<dyn Broker>, tally: Arc<OrderTally>) -> Self {
        CountingBroker { inner, tally }
    }
}

impl Broker for CountingBroker {
    fn submit(&self, strategy: &str, intent: OrderIntent) -> Result<OrderHandle, Refusal> {
        let out = self.inner.submit(strategy, intent);
        if out.is_ok() {
            self.tally.record(strategy);
        }
        out
    }

    fn cancel(&self, strategy: &str, id: u64) -> Result<(), Refusal> {
        self.inner.cancel(strategy, id)
    }

    fn modify(&self, strategy: &str, id: u64, change: OrderChange) -> Result<(), Refusal> {
        // A modify changes an order that is already working: a resend would modify it to the
        // same values again, which is harmless, so it does not count.
        self.inner.modify(strategy, id, change)
    }

    fn flatten(&self, strategy: &str, symbol: Option<&str>) -> Result<(), Refusal> {
        let out = self.inner.flatten(strategy, symbol);
        if out.is_ok() {
            self.tally.record(strategy);
        }
        out
    }

    fn flatten_all(&self, strategy: &str) -> Result<(), Refusal> {
        let out = self.inner.flatten_all(strategy);
        if out.is_ok() {
            self.tally.record(strategy);
        }
        out
    }

    fn halt(&self, strategy: &str, reason: &str) {
        self.inner.halt(strategy, reason);
    }

    fn position(&self, strategy: &str, symbol: &str) -> PositionView {
        self.inner.position(strategy, symbol)
    }

    fn orders(&self, strategy: &str, symbol: Option<&str>) -> Vec<OrderView> {
        self.inner.orders(strategy, symbol)
    }

    fn quote(&self, symbol: &str) -> Option<Quote> {
        self.inner.quote(symbol)
    }

    fn account(&self) -> Option<AccountView> {
        self.inner.account()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{MemoryBroker, OrderType, Side};

    fn intent() -> OrderIntent {
        OrderIntent {
            symbol: "MNQ".into(),
            side: Side::Buy,
            size: 1,
            order_type: OrderType::Market,
            price: None,
            stop_price: None,
            trail_price: None,
            stop_loss_ticks: None,
            take_profit_ticks: None,
            tag: None,
        }
    }

    #[test]
    fn only_accepted_orders_are_counted() {
        let memory = Arc::new(MemoryBroker::new());
        let tally = Arc::new(OrderTally::new());
        let b = CountingBroker::new(memory.clone(), tally.clone());
        b.submit("a", intent()).unwrap();
        b.flatten("a", None).unwrap();
        memory.refuse_all(Some("halted"));
        assert!(b.submit("a", intent()).is_err());
        b.cancel("a", 1).unwrap();
        assert_eq!(tally.get("a"), 2);
        assert_eq!(tally.get("b"), 0);
    }
}
