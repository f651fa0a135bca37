//! The queue from the engine to one strategy's thread, bounded by a stated policy:
//!
//! - **Events** (orders, fills, positions, trades, depth, closed bars, feed status) and the host's reload and
//!   stop are always kept, in order: they are few, and losing one would leave a strategy wrong
//!   about its own orders. A warning is logged when more than `event_warn` of them wait.
//! - **Quotes** are all kept, in their place among the events, while the strategy keeps up. Once
//!   its backlog passes the bound (`quote_backlog` quotes waiting, or the oldest item waiting
//!   `quote_backlog_age`), quotes coalesce until it catches up: a quote replaces the waiting one
//!   of its contract, unless an event was queued after that one (a quote never jumps an event).
//!   Waiting quotes are then at most one per contract between two events. A stuck strategy's
//!   quotes coalesce at once. Coalesced quotes are
//!   counted, and each episode is logged when it starts and when it ends. A strategy that
//!   declares `quotes = "latest"` always coalesces, and is not logged for it.
//! - **Webhooks** beyond `webhook_backlog` waiting, and every webhook while the strategy is stuck
//!   (those waiting included) or crashed, are answered at once with the reason (the HTTP layer
//!   answers 503): they carry bodies, and a caller can resend. Counted. (Webhooks the strategy's
//!   thread already took with the call that got stuck run when it returns.)
//! - Once the strategy has **crashed**, nothing is queued any more.
//!
//! The strategy's thread takes everything waiting under one lock per wake-up, and a producer
//! wakes it only when it is waiting: a burst costs one wake-up, not one per quote.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Condvar, MutexGuard};
use std::time::{Duration, Instant};

use super::events::{Event, Quote, WebhookOutcome, WebhookRequest};

/// What the runner of one strategy receives.
#[derive(Debug)]
pub enum Delivery {
    Event(Event),
    Webhook(WebhookRequest),
    /// The file changed: build a new version and swap if it loads.
    Reload,
    /// Stop the strategy and end its thread; the reason is passed to `on_stop`.
    Stop(String),
    /// The operator pauses (`true`) or resumes (`false`) the strategy: while paused it gets no
    /// events, timers or webhooks, across reloads, until resumed.
    Hold(bool),
}

/// The bounds of one mailbox (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub quote_backlog: usize,
    /// `Duration::MAX`: no bound on age, and no clock read per delivery (a backtest, whose
    /// strategies run on simulated time, bounds nothing and reads no wall clock for it).
    pub quote_backlog_age: Duration,
    pub webhook_backlog: usize,
    pub event_warn: usize,
}

/// One stretch of time during which quotes coalesce because the strategy fell behind.
struct Episode {
    started: Instant,
    coalesced: u64,
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Delivery>,
    /// Sequence number of `queue[0]`; every push takes the next one.
    base: u64,
    next: u64,
    /// Sequence number of the last non-quote queued since the consumer last took the queue.
    last_event: Option<u64>,
    /// The waiting quote of each contract, by sequence number; kept only while coalescing.
    latest: HashMap<Arc<str>, u64>,
    quotes: usize,
    webhooks: usize,
    others: usize,
    /// When the oldest waiting item was queued.
    oldest: Option<Instant>,
    consumer_waiting: bool,
    latest_only: bool,
    episode: Option<Episode>,
    coalesced_since_take: u64,
    /// Why webhooks are refused right now (the strategy is stuck).
    refusing: Option<String>,
    /// Why nothing is queued any more (the strategy crashed).
    closed: Option<String>,
    warned_events: bool,
}

/// A queue with many writers (engine, HTTP server, watcher) and one reader (the strategy).
pub struct Mailbox {
    inbox: Mutex<Inbox>,
    ready: Condvar,
    limits: QueueLimits,
    name: String,
    quotes_coalesced: AtomicU64,
    webhooks_refused: AtomicU64,
    /// When the strategy's next timer falls due on the engine clock (`i64::MAX`: none), as its
    /// thread last saw before waiting: a simulated clock is stepped through it.
    next_timer_ms: AtomicI64,
    /// What an untimed mailbox (see [`QueueLimits::quote_backlog_age`]) reads for "now".
    made: Instant,
}

