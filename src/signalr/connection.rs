//! The client side of one SignalR hub connection: its settings, errors, and the handle the rest
//! of the program uses to invoke, subscribe and watch the state.
//!
//! One task (in `task.rs`) owns the socket, the subscription list and the pending calls;
//! handles talk to it over a channel, so a subscribe racing a reconnect can neither be lost nor
//! sent twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::auth::TokenSource;
use super::backoff::Backoff;
use super::codec::Decoder;
use super::state::{ConnectionState, StateMachine};
use super::task::establish;

/// How to reach a hub and how patient to be with it.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// `market` or `user`: names the hub in logs (`SignalR market hub error: ...`) and errors.
    pub name: String,
    /// `https://`, `http://`, `wss://` or `ws://` hub URL, without the token.
    pub url: String,
    /// Limit on the WebSocket upgrade and, separately, on the handshake reply.
    pub handshake_timeout: Duration,
    /// We send a Ping this often (SignalR's 15 s default), so the server does not drop us.
    pub keep_alive_interval: Duration,
    /// No frame from the server for this long means the connection is dead (SignalR's 30 s).
    pub server_timeout: Duration,
    /// How long `invoke` waits for its Completion.
    pub invoke_timeout: Duration,
    pub backoff: Backoff,
}

impl HubConfig {
    /// SignalR's defaults: 15 s keep-alive, 30 s server timeout; 10 s handshake and invoke.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            handshake_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(15),
            server_timeout: Duration::from_secs(30),
            invoke_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
        }
    }
}

/// A method the server invoked on us: a hub event such as `GatewayQuote`.
#[derive(Debug, Clone, PartialEq)]
pub struct HubEvent {
    pub target: String,
    pub arguments: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("token source failed: {0}")]
    Token(String),
    #[error("invalid hub URL: {0}")]
    Url(String),
    #[error(
        "{hub} hub refused the WebSocket upgrade with HTTP {status} (check the token and hub URL)"
    )]
    Rejected { hub: String, status: u16 },
    #[error("{hub} hub WebSocket error: {message}")]
    WebSocket { hub: String, message: String },
    #[error("{hub} hub did not answer within {after:?} ({stage})")]
    Timeout {
        hub: String,
        stage: &'static str,
        after: Duration,
    },
    #[error("{hub} hub rejected the handshake: {message}")]
    HandshakeRejected { hub: String, message: String },
    #[error("{hub} hub closed the connection{}", .error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    ServerClosed {
        hub: String,
        error: Option<String>,
        allow_reconnect: bool,
    },
    /// A Completion with an error: the server's own message.
    #[error("SignalR {hub} hub error: {message}")]
    Server { hub: String, message: String },
    #[error("{hub} hub: no Completion for {target} within {after:?}")]
    InvokeTimeout {
        hub: String,
        target: String,
        after: Duration,
    },
    #[error("{hub} hub is not connected")]
    NotConnected { hub: String },
    #[error("{hub} hub connection lost: {reason}")]
    ConnectionLost { hub: String, reason: String },
    #[error("{hub} hub connection is closed")]
    Closed { hub: String },
}

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub(super) type Reply = oneshot::Sender<Result<Value, HubError>>;

/// A subscription as replayed after a reconnect: the method and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Subscription {
    pub(super) method: String,
    pub(super) args: Vec<Value>,
}

pub(super) enum Command {
    /// `reply: None` is a fire-and-forget send.
    Invoke {
        target: String,
        args: Vec<Value>,
        reply: Option<Reply>,
    },
    Subscribe {
        sub: Subscription,
        reply: Reply,
    },
    Unsubscribe {
        sub: Subscription,
        unsubscribe_method: String,
        reply: Reply,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

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
    /// backoff until closed. Events the server invokes arrive on the returned receiver, unbounded
    /// because hub events (fills, orders) must never be dropped.
    pub fn spawn<T: TokenSource>(
        config: HubConfig,
        tokens: T,
    ) -> (Self, mpsc::UnboundedReceiver<HubEvent>) {
        let (state, _) = StateMachine::new();
        Self::start(config, tokens, state, None)
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
    ) -> Result<(Self, mpsc::UnboundedReceiver<HubEvent>), HubError> {
        let (state, _) = StateMachine::new();
        let first = establish(&config, &tokens, &state).await?;
        Ok(Self::start(config, tokens, state, Some(first)))
    }

    fn start<T: TokenSource>(
        config: HubConfig,
        tokens: T,
        state: StateMachine,
        first: Option<(Ws, Decoder)>,
    ) -> (Self, mpsc::UnboundedReceiver<HubEvent>) {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let handle = Self {
            hub: config.name.as_str().into(),
            cmds: cmd_tx,
            state: state.subscribe(),
            invoke_timeout: config.invoke_timeout,
        };
        tokio::spawn(super::task::run(
            config, tokens, state, first, cmd_rx, event_tx,
        ));
        (handle, event_rx)
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
