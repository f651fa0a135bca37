//! The ProjectX market feed: quote/trade/depth subscriptions on the market hub, and the sink
//! that turns each hub event, inside the hub's connection task, into merged [`Quote`](crate::market::Quote)s, domain
//! trades and depth, and stale/resumed reports, queued for the engine on a bounded
//! [`MarketQueue`] (gateway doc §5).
//!
//! One task hop per quote: the connection task decodes, merges and queues; the engine pops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

pub use super::events::MarketEvent;
use super::market_data::{
    DepthEntry, MarketTrade, QuoteBook, decode_items, decode_quote, depth_to_domain,
};
use super::queue::{MarketQueue, QueueCounters};
use super::record::RecordTap;
use super::stale::StaleTracker;
use crate::gateway::hub_names::{
    DEPTH_EVENT, MARKET_TRADE_EVENT, QUOTE_EVENT, SUBSCRIBE_DEPTH, SUBSCRIBE_MARKET_TRADES,
    SUBSCRIBE_QUOTES, UNSUBSCRIBE_DEPTH, UNSUBSCRIBE_MARKET_TRADES, UNSUBSCRIBE_QUOTES,
};
use crate::market::Trade;
use crate::signalr::TokenSource;
use crate::signalr::{ConnectionState, EventSink, HubConfig, HubConnection, HubError, HubEvent};

/// How many market events may wait for the engine before quotes conflate: about 80 ms at
/// 200,000 quotes/s, enough to ride out the tens of milliseconds a shared machine takes the
/// engine's cores away (4,096, 20 ms at that rate, conflated in 2 of 3 benchmark runs), far
/// more than an engine that keeps up ever holds, and a few MiB at most.
pub const DEFAULT_QUEUE_BOUND: usize = 16_384;

#[derive(Debug, Clone)]
pub struct MarketFeedConfig {
    pub hub: HubConfig,
    /// The quote event's name: `GatewayQuote` unless `PROJECT_X_QUOTE_EVENT` says otherwise.
    pub quote_event: String,
    /// A quote-subscribed contract silent this long is reported [`MarketEvent::Stale`].
    pub stale_after: Duration,
    /// Events waiting for the engine past which quotes conflate ([`MarketQueue`]).
    pub queue_bound: usize,
    /// Where the queue counts conflated quotes and dropped trades/depth.
    pub counters: QueueCounters,
    /// Records every quote, trade and depth update as it is queued (`RECORD_DIR`).
    pub record: Option<RecordTap>,
}

impl MarketFeedConfig {
    /// Defaults: `GatewayQuote`, stale after 30 s, [`DEFAULT_QUEUE_BOUND`], counters of its own.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            hub: HubConfig::new("market", url),
            quote_event: QUOTE_EVENT.into(),
            stale_after: Duration::from_secs(30),
            queue_bound: DEFAULT_QUEUE_BOUND,
            counters: QueueCounters::default(),
            record: None,
        }
    }
}

/// What the handle, the sink and the stale clock share: the names strategies use for each
/// contract, and the stale clock. Locked once per quote, never across an await.
#[derive(Debug)]
struct Watched {
    names: HashMap<Arc<str>, Arc<str>>,
    stale: StaleTracker,
}

type SharedWatch = Arc<Mutex<Watched>>;

fn lock(w: &SharedWatch) -> std::sync::MutexGuard<'_, Watched> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

/// The receiving end of the market feed, for the engine.
#[derive(Debug)]
pub struct MarketEvents(Arc<MarketQueue>);

impl MarketEvents {
    /// The next event; `None` once the feed is closed and everything queued was read.
    pub async fn recv(&mut self) -> Option<MarketEvent> {
        self.0.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<MarketEvent> {
        self.0.try_recv()
    }

    /// The queue behind it (depth, bound, counters).
    pub fn queue(&self) -> &MarketQueue {
        &self.0
    }
}

impl Drop for MarketEvents {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// A market feed. Cheap to clone; the connection closes when every clone is dropped or
/// [`MarketFeed::close`] is called.
#[derive(Debug, Clone)]
pub struct MarketFeed {
    conn: HubConnection,
    watched: SharedWatch,
}

impl MarketFeed {
    /// Starts the connection in the background (reconnecting forever); events arrive on the
    /// returned receiver.
    pub fn spawn<T: TokenSource>(config: MarketFeedConfig, tokens: T) -> (Self, MarketEvents) {
        let (sink, watched, events) = Self::parts(&config);
        let conn = HubConnection::spawn_with(config.hub.clone(), tokens, sink);
        Self::finish(config, conn, watched, events)
    }