impl Mailbox {
    pub fn new(name: &str, limits: QueueLimits) -> Self {
        Mailbox {
            inbox: Mutex::new(Inbox::default()),
            ready: Condvar::new(),
            limits,
            name: name.to_owned(),
            quotes_coalesced: AtomicU64::new(0),
            webhooks_refused: AtomicU64::new(0),
            next_timer_ms: AtomicI64::new(i64::MAX),
            made: Instant::now(),
        }
    }

    fn now(&self) -> Instant {
        if self.limits.quote_backlog_age == Duration::MAX {
            self.made
        } else {
            Instant::now()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn quotes_coalesced(&self) -> u64 {
        self.quotes_coalesced.load(Ordering::Relaxed)
    }

    pub fn webhooks_refused(&self) -> u64 {
        self.webhooks_refused.load(Ordering::Relaxed)
    }

    /// `quotes = "latest"`: coalesce quotes whatever the backlog.
    pub fn set_latest_only(&self, on: bool) {
        self.lock().latest_only = on;
    }

    /// Queues a delivery: quotes may coalesce, webhooks may be refused (see the module
    /// documentation), anything else is kept.
    pub fn push(&self, d: Delivery) {
        match d {
            Delivery::Event(Event::Quote(q)) => self.push_quote(q),
            Delivery::Webhook(req) => self.push_webhook(req),
            d => {
                let mut inbox = self.lock();
                if inbox.closed.is_some() {
                    return;
                }
                inbox.last_event = Some(inbox.next);
                inbox.others += 1;
                let warn = inbox.others > self.limits.event_warn && !inbox.warned_events;
                inbox.warned_events |= warn;
                let backlog = inbox.others;
                let wake = enqueue(&mut inbox, d, self.now());
                drop(inbox);
                if warn {
                    tracing::warn!(strategy = %self.name, backlog, "strategy is falling behind: events are queuing up (none is dropped)");
                }
                self.wake(wake);
            }
        }
    }

    fn wake(&self, wake: bool) {
        if wake {
            self.ready.notify_one();
        }
    }

    fn push_quote(&self, q: Quote) {
        let now = self.now();
        let mut inbox = self.lock();
        if inbox.closed.is_some() {
            return;
        }
        let mut started = None;
        let coalesce = inbox.latest_only || inbox.episode.is_some() || {
            let age = inbox.oldest.map_or(Duration::ZERO, |t| now - t);
            // A stuck strategy is behind by definition.
            let over = inbox.quotes >= self.limits.quote_backlog
                || age >= self.limits.quote_backlog_age
                || inbox.refusing.is_some();
            if over {
                inbox.episode = Some(Episode {
                    started: now,
                    coalesced: 0,
                });
                started = Some((inbox.quotes, age));
            }
            over
        };
        if coalesce {
            let waiting = inbox.latest.get(&q.contract).copied();
            if let Some(seq) = waiting.filter(|s| inbox.last_event.is_none_or(|e| *s > e)) {
                let at = (seq - inbox.base) as usize;
                if let Some(Delivery::Event(Event::Quote(slot))) = inbox.queue.get_mut(at) {
                    *slot = q;
                    inbox.coalesced_since_take += 1;
                    if let Some(ep) = &mut inbox.episode {
                        ep.coalesced += 1;
                    }
                    self.quotes_coalesced.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            let seq = inbox.next;
            inbox.latest.insert(q.contract.clone(), seq);
        }
        inbox.quotes += 1;
        let wake = enqueue(&mut inbox, Delivery::Event(Event::Quote(q)), now);
        drop(inbox);
        if let Some((waiting, age)) = started {
            tracing::warn!(
                strategy = %self.name,
                waiting,
                oldest_ms = age.as_millis() as u64,
                "strategy is falling behind: quotes now coalesce (latest per contract) until it catches up"
            );
        }
        self.wake(wake);
    }

    fn push_webhook(&self, req: WebhookRequest) {
        let mut inbox = self.lock();
        let refusal = if let Some(why) = inbox.closed.as_ref().or(inbox.refusing.as_ref()) {
            Some(why.clone())
        } else if inbox.webhooks >= self.limits.webhook_backlog {
            Some(format!(
                "strategy is busy: {} webhooks are already waiting",
                inbox.webhooks
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            drop(inbox);
            self.refuse(req, why);
            return;
        }
        inbox.webhooks += 1;
        inbox.last_event = Some(inbox.next);
        let wake = enqueue(&mut inbox, Delivery::Webhook(req), self.now());
        drop(inbox);
        self.wake(wake);
    }

    fn refuse(&self, req: WebhookRequest, why: String) {
        self.webhooks_refused.fetch_add(1, Ordering::Relaxed);
        let _ = req.reply.send(WebhookOutcome::failed(why));
    }

    /// While `Some`, webhooks are answered at once with the reason, the waiting ones too (the
    /// strategy is stuck); `None` takes them again.
    pub fn refuse_webhooks(&self, why: Option<String>) {
        let mut inbox = self.lock();
        inbox.refusing = why.clone();
        let Some(why) = why else { return };
        if inbox.webhooks == 0 {
            return;
        }
        let refused = take_webhooks(&mut inbox);
        drop(inbox);
        for req in refused {
            self.refuse(req, why.clone());
        }
    }

    /// The strategy crashed: refuse its waiting webhooks with `why`, drop everything else, and
    /// queue nothing from now on.
    pub fn close(&self, why: String) {
        let mut inbox = self.lock();
        inbox.closed = Some(why.clone());
        let refused = take_webhooks(&mut inbox);
        inbox.queue.clear();
        (inbox.quotes, inbox.others, inbox.base) = (0, 0, inbox.next);
        drop(inbox);
        for req in refused {
            self.refuse(req, why.clone());
        }
    }

    /// Set by the strategy's thread before it waits (see [`Mailbox::next_timer_ms`]).
    pub fn set_next_timer(&self, due_ms: Option<i64>) {
        self.next_timer_ms
            .store(due_ms.unwrap_or(i64::MAX), Ordering::Release);
    }

    /// When the strategy's next timer falls due, as its thread last saw.
    pub fn next_timer_ms(&self) -> Option<i64> {
        let due = self.next_timer_ms.load(Ordering::Acquire);
        (due != i64::MAX).then_some(due)
    }

    /// As [`Mailbox::take`], never waiting: for a strategy stepped on its caller's thread.
    pub fn try_take(&self, into: &mut VecDeque<Delivery>) {
        let inbox = self.lock();
        if !inbox.queue.is_empty() {
            self.take_from(inbox, into);
        }
    }

    /// Moves everything waiting into `into` (which must be empty), waiting until `deadline` (or
    /// forever) when nothing is.
    pub fn take(&self, into: &mut VecDeque<Delivery>, deadline: Option<Instant>) {
        let mut inbox = self.lock();
        while inbox.queue.is_empty() {
            inbox.consumer_waiting = true;
            inbox = match deadline {
                None => self.ready.wait(inbox).unwrap_or_else(|e| e.into_inner()),
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        inbox.consumer_waiting = false;
                        return;
                    }
                    self.ready
                        .wait_timeout(inbox, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            inbox.consumer_waiting = false;
        }
        self.take_from(inbox, into);
    }

    fn take_from(&self, mut inbox: MutexGuard<'_, Inbox>, into: &mut VecDeque<Delivery>) {
        std::mem::swap(&mut inbox.queue, into);
        let now = self.now();
        let age = inbox.oldest.map_or(Duration::ZERO, |t| now - t);
        let caught_up = inbox.coalesced_since_take == 0
            && inbox.quotes < self.limits.quote_backlog
            && age < self.limits.quote_backlog_age;
        let ended = if caught_up {
            inbox.episode.take()
        } else {
            None
        };
        inbox.base = inbox.next;
        inbox.last_event = None;
        inbox.latest.clear();
        (inbox.quotes, inbox.webhooks, inbox.others) = (0, 0, 0);
        inbox.oldest = None;
        inbox.coalesced_since_take = 0;
        inbox.warned_events = false;
        drop(inbox);
        if let Some(ep) = ended {
            tracing::info!(
                strategy = %self.name,
                coalesced = ep.coalesced,
                lasted_ms = (now - ep.started).as_millis() as u64,
                "strategy caught up: quotes are delivered one by one again"
            );
        }
    }
}

/// Appends `d`; returns whether the consumer must be woken.
fn enqueue(inbox: &mut Inbox, d: Delivery, now: Instant) -> bool {
    if inbox.queue.is_empty() {
        inbox.oldest = Some(now);
    }
    inbox.queue.push_back(d);
    inbox.next += 1;
    inbox.consumer_waiting
}

/// Takes the waiting webhooks out of the queue, keeping everything else in order.
fn take_webhooks(inbox: &mut Inbox) -> Vec<WebhookRequest> {
    let mut out = Vec::new();
    let queue = std::mem::take(&mut inbox.queue);
    for d in queue {
        match d {
            Delivery::Webhook(req) => out.push(req),
            d => inbox.queue.push_back(d),
        }
    }
    // Positions moved: renumber what is left and forget the quote index (the next quote of a
    // contract is then queued rather than coalesced, which is always allowed).
    inbox.base = inbox.next - inbox.queue.len() as u64;
    inbox.latest.clear();
    inbox.webhooks = 0;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::events::{Fill, Side, WebhookBody};

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

    fn limits(quote_backlog: usize) -> QueueLimits {
        QueueLimits {
            quote_backlog,
            quote_backlog_age: Duration::from_secs(3600),
            webhook_backlog: 2,
            event_warn: 100,
        }
    }

    fn drain(m: &Mailbox) -> Vec<String> {
        let mut batch = VecDeque::new();
        m.take(&mut batch, Some(Instant::now()));
        batch
            .into_iter()
            .map(|d| match d {
                Delivery::Event(Event::Quote(q)) => {
                    format!("{}{}", q.contract, q.bid.unwrap_or_default())
                }
                Delivery::Event(Event::Fill(f)) => format!("f{}", f.order_id),
                Delivery::Event(Event::Bar(b)) => format!("b{}", b.bar.time_ms),
                Delivery::Webhook(_) => "w".into(),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn under_the_bound_every_quote_is_kept_in_order_with_the_events() {
        let m = Mailbox::new("t", limits(100));
        m.push(Delivery::Event(Event::Quote(quote("A", 1.0))));
        m.push(fill(1));
        m.push(Delivery::Event(Event::Quote(quote("A", 2.0))));
        m.push(Delivery::Event(Event::Quote(quote("A", 3.0))));
        assert_eq!(drain(&m), ["A1", "f1", "A2", "A3"]);
        assert_eq!(m.quotes_coalesced(), 0);
    }

    #[test]
    fn over_the_bound_quotes_coalesce_per_contract_but_never_jump_an_event() {
        let m = Mailbox::new("t", limits(2));
        for (c, bid) in [("A", 1.0), ("B", 1.0)] {
            m.push(Delivery::Event(Event::Quote(quote(c, bid))));
        }
        // Over the bound from here on.
        m.push(Delivery::Event(Event::Quote(quote("A", 2.0))));
        m.push(Delivery::Event(Event::Quote(quote("A", 3.0))));
        m.push(fill(1));
        m.push(Delivery::Event(Event::Quote(quote("A", 4.0))));
        m.push(Delivery::Event(Event::Quote(quote("B", 2.0))));
        m.push(Delivery::Event(Event::Quote(quote("A", 5.0))));
        assert_eq!(drain(&m), ["A1", "B1", "A3", "f1", "A5", "B2"]);
        assert_eq!(m.quotes_coalesced(), 2);
        // The episode lasts until a take finds nothing coalesced.
        m.push(Delivery::Event(Event::Quote(quote("A", 6.0))));
        m.push(Delivery::Event(Event::Quote(quote("A", 7.0))));
        assert_eq!(drain(&m), ["A7"]);
        m.push(Delivery::Event(Event::Quote(quote("A", 8.0))));
        assert_eq!(drain(&m), ["A8"]);
        m.push(Delivery::Event(Event::Quote(quote("A", 9.0))));
        m.push(Delivery::Event(Event::Quote(quote("A", 10.0))));
        assert_eq!(drain(&m), ["A9", "A10"]);
        assert_eq!(m.quotes_coalesced(), 3);
    }

    #[test]
    fn bars_are_never_coalesced_even_while_quotes_are() {
        let m = Mailbox::new("t", limits(1));
        let bar = |t: i64| {
            Delivery::Event(Event::Bar(crate::bars::BarEvent {
                contract: "A".into(),
                symbol: "MNQ".into(),
                timeframe: crate::bars::Timeframe::parse("1s").unwrap(),
                bar: crate::bars::Bar {
                    time_ms: t,
                    open: 1.0,
                    high: 1.0,
                    low: 1.0,
                    close: 1.0,
                    volume: 1,
                },
            }))
        };
        m.push(Delivery::Event(Event::Quote(quote("A", 1.0))));
        m.push(Delivery::Event(Event::Quote(quote("A", 2.0))));
        m.push(bar(1));
        m.push(bar(2));
        m.push(Delivery::Event(Event::Quote(quote("A", 3.0))));
        m.push(Delivery::Event(Event::Quote(quote("A", 4.0))));
        m.push(bar(3));
        assert_eq!(drain(&m), ["A1", "A2", "b1", "b2", "A4", "b3"]);
        assert_eq!(m.quotes_coalesced(), 1);
    }

    #[test]
    fn webhooks_beyond_the_bound_or_while_refusing_are_answered_at_once() {
        let m = Mailbox::new("t", limits(100));
        let mut replies = Vec::new();
        for _ in 0..3 {
            let (req, rx) = WebhookRequest::new(WebhookBody::Text("x".into()));
            m.push(Delivery::Webhook(req));
            replies.push(rx);
        }
        let busy = replies
            .pop()
            .unwrap()
            .blocking_recv()
            .unwrap()
            .reply
            .unwrap_err();
        assert!(busy.starts_with("strategy is busy"), "{busy}");
        m.push(Delivery::Event(Event::Quote(quote("A", 1.0))));
        m.refuse_webhooks(Some("strategy is stuck: on_quote".into()));
        for rx in replies {
            let why = rx.blocking_recv().unwrap().reply.unwrap_err();
            assert_eq!(why, "strategy is stuck: on_quote");
        }
        m.push(Delivery::Event(Event::Quote(quote("A", 2.0))));
        assert_eq!(drain(&m), ["A1", "A2"]);
        assert_eq!(m.webhooks_refused(), 3);
        m.refuse_webhooks(None);
        let (req, _rx) = WebhookRequest::new(WebhookBody::Text("x".into()));
        m.push(Delivery::Webhook(req));
        assert_eq!(drain(&m), ["w"]);
    }

    #[test]
    fn a_closed_mailbox_queues_nothing() {
        let m = Mailbox::new("t", limits(100));
        m.push(fill(1));
        m.close("strategy crashed".into());
        m.push(fill(2));
        m.push(Delivery::Event(Event::Quote(quote("A", 1.0))));
        let (req, rx) = WebhookRequest::new(WebhookBody::Text("x".into()));
        m.push(Delivery::Webhook(req));
        assert_eq!(
            rx.blocking_recv().unwrap().reply.unwrap_err(),
            "strategy crashed"
        );
        assert!(drain(&m).is_empty());
    }
}
