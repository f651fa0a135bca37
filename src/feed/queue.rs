//! The market feed's queue to the engine: bounded, with a stated overflow policy.
//!
//! Below the bound every event is kept, in order. Once the engine has fallen `bound` events
//! behind, a new quote replaces the contract's quote still waiting in the queue (latest wins,
//! in the place where the first of them arrived) and is counted as conflated; a quote for a
//! contract with nothing waiting is still queued, so the queue holds at most `bound` events plus
//! one quote per contract. Market trades and depth past the bound are dropped and counted (the
//! engine does not use them yet); stale/resumed reports are always kept (at most one per
//! contract per silence).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use super::events::MarketEvent;

/// What the queue counts: the `/metrics` counters of its overflow policy.
#[derive(Debug, Clone, Default)]
pub struct QueueCounters {
    /// Quotes replaced by a newer quote for the same contract.
    pub conflated: Counter,
    /// Trades and depth updates dropped.
    pub dropped: Counter,
}

#[derive(Debug)]
pub struct MarketQueue {
    bound: usize,
    inner: Mutex<Inner>,
    notify: Notify,
    counters: QueueCounters,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<MarketEvent>,
    /// Sequence number of `items[0]`: positions survive pops.
    base: u64,
    /// Per contract, the sequence number of its latest quote still queued.
    queued_quote: HashMap<Arc<str>, u64>,
    /// Most events ever queued at once.
    high_water: usize,
    /// The producer is gone: `recv` returns `None` once the queue is empty.
    closed: bool,
    /// The consumer is gone: the producer may stop.
    abandoned: bool,
}

impl Inner {
    fn pop(&mut self) -> Option<MarketEvent> {
        let event = self.items.pop_front()?;
        let seq = self.base;
        self.base += 1;
        if let MarketEvent::Quote(q) = &event
            && self.queued_quote.get(&q.contract) == Some(&seq)
        {
            self.queued_quote.remove(&q.contract);
        }
        Some(event)
    }
}