    /// Connects once before returning, so a bad token or URL is reported at once.
    ///
    /// # Errors
    /// See [`HubConnection::connect`].
    pub async fn connect<T: TokenSource>(
        config: MarketFeedConfig,
        tokens: T,
    ) -> Result<(Self, MarketEvents), HubError> {
        let (sink, watched, events) = Self::parts(&config);
        let conn = HubConnection::connect_with(config.hub.clone(), tokens, sink).await?;
        Ok(Self::finish(config, conn, watched, events))
    }

    fn parts(config: &MarketFeedConfig) -> (MarketSink, SharedWatch, MarketEvents) {
        let queue = Arc::new(MarketQueue::new(
            config.queue_bound,
            config.counters.clone(),
        ));
        let watched = Arc::new(Mutex::new(Watched {
            names: HashMap::new(),
            stale: StaleTracker::new(config.stale_after),
        }));
        let sink = MarketSink {
            quote_event: config.quote_event.clone(),
            book: QuoteBook::default(),
            watched: watched.clone(),
            queue: queue.clone(),
            record: config.record.clone(),
        };
        (sink, watched, MarketEvents(queue))
    }

    fn finish(
        config: MarketFeedConfig,
        conn: HubConnection,
        watched: SharedWatch,
        events: MarketEvents,
    ) -> (Self, MarketEvents) {
        tokio::spawn(stale_clock(
            config.stale_after,
            watched.clone(),
            events.0.clone(),
        ));
        (Self { conn, watched }, events)
    }

    pub fn connection(&self) -> &HubConnection {
        &self.conn
    }

    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.conn.state()
    }

