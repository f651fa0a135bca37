//! The ProjectX market hub client: quote/trade/depth subscriptions, and a task that turns hub
//! events into merged quotes, trades, depth and stale/resumed reports (gateway doc §5).

use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::auth::TokenSource;
use super::connection::{HubConfig, HubConnection, HubError, HubEvent};
pub use super::market_data::{
    DepthEntry, MarketTrade, Quote, QuoteBook, StaleTracker, decode_items, decode_quote,
};
use super::state::ConnectionState;

pub const DEFAULT_QUOTE_EVENT: &str = "GatewayQuote";
pub const TRADE_EVENT: &str = "GatewayTrade";
pub const DEPTH_EVENT: &str = "GatewayDepth";

/// Hub method names (the simulator serves the same ones).
pub const SUBSCRIBE_QUOTES: &str = "SubscribeContractQuotes";
pub const UNSUBSCRIBE_QUOTES: &str = "UnsubscribeContractQuotes";
pub const SUBSCRIBE_TRADES: &str = "SubscribeContractTrades";
pub const UNSUBSCRIBE_TRADES: &str = "UnsubscribeContractTrades";
pub const SUBSCRIBE_DEPTH: &str = "SubscribeContractMarketDepth";
pub const UNSUBSCRIBE_DEPTH: &str = "UnsubscribeContractMarketDepth";

/// What the market hub reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MarketEvent {
    /// A quote update, already merged: the latest known state of the contract.
    Quote { contract_id: String, quote: Quote },
    Trades {
        contract_id: String,
        trades: Vec<MarketTrade>,
    },
    Depth {
        contract_id: String,
        entries: Vec<DepthEntry>,
    },
    /// A quote-subscribed contract has had no quote for `silent_for` (reported once per silence).
    Stale {
        contract_id: String,
        silent_for: Duration,
    },
    /// Quotes came back for a contract reported stale.
    Resumed { contract_id: String },
    /// An event this client does not know (e.g. a quote event name other than the configured one).
    Other(HubEvent),
}

#[derive(Debug, Clone)]
pub struct MarketHubConfig {
    pub hub: HubConfig,
    /// The quote event's name: `GatewayQuote` unless `PROJECT_X_QUOTE_EVENT` says otherwise.
    pub quote_event: String,
    /// A quote-subscribed contract silent this long is reported [`MarketEvent::Stale`].
    pub stale_after: Duration,
}

impl MarketHubConfig {
    /// Defaults: `GatewayQuote`, stale after 30 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            hub: HubConfig::new("market", url),
            quote_event: DEFAULT_QUOTE_EVENT.into(),
            stale_after: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
enum WatchCmd {
    Watch(String),
    Unwatch(String),
}

/// A market hub client. Cheap to clone; the connection closes when every clone is dropped or
/// [`MarketHub::close`] is called.
#[derive(Debug, Clone)]
pub struct MarketHub {
    conn: HubConnection,
    watch: mpsc::UnboundedSender<WatchCmd>,
}

impl MarketHub {
    /// Starts the connection in the background (reconnecting forever); events arrive on the
    /// returned receiver.
    pub fn spawn<T: TokenSource>(
        config: MarketHubConfig,
        tokens: T,
    ) -> (Self, mpsc::UnboundedReceiver<MarketEvent>) {
        let (conn, events) = HubConnection::spawn(config.hub.clone(), tokens);
        Self::start(config, conn, events)
    }

    /// Connects once before returning, so a bad token or URL is reported at once.
    ///
    /// # Errors
    /// See [`HubConnection::connect`].
    pub async fn connect<T: TokenSource>(
        config: MarketHubConfig,
        tokens: T,
    ) -> Result<(Self, mpsc::UnboundedReceiver<MarketEvent>), HubError> {
        let (conn, events) = HubConnection::connect(config.hub.clone(), tokens).await?;
        Ok(Self::start(config, conn, events))
    }

    fn start(
        config: MarketHubConfig,
        conn: HubConnection,
        events: mpsc::UnboundedReceiver<HubEvent>,
    ) -> (Self, mpsc::UnboundedReceiver<MarketEvent>) {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (watch_tx, watch_rx) = mpsc::unbounded_channel();
        tokio::spawn(translate(config, events, watch_rx, out_tx));
        (
            Self {
                conn,
                watch: watch_tx,
            },
            out_rx,
        )
    }

