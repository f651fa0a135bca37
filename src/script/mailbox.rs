//! The per-strategy queue: quotes coalesce latest-wins per contract (drops counted); every other
//! delivery is kept, in order.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::events::{Event, Quote, WebhookRequest};

/// What the runner of one strategy receives.
#[derive(Debug)]
pub enum Delivery {
    Event(Event),
    Webhook(WebhookRequest),
    /// The file changed: build a new version and swap if it loads.
    Reload,
    /// Stop the strategy and end its thread; the reason is passed to `on_stop`.
    Stop(String),
}

enum Slot {
    /// The pending quote for this contract is in `Inbox::quotes`.
    Quote(Arc<str>),
    Other(Delivery),
}

#[derive(Default)]
struct Inbox {
    slots: VecDeque<Slot>,
    quotes: HashMap<Arc<str>, Quote>,
    others: usize,
    warned_full: bool,
}

/// A queue with one writer side (the host) and one reader (the strategy's thread).
///
/// It is bounded for quotes (one pending per contract) but not for the rest: orders, fills and
/// webhooks must never be dropped, and blocking the engine loop on one slow strategy would stall
/// every other one. Crossing `capacity` logs a warning instead.
pub struct Mailbox {
    inbox: Mutex<Inbox>,
    ready: Condvar,
    capacity: usize,
    name: String,
    pub quotes_dropped: AtomicU64,
}

impl Mailbox {
    pub fn new(name: &str, capacity: usize) -> Self {
        Mailbox {
            inbox: Mutex::new(Inbox::default()),
            ready: Condvar::new(),
            capacity,
            name: name.to_owned(),
            quotes_dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a quote. A quote still waiting for the same contract is replaced in place: the
    /// strategy sees the newest market at the earliest slot, which is what a trader behind the
    /// market wants, and the queue cannot grow with the quote rate.
    pub fn push_quote(&self, q: Quote) {
        let mut inbox = self.lock();
        if let Some(pending) = inbox.quotes.get_mut(&q.contract) {
            *pending = q;
            self.quotes_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let key = q.contract.clone();
        inbox.quotes.insert(key.clone(), q);
        inbox.slots.push_back(Slot::Quote(key));
        drop(inbox);
        self.ready.notify_one();
    }

    /// Queues anything else; never drops.
    pub fn push(&self, d: Delivery) {
        if let Delivery::Event(Event::Quote(q)) = d {
            return self.push_quote(q);
        }
        let mut inbox = self.lock();
        inbox.slots.push_back(Slot::Other(d));
        inbox.others += 1;
        if inbox.others > self.capacity && !inbox.warned_full {
            inbox.warned_full = true;
            tracing::warn!(strategy = %self.name, backlog = inbox.others, "strategy is falling behind: events are queuing up");
        } else if inbox.others <= self.capacity / 2 {
            inbox.warned_full = false;
        }
        drop(inbox);
        self.ready.notify_one();
    }

    /// The next delivery, waiting until `deadline` (or forever) when the queue is empty.
    pub fn pop(&self, deadline: Option<Instant>) -> Option<Delivery> {
        let mut inbox = self.lock();
        loop {
            if let Some(slot) = inbox.slots.pop_front() {
                return Some(match slot {
                    Slot::Quote(key) => {
                        let q = inbox.quotes.remove(&key)?;
                        Delivery::Event(Event::Quote(q))
                    }
                    Slot::Other(d) => {
                        inbox.others -= 1;
                        d
                    }
                });
            }
            match deadline {
                None => inbox = self.ready.wait(inbox).unwrap_or_else(|e| e.into_inner()),
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        return None;
                    }
                    inbox = self
                        .ready
                        .wait_timeout(inbox, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::events::{Fill, Side};

    fn quote(contract: &str, bid: f64) -> Quote {
        Quote {
            bid: Some(bid),
            ask: Some(bid + 0.25),
            last: Some(bid),
            ..Quote::empty(contract.into(), "MNQ".into())
        }
    }

    fn fill(id: u64) -> Delivery {
        Delivery::Event(Event::Fill(Fill {
            order_id: id,
            contract: "A".into(),
            symbol: "MNQ".into(),
            side: Side::Buy,
            size: 1,
            price: 1.0,
            fee: 0.0,
            time_ms: 0,
        }))
    }

    #[test]
    fn quotes_coalesce_per_contract_and_fills_keep_order() {
        let m = Mailbox::new("t", 4);
        m.push_quote(quote("A", 1.0));
        m.push(fill(1));
        m.push_quote(quote("B", 5.0));
        m.push_quote(quote("A", 2.0));
        m.push(fill(2));
        m.push_quote(quote("A", 3.0));
        let mut got = Vec::new();
        while let Some(d) = m.pop(Some(Instant::now())) {
            got.push(match d {
                Delivery::Event(Event::Quote(q)) => {
                    format!("{}{}", q.contract, q.bid.unwrap_or_default())
                }
                Delivery::Event(Event::Fill(f)) => format!("f{}", f.order_id),
                _ => unreachable!(),
            });
        }
        assert_eq!(got, ["A3", "f1", "B5", "f2"]);
        assert_eq!(m.quotes_dropped.load(Ordering::Relaxed), 2);
    }
}