    /// Subscribes to a contract's quotes, which strategies know as `symbol` (quotes carry it),
    /// and watches it for staleness.
    ///
    /// # Errors
    /// See [`HubConnection::subscribe`].
    pub async fn subscribe_quotes(
        &self,
        contract_id: &str,
        symbol: Arc<str>,
    ) -> Result<(), HubError> {
        {
            let mut w = lock(&self.watched);
            w.names.insert(contract_id.into(), symbol);
            w.stale.watch(contract_id, Instant::now());
        }
        let result = self
            .conn
            .subscribe(SUBSCRIBE_QUOTES, vec![json!(contract_id)])
            .await;
        if let Err(HubError::Server { .. }) = &result {
            lock(&self.watched).stale.unwatch(contract_id);
        }
        result
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_quotes(&self, contract_id: &str) -> Result<(), HubError> {
        lock(&self.watched).stale.unwatch(contract_id);
        self.conn
            .unsubscribe(
                SUBSCRIBE_QUOTES,
                UNSUBSCRIBE_QUOTES,
                vec![json!(contract_id)],
            )
            .await
    }

    /// # Errors
    /// See [`HubConnection::subscribe`].
    pub async fn subscribe_trades(&self, contract_id: &str) -> Result<(), HubError> {
        self.conn
            .subscribe(SUBSCRIBE_MARKET_TRADES, vec![json!(contract_id)])
            .await
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_trades(&self, contract_id: &str) -> Result<(), HubError> {
        self.conn
            .unsubscribe(
                SUBSCRIBE_MARKET_TRADES,
                UNSUBSCRIBE_MARKET_TRADES,
                vec![json!(contract_id)],
            )
            .await
    }

    /// # Errors
    /// See [`HubConnection::subscribe`].
    pub async fn subscribe_depth(&self, contract_id: &str) -> Result<(), HubError> {
        self.conn
            .subscribe(SUBSCRIBE_DEPTH, vec![json!(contract_id)])
            .await
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_depth(&self, contract_id: &str) -> Result<(), HubError> {
        self.conn
            .unsubscribe(SUBSCRIBE_DEPTH, UNSUBSCRIBE_DEPTH, vec![json!(contract_id)])
            .await
    }

    pub async fn close(&self) {
        self.conn.close().await;
    }
}

/// Reports silent contracts four times per period (bounding the report's lateness to a quarter
/// of it), until the feed closes or nobody reads.
async fn stale_clock(after: Duration, watched: SharedWatch, queue: Arc<MarketQueue>) {
    let every = (after / 4).max(Duration::from_millis(5));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if queue.is_closed() || queue.is_abandoned() {
            return;
        }
        let silent = lock(&watched).stale.check(Instant::now());
        for (contract_id, silent_for) in silent {
            tracing::warn!(contract = %contract_id, ?silent_for, "quotes are stale");
            queue.push(MarketEvent::Stale {
                contract_id: contract_id.into(),
                silent_for,
            });
        }
    }
}

/// Runs inside the market hub's connection task: decodes, merges and queues each event.
struct MarketSink {
    quote_event: String,
    book: QuoteBook,
    watched: SharedWatch,
    queue: Arc<MarketQueue>,
    record: Option<RecordTap>,
}

impl Drop for MarketSink {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl EventSink for MarketSink {
    async fn event(&mut self, ev: HubEvent) -> bool {
        self.on_event(ev);
        !self.queue.is_abandoned()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl MarketSink {
    fn on_event(&mut self, ev: HubEvent) {
        let done = if ev.target == self.quote_event {
            decode_quote(&ev.arguments).map(|(id, update)| {
                let (resumed, symbol) = {
                    let mut w = lock(&self.watched);
                    (
                        w.stale.on_quote(id, Instant::now()),
                        w.names.get(id).cloned(),
                    )
                };
                let quote = self.book.apply(id, symbol.as_ref(), &update, now_ms);
                if resumed {
                    self.queue.push(MarketEvent::Resumed {
                        contract_id: quote.contract.clone(),
                    });
                }
                let quote = MarketEvent::Quote(quote.clone());
                self.emit(quote);
            })
        } else if ev.target == MARKET_TRADE_EVENT {
            decode_items::<MarketTrade>(&ev.arguments).map(|(id, trades)| {
                let (contract, symbol) = self.names(id);
                let now = now_ms();
                let trades: Vec<Trade> = trades
                    .iter()
                    .filter_map(|t| t.to_domain(&contract, &symbol, now))
                    .collect();
                if !trades.is_empty() {
                    self.emit(MarketEvent::Trades(trades));
                }
            })
        } else if ev.target == DEPTH_EVENT {
            decode_items::<DepthEntry>(&ev.arguments).map(|(id, entries)| {
                let (contract, symbol) = self.names(id);
                let depth = depth_to_domain(&entries, &contract, &symbol, now_ms());
                self.emit(MarketEvent::Depth(depth));
            })
        } else {
            tracing::debug!(target = %ev.target, "market hub event not handled here");
            Ok(())
        };
        if let Err(e) = done {
            // Logged with the payload (market data holds no secrets) so a format change can be
            // diagnosed from the log alone.
            let args = serde_json::Value::Array(ev.arguments);
            tracing::warn!(event = %ev.target, %args, "undecodable market hub event: {e}");
        }
    }

    /// Queues market data for the engine, recording it first when recording is on.
    fn emit(&self, event: MarketEvent) {
        if let Some(tap) = &self.record {
            tap.record(&event);
        }
        self.queue.push(event);
    }

    /// The contract's id and the name strategies use for it, shared with its quotes.
    fn names(&self, id: &str) -> (Arc<str>, Arc<str>) {
        if let Some(q) = self.book.get(id) {
            return (q.contract.clone(), q.symbol.clone());
        }
        let contract: Arc<str> = id.into();
        let symbol = lock(&self.watched)
            .names
            .get(id)
            .cloned()
            .unwrap_or_else(|| contract.clone());
        (contract, symbol)
    }
}