    pub fn connection(&self) -> &HubConnection {
        &self.conn
    }

    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.conn.state()
    }

    /// Subscribes to a contract's quotes (and watches it for staleness).
    ///
    /// # Errors
    /// See [`HubConnection::subscribe`].
    pub async fn subscribe_quotes(&self, contract_id: &str) -> Result<(), HubError> {
        let _ = self.watch.send(WatchCmd::Watch(contract_id.into()));
        let result = self
            .conn
            .subscribe(SUBSCRIBE_QUOTES, vec![json!(contract_id)])
            .await;
        if let Err(HubError::Server { .. }) = &result {
            let _ = self.watch.send(WatchCmd::Unwatch(contract_id.into()));
        }
        result
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_quotes(&self, contract_id: &str) -> Result<(), HubError> {
        let _ = self.watch.send(WatchCmd::Unwatch(contract_id.into()));
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
            .subscribe(SUBSCRIBE_TRADES, vec![json!(contract_id)])
            .await
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_trades(&self, contract_id: &str) -> Result<(), HubError> {
        self.conn
            .unsubscribe(
                SUBSCRIBE_TRADES,
                UNSUBSCRIBE_TRADES,
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

/// Turns raw hub events into market events, merging quotes and watching for silence. Runs until
/// the connection's event stream ends or nobody listens any more.
async fn translate(
    config: MarketHubConfig,
    mut events: mpsc::UnboundedReceiver<HubEvent>,
    mut watch_rx: mpsc::UnboundedReceiver<WatchCmd>,
    out: mpsc::UnboundedSender<MarketEvent>,
) {
    let mut book = QuoteBook::default();
    let mut stale = StaleTracker::new(config.stale_after);
    // Checking four times per period bounds the report's lateness to a quarter of the period.
    let every = (config.stale_after / 4).max(Duration::from_millis(5));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let sent = tokio::select! {
            ev = events.recv() => match ev {
                None => return,
                Some(ev) => on_event(&config, &mut book, &mut stale, ev, &out),
            },
            Some(cmd) = watch_rx.recv() => {
                match cmd {
                    WatchCmd::Watch(id) => stale.watch(&id, Instant::now()),
                    WatchCmd::Unwatch(id) => stale.unwatch(&id),
                }
                true
            }
            _ = tick.tick() => stale
                .check(Instant::now())
                .into_iter()
                .all(|(contract_id, silent_for)| {
                    tracing::warn!(contract = %contract_id, ?silent_for, "quotes are stale");
                    out.send(MarketEvent::Stale { contract_id, silent_for }).is_ok()
                }),
        };
        if !sent {
            return;
        }
    }
}

/// Handles one hub event; `false` when the receiver of market events is gone.
fn on_event(
    config: &MarketHubConfig,
    book: &mut QuoteBook,
    stale: &mut StaleTracker,
    ev: HubEvent,
    out: &mpsc::UnboundedSender<MarketEvent>,
) -> bool {
    let decoded = if ev.target == config.quote_event {
        decode_quote(&ev.arguments).map(|(id, update)| {
            let quote = book.apply(id, &update).clone();
            let mut events = Vec::with_capacity(1);
            if stale.on_quote(id, Instant::now()) {
                events.push(MarketEvent::Resumed {
                    contract_id: id.to_string(),
                });
            }
            events.push(MarketEvent::Quote {
                contract_id: id.to_string(),
                quote,
            });
            events
        })
    } else if ev.target == TRADE_EVENT {
        decode_items(&ev.arguments).map(|(id, trades)| {
            vec![MarketEvent::Trades {
                contract_id: id.to_string(),
                trades,
            }]
        })
    } else if ev.target == DEPTH_EVENT {
        decode_items(&ev.arguments).map(|(id, entries)| {
            vec![MarketEvent::Depth {
                contract_id: id.to_string(),
                entries,
            }]
        })
    } else {
        tracing::debug!(target = %ev.target, "market hub event not handled here");
        Ok(vec![MarketEvent::Other(ev.clone())])
    };
    match decoded {
        Ok(events) => events.into_iter().all(|e| out.send(e).is_ok()),
        Err(e) => {
            // Logged with the payload (market data holds no secrets) so a format change can be
            // diagnosed from the log alone.
            let args = serde_json::Value::Array(ev.arguments);
            tracing::warn!(event = %ev.target, %args, "undecodable market hub event: {e}");
            true
        }
    }
}
