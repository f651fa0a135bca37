//! The client side of one SignalR hub connection: its settings, errors, and the handle the rest
//! of the program uses to invoke, subscribe and watch the state.
//!
//! One task (in `task.rs`) owns the socket, the subscription list and the pending calls;
//! handles talk to it over a channel, so a subscribe racing a reconnect can neither be lost nor
//! sent twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;

use super::auth::TokenSource;
use super::book::{Command, Subscription};
use super::codec::Decoder;
use super::config::HubConfig;
use super::error::HubError;
use super::sink::{ChannelSink, EventSink, HubEvent};
use super::state::{ConnectionState, StateMachine};
use super::task::{Ws, establish};

/// Room in the channel of [`HubConnection::spawn`]: enough to ride out a burst while the
/// consumer is busy; beyond it the connection stops reading until there is room again.
pub const EVENT_CHANNEL_BOUND: usize = 1024;

/// A handle on a hub connection task. Cheap to clone; the task stops when `close` is called or
/// every handle is dropped.
#[derive(Clone)]
pub struct HubConnection {
    hub: Arc<str>,
    cmds: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<ConnectionState>,
    invoke_timeout: Duration,
}

impl std::fmt::Debug for HubConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConnection")
            .field("hub", &self.hub)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl HubConnection {
    /// Starts the connection task in the background: it connects, and reconnects forever with
    /// backoff until closed. Events the server invokes arrive on the returned receiver, bounded
    /// by [`EVENT_CHANNEL_BOUND`]: when it is full the connection waits (events are never
    /// dropped).
    pub fn spawn<T: TokenSource>(config: HubConfig, tokens: T) -> (Self, mpsc::Receiver<HubEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_BOUND);
        (Self::spawn_with(config, tokens, ChannelSink(tx)), rx)
    }

    /// Like [`HubConnection::spawn`], with events handed to `sink` inside the connection task.
    pub fn spawn_with<T: TokenSource, S: EventSink>(config: HubConfig, tokens: T, sink: S) -> Self {
        let (state, _) = StateMachine::new();
        Self::start(config, tokens, state, None, sink)
    }

    /// Like [`HubConnection::spawn`], but the first connection is made before returning, so a bad
    /// token or URL is reported at once (for `moontick quote` and start-up checks). Later drops
    /// are reconnected in the background.
    ///
    /// # Errors
    /// The first connection's failure: `Token`, `Url`, `Rejected` (HTTP status on the upgrade),
    /// `WebSocket`, `Timeout`, `HandshakeRejected`.
    pub async fn connect<T: TokenSource>(
        config: HubConfig,
        tokens: T,
    ) -> Result<(Self, mpsc::Receiver<HubEvent>), HubError> {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_BOUND);
        Ok((
            Self::connect_with(config, tokens, ChannelSink(tx)).await?,
            rx,
        ))
    }

    /// Like [`HubConnection::connect`], with events handed to `sink` inside the connection task.
    ///
    /// # Errors
    /// As [`HubConnection::connect`].
    pub async fn connect_with<T: TokenSource, S: EventSink>(
        config: HubConfig,
        tokens: T,
        sink: S,
    ) -> Result<Self, HubError> {
        let (state, _) = StateMachine::new();
        let first = establish(&config, &tokens, &state).await?;
        Ok(Self::start(config, tokens, state, Some(first), sink))
    }

    fn start<T: TokenSource, S: EventSink>(
        config: HubConfig,
        tokens: T,
        state: StateMachine,
        first: Option<(Ws, Decoder)>,
        sink: S,
    ) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let handle = Self {
            hub: config.name.as_str().into(),
            cmds: cmd_tx,
            state: state.subscribe(),
            invoke_timeout: config.invoke_timeout,
        };
        tokio::spawn(super::task::run(config, tokens, state, first, cmd_rx, sink));
        handle
    }

    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// The connection state, to watch for changes.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Waits until the connection is live or closed; `false` on timeout or closed.
    pub async fn wait_live(&self, within: Duration) -> bool {
        let mut rx = self.state.clone();
        matches!(
            timeout(within, rx.wait_for(|s| s.is_live() || s.is_closed())).await,
            Ok(Ok(s)) if s.is_live()
        )
    }

    /// Calls a hub method and waits for its Completion; returns its result (`Null` for void).
    ///
    /// A call made while connecting is sent once the handshake is done.
    ///
    /// # Errors
    /// `Server` with the server's message on a Completion error (also logged), `InvokeTimeout`,
    /// `NotConnected` while waiting out a reconnect backoff, `ConnectionLost` if the connection
    /// drops before the Completion, `Closed` after `close`.
    pub async fn invoke(&self, target: &str, args: Vec<Value>) -> Result<Value, HubError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Invoke {
            target: target.into(),
            args,
            reply: Some(tx),
        })?;
        self.await_reply(target, rx).await
    }

    /// Sends an invocation without an id: the server will not answer.
    ///
    /// # Errors
    /// `NotConnected` unless live, `Closed` after `close`.
    pub fn send(&self, target: &str, args: Vec<Value>) -> Result<(), HubError> {
        if !self.state.borrow().is_live() {
            return Err(HubError::NotConnected {
                hub: self.hub.to_string(),
            });
        }
        self.command(Command::Invoke {
            target: target.into(),
            args,
            reply: None,
        })
    }

    /// Records a subscription, to be re-sent after every reconnect, and invokes it: at once when
    /// live, as soon as the handshake is done when connecting. While waiting out a reconnect
    /// backoff it returns `Ok` at once; the replay sends it on the next connect.
    ///
    /// # Errors
    /// `Server` when the server answers with a Completion error: the subscription is then
    /// forgotten. `InvokeTimeout`: it stays recorded. `Closed` after `close`.
    pub async fn subscribe(&self, method: &str, args: Vec<Value>) -> Result<(), HubError> {
        let (tx, rx) = oneshot::channel();
        let sub = Subscription {
            method: method.into(),
            args,
        };
        self.command(Command::Subscribe { sub, reply: tx })?;
        self.await_reply(method, rx).await.map(drop)
    }

    /// Forgets the subscription made with `subscribe_method` and `args`, and invokes
    /// `unsubscribe_method` with the same arguments if live.
    ///
    /// # Errors
    /// As [`HubConnection::invoke`]; the subscription is forgotten in any case.
    pub async fn unsubscribe(
        &self,
        subscribe_method: &str,
        unsubscribe_method: &str,
        args: Vec<Value>,
    ) -> Result<(), HubError> {
        let (tx, rx) = oneshot::channel();
        let sub = Subscription {
            method: subscribe_method.into(),
            args,
        };
        self.command(Command::Unsubscribe {
            sub,
            unsubscribe_method: unsubscribe_method.into(),
            reply: tx,
        })?;
        self.await_reply(unsubscribe_method, rx).await.map(drop)
    }

    /// Closes the connection for good; the state becomes `Closed`.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::Close { reply: tx }).is_ok() {
            let _ = rx.await;
        }
    }

    fn command(&self, cmd: Command) -> Result<(), HubError> {
        self.cmds.send(cmd).map_err(|_| HubError::Closed {
            hub: self.hub.to_string(),
        })
    }

    async fn await_reply(
        &self,
        target: &str,
        rx: oneshot::Receiver<Result<Value, HubError>>,
    ) -> Result<Value, HubError> {
        match timeout(self.invoke_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(HubError::Closed {
                hub: self.hub.to_string(),
            }),
            Err(_) => Err(HubError::InvokeTimeout {
                hub: self.hub.to_string(),
                target: target.into(),
                after: self.invoke_timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_error_message_names_the_hub() {
        let e = HubError::Server {
            hub: "market".into(),
            message: "Invalid contract".into(),
        };
        assert_eq!(e.to_string(), "SignalR market hub error: Invalid contract");
    }
}
