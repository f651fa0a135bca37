//! The events the engine delivers to strategies: plain Rust values with no Lua or wire types.
//! Market data (quotes, trades, depth) and [`Side`] are the shared [`crate::market`] types.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::oneshot;

pub use crate::bars::BarEvent;
pub use crate::market::{Depth, DepthLevel, Quote, Side, Trade};

/// A change of one of the strategy's orders.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent {
    /// The local id `bot.buy` returned in the handle.
    pub id: u64,
    pub contract: Arc<str>,
    pub symbol: Arc<str>,
    pub side: Side,
    pub size: i64,
    pub filled: i64,
    /// `"pending"`, `"open"`, `"filled"`, `"cancelled"`, `"rejected"`, ...
    pub status: String,
    pub price: Option<f64>,
    pub stop_price: Option<f64>,
    pub tag: Option<String>,
    /// Why the gateway rejected or the engine gave up on the order (`OrderRejected: …`).
    pub reason: Option<String>,
    pub time_ms: i64,
}

/// An execution of one of the strategy's orders.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    pub order_id: u64,
    pub contract: Arc<str>,
    pub symbol: Arc<str>,
    pub side: Side,
    pub size: i64,
    pub price: f64,
    pub fee: f64,
    pub time_ms: i64,
}

/// The net position on one contract after a change.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionEvent {
    pub contract: Arc<str>,
    pub symbol: Arc<str>,
    /// Signed: positive long, negative short, zero flat.
    pub size: i64,
    pub avg_price: f64,
}

/// State of the market data feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStatus {
    Live,
    Stale,
    Reconnecting,
}

impl FeedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedStatus::Live => "live",
            FeedStatus::Stale => "stale",
            FeedStatus::Reconnecting => "reconnecting",
        }
    }
}

/// Everything the engine can route to strategies. Webhooks travel separately
/// ([`WebhookRequest`]) because they carry a reply channel and go to exactly one strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Quote(Quote),
    Trade(Trade),
    Depth(Depth),
    Order(OrderEvent),
    Fill(Fill),
    Position(PositionEvent),
    Feed(FeedStatus),
    /// A closed bar: in order with everything else, never coalesced or dropped.
    Bar(BarEvent),
}

impl Event {
    /// The contract and symbol an event is about, for routing; `None` for feed status.
    pub fn instrument(&self) -> Option<(&str, &str)> {
        match self {
            Event::Quote(q) => Some((&q.contract, &q.symbol)),
            Event::Trade(t) => Some((&t.contract, &t.symbol)),
            Event::Depth(d) => Some((&d.contract, &d.symbol)),
            Event::Order(o) => Some((&o.contract, &o.symbol)),
            Event::Fill(f) => Some((&f.contract, &f.symbol)),
            Event::Position(p) => Some((&p.contract, &p.symbol)),
            Event::Bar(b) => Some((&b.contract, &b.symbol)),
            Event::Feed(_) => None,
        }
    }
}

/// A webhook body: decoded JSON when it parsed, the raw text otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookBody {
    Json(serde_json::Value),
    Text(String),
}

impl WebhookBody {
    /// Decodes JSON when possible, keeping the text when not (TradingView can send plain text).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match serde_json::from_slice(bytes) {
            Ok(v) => WebhookBody::Json(v),
            Err(_) => WebhookBody::Text(String::from_utf8_lossy(bytes).into_owned()),
        }
    }
}

/// What `on_webhook` returned, as JSON (`nil` becomes `{"ok":true}`), or why it failed.
pub type WebhookReply = Result<serde_json::Value, String>;

/// What came of one webhook: the handler's reply, and how many orders it placed.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookOutcome {
    pub reply: WebhookReply,
    /// Accepted order-placing `bot` calls (buy, sell, flatten) the handler made, counted by the
    /// strategy's runner. Once this is above 0 the relay must never answer 5xx: TradingView
    /// resends on a 5xx, and the resend would trade again.
    pub orders_placed: u64,
}

impl WebhookOutcome {
    /// A webhook that never reached a handler.
    pub fn failed(why: impl Into<String>) -> Self {
        WebhookOutcome {
            reply: Err(why.into()),
            orders_placed: 0,
        }
    }
}

/// An HTTP webhook for one strategy, answered through `reply`.
#[derive(Debug)]
pub struct WebhookRequest {
    pub body: WebhookBody,
    /// Lower-cased header names.
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub reply: oneshot::Sender<WebhookOutcome>,
}

impl WebhookRequest {
    /// A request and the receiver its answer arrives on.
    pub fn new(body: WebhookBody) -> (Self, oneshot::Receiver<WebhookOutcome>) {
        let (tx, rx) = oneshot::channel();
        let req = WebhookRequest {
            body,
            headers: BTreeMap::new(),
            query: BTreeMap::new(),
            reply: tx,
        };
        (req, rx)
    }
}
