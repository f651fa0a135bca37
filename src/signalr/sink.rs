//! Where a hub connection delivers the events the server invokes: an [`EventSink`] the
//! connection task calls for each, so whoever consumes them (a feed) decodes them in the same
//! task, without a channel hop; and [`ChannelSink`], a bounded channel for generic users.

use std::future::Future;

use serde_json::Value;
use tokio::sync::mpsc;

/// A method the server invoked on us: a hub event such as `GatewayQuote`.
#[derive(Debug, Clone, PartialEq)]
pub struct HubEvent {
    pub target: String,
    pub arguments: Vec<Value>,
}

/// Receives the server's invocations, in order, inside the connection task. While `event` is
/// pending the connection reads nothing more from the socket: a slow sink pushes back on the
/// server through TCP instead of buffering without bound.
pub trait EventSink: Send + 'static {
    /// Handles one event; `false` when nobody consumes events any more (logged once).
    fn event(&mut self, event: HubEvent) -> impl Future<Output = bool> + Send;
}

/// An [`EventSink`] into a bounded channel: the connection waits while the channel is full, so
/// no event is ever dropped.
#[derive(Debug)]
pub struct ChannelSink(pub mpsc::Sender<HubEvent>);

impl EventSink for ChannelSink {
    async fn event(&mut self, event: HubEvent) -> bool {
        self.0.send(event).await.is_ok()
    }
}