impl MarketQueue {
    /// A queue that starts conflating past `bound` events (at least 1).
    pub fn new(bound: usize, counters: QueueCounters) -> Self {
        MarketQueue {
            bound: bound.max(1),
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            counters,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves only a queue of plain values: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event under the overflow policy and wakes the consumer.
    pub fn push(&self, event: MarketEvent) {
        {
            let mut inner = self.lock();
            let full = inner.items.len() >= self.bound;
            match &event {
                MarketEvent::Quote(q) if full => {
                    if let Some(&seq) = inner.queued_quote.get(&q.contract) {
                        let at = (seq - inner.base) as usize;
                        inner.items[at] = event;
                        drop(inner);
                        self.counters.conflated.inc();
                        return;
                    }
                }
                MarketEvent::Trades(_) | MarketEvent::Depth(_) if full => {
                    drop(inner);
                    self.counters.dropped.inc();
                    return;
                }
                _ => {}
            }
            if let MarketEvent::Quote(q) = &event {
                let seq = inner.base + inner.items.len() as u64;
                inner.queued_quote.insert(q.contract.clone(), seq);
            }
            inner.items.push_back(event);
            inner.high_water = inner.high_water.max(inner.items.len());
        }
        self.notify.notify_one();
    }

    /// The next event, or `None` when it is empty and the producer is gone. Cancel-safe: an
    /// event is removed only when it is returned.
    pub async fn recv(&self) -> Option<MarketEvent> {
        loop {
            {
                let mut inner = self.lock();
                if let Some(event) = inner.pop() {
                    return Some(event);
                }
                if inner.closed {
                    return None;
                }
            }
            // A push between the unlock above and this wait leaves a permit: no wake-up is lost.
            self.notify.notified().await;
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<MarketEvent> {
        self.lock().pop()
    }

    /// Events waiting now.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound past which quotes conflate.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Most events ever waiting at once.
    pub fn high_water(&self) -> usize {
        self.lock().high_water
    }

    pub fn counters(&self) -> &QueueCounters {
        &self.counters
    }

    /// The producer is done: the consumer drains what is left, then gets `None`.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    pub(super) fn abandon(&self) {
        self.lock().abandoned = true;
    }

    pub(super) fn is_abandoned(&self) -> bool {
        self.lock().abandoned
    }

    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{Quote, Trade};
    use std::time::Duration;

    fn quote(contract: &str, bid: f64) -> MarketEvent {
        MarketEvent::Quote(Quote {
            bid: Some(bid),
            ..Quote::empty(contract.into(), contract.into())
        })
    }

    fn trade(contract: &str) -> MarketEvent {
        MarketEvent::Trades(vec![Trade {
            contract: contract.into(),
            symbol: contract.into(),
            price: 1.0,
            size: 1.0,
            side: None,
            time_ms: 0,
        }])
    }

    fn name(e: &MarketEvent) -> String {
        match e {
            MarketEvent::Quote(q) => format!("{}{}", q.contract, q.bid.unwrap()),
            MarketEvent::Trades(t) => format!("t{}", t[0].contract),
            MarketEvent::Resumed { contract_id } => format!("r{contract_id}"),
            other => format!("{other:?}"),
        }
    }

    async fn drain(q: &MarketQueue) -> Vec<String> {
        let mut out = Vec::new();
        while !q.is_empty() {
            out.push(name(&q.recv().await.unwrap()));
        }
        out
    }

    #[tokio::test]
    async fn below_the_bound_every_event_is_kept_in_order() {
        let q = MarketQueue::new(8, QueueCounters::default());
        for (i, c) in ["A", "B", "A", "A"].iter().enumerate() {
            q.push(quote(c, i as f64));
        }
        q.push(trade("A"));
        assert_eq!(drain(&q).await, ["A0", "B1", "A2", "A3", "tA"]);
        assert_eq!(q.counters().conflated.get(), 0);
        assert_eq!(q.counters().dropped.get(), 0);
    }

    #[tokio::test]
    async fn past_the_bound_quotes_conflate_per_contract_in_order_of_first_arrival() {
        let q = MarketQueue::new(3, QueueCounters::default());
        q.push(quote("A", 1.0));
        q.push(quote("B", 1.0));
        q.push(quote("A", 2.0));
        // Full: the latest A waiting (A2) is replaced where it stands; B likewise.
        q.push(quote("A", 3.0));
        q.push(quote("B", 2.0));
        q.push(trade("A"));
        q.push(MarketEvent::Resumed {
            contract_id: "C".into(),
        });
        // A contract with nothing waiting is still queued: its latest quote is never lost.
        q.push(quote("C", 1.0));
        q.push(quote("C", 2.0));
        assert!(q.len() <= q.bound() + 3, "bound plus one per contract");
        assert_eq!(drain(&q).await, ["A1", "B2", "A3", "rC", "C2"]);
        assert_eq!(q.counters().conflated.get(), 3);
        assert_eq!(q.counters().dropped.get(), 1);
        assert_eq!(q.high_water(), 5);
    }

    #[tokio::test]
    async fn a_popped_quote_is_never_overwritten() {
        let q = MarketQueue::new(1, QueueCounters::default());
        q.push(quote("A", 1.0));
        assert_eq!(name(&q.recv().await.unwrap()), "A1");
        q.push(quote("B", 1.0));
        q.push(quote("A", 2.0));
        q.push(quote("A", 3.0));
        assert_eq!(drain(&q).await, ["B1", "A3"]);
    }

    #[tokio::test(start_paused = true)]
    async fn recv_waits_for_a_push_and_ends_after_close() {
        let q = Arc::new(MarketQueue::new(4, QueueCounters::default()));
        let q2 = q.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(e) = q2.recv().await {
                got.push(name(&e));
            }
            got
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        q.push(quote("A", 1.0));
        tokio::time::sleep(Duration::from_millis(5)).await;
        q.push(quote("A", 2.0));
        q.close();
        assert_eq!(reader.await.unwrap(), ["A1", "A2"]);
    }
}
