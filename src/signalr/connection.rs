//! The client side of one SignalR hub connection: a task that connects, handshakes, keeps the
//! connection alive, pairs invocations with their Completions, and reconnects with backoff,
//! re-sending every active subscription each time.
//!
//! One task owns the socket, the subscription list and the pending calls; handles talk to it over
//! a channel, so a subscribe racing a reconnect can neither be lost nor sent twice.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::backoff::Backoff;
use super::codec::{Completion, Decoded, Decoder, HandshakeRequest, Invocation, Message, Outcome};
use super::state::{ConnectionState, StateMachine};
use crate::secret::Secret;

/// Where a hub connection gets its token, asked afresh before every (re)connect, because the hub
/// URL carries the token and a token that expired while we were disconnected must be replaced.
///
/// Implementers write `async fn token(&self) -> Result<Secret, String>`. The error text is logged
/// and shown in the connection state, so it must never contain the token.
pub trait TokenSource: Send + Sync + 'static {
    fn token(&self) -> impl Future<Output = Result<Secret, String>> + Send;
}

/// A token that never changes (a `JWT_TOKEN` from the environment, or tests).
#[derive(Debug, Clone)]
pub struct FixedToken(pub Secret);

impl TokenSource for FixedToken {
    async fn token(&self) -> Result<Secret, String> {
        Ok(self.0.clone())
    }
}

impl<T: TokenSource> TokenSource for Arc<T> {
    fn token(&self) -> impl Future<Output = Result<Secret, String>> + Send {
        (**self).token()
    }
}

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

/// The hub URL with the token appended as `access_token`, and `http(s)` mapped to `ws(s)`.
///
/// # Errors
/// `Url` when the scheme is not one of `https`, `http`, `wss`, `ws`.
pub fn hub_url(base: &str, token: &Secret) -> Result<String, HubError> {
    let base = base.trim();
    let lower = base.to_ascii_lowercase();
    let (scheme, rest) = [
        ("https://", "wss://"),
        ("http://", "ws://"),
        ("wss://", "wss://"),
        ("ws://", "ws://"),
    ]
    .iter()
    .find(|(from, _)| lower.starts_with(from))
    .map(|(from, to)| (*to, &base[from.len()..]))
    .ok_or_else(|| {
        HubError::Url(format!(
            "{base:?} must start with https://, http://, wss:// or ws://"
        ))
    })?;
    let sep = if rest.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{scheme}{rest}{sep}access_token={}",
        percent_encode(token.expose())
    ))
}

/// Escapes everything but RFC 3986 unreserved characters (a JWT is already all unreserved but
/// for its dots, so this rarely changes anything; it protects against odd tokens).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL with the `access_token` value replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find("access_token=") {
        let value_start = i + "access_token=".len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        rest = &rest[value_start..];
        rest = rest.find('&').map_or("", |j| &rest[j..]);
    }
    out.push_str(rest);
    out
}

/// Removes the token from error text coming from libraries that might echo the URL.
fn redact(text: &str, token: &Secret) -> String {
    let t = token.expose();
    if t.is_empty() {
        return redact_url(text);
    }
    redact_url(&text.replace(t, "***").replace(&percent_encode(t), "***"))
}

/// rustls panics on first use when no process-wide crypto provider can be chosen; installing ring
/// here (a no-op if `main` already installed one) keeps `wss://` working from tests and tools.
fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Reply = oneshot::Sender<Result<Value, HubError>>;

/// A subscription as replayed after a reconnect: the method and its arguments.
#[derive(Debug, Clone, PartialEq)]
struct Subscription {
    method: String,
    args: Vec<Value>,
}

enum Command {
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
        let shared = Shared {
            config,
            tokens,
            state,
        };
        let book = Book {
            cmds: cmd_rx,
            events: event_tx,
            subs: Vec::new(),
            pending: HashMap::new(),
            next_id: 0,
            events_closed_warned: false,
        };
        tokio::spawn(run(shared, book, first));
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
    /// # Errors
    /// `Server` with the server's message on a Completion error (also logged), `InvokeTimeout`,
    /// `NotConnected` while reconnecting, `ConnectionLost` if the connection drops before the
    /// Completion, `Closed` after `close`.
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

    /// Records a subscription, to be re-sent after every reconnect, and invokes it now if live.
    /// While disconnected it returns at once; the subscription goes out on the next connect.
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

/// What the connection task only reads.
struct Shared<T> {
    config: HubConfig,
    tokens: T,
    state: StateMachine,
}

/// What the connection task mutates; kept apart from `Shared` so a connect in progress (which
/// borrows `Shared`) can run while commands are still served.
struct Book {
    cmds: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<HubEvent>,
    subs: Vec<Subscription>,
    pending: HashMap<String, Pending>,
    next_id: u64,
    events_closed_warned: bool,
}

struct Pending {
    target: String,
    reply: Option<Reply>,
    /// Set for subscribe calls: a Completion error forgets the subscription.
    sub: Option<Subscription>,
}

/// Why a live connection ended.
enum Ended {
    /// Closed by us: stop.
    Shutdown(String),
    /// The server sent Close without `allowReconnect`: stop.
    ServerClosed(HubError),
    /// Dropped, timed out, or closed with `allowReconnect`: reconnect.
    Lost(HubError),
}

/// Token, fresh URL, upgrade, handshake — in that order, on every (re)connect.
async fn establish<T: TokenSource>(
    config: &HubConfig,
    tokens: &T,
    state: &StateMachine,
) -> Result<(Ws, Decoder), HubError> {
    let hub = || config.name.clone();
    let token = tokens.token().await.map_err(HubError::Token)?;
    let url = hub_url(&config.url, &token)?;
    tracing::info!(hub = %config.name, url = %redact_url(&url), "connecting to hub");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| HubError::Url(redact(&e.to_string(), &token)))?;
    let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| HubError::Token("token is not a valid header value".into()))?;
    bearer.set_sensitive(true);
    request.headers_mut().insert("Authorization", bearer);

    ensure_crypto_provider();
    let upgrade = timeout(
        config.handshake_timeout,
        tokio_tungstenite::connect_async(request),
    );
    let (mut ws, _) = match upgrade.await {
        Err(_) => {
            return Err(HubError::Timeout {
                hub: hub(),
                stage: "WebSocket upgrade",
                after: config.handshake_timeout,
            });
        }
        Ok(Err(tungstenite::Error::Http(resp))) => {
            return Err(HubError::Rejected {
                hub: hub(),
                status: resp.status().as_u16(),
            });
        }
        Ok(Err(e)) => {
            return Err(HubError::WebSocket {
                hub: hub(),
                message: redact(&e.to_string(), &token),
            });
        }
        Ok(Ok(pair)) => pair,
    };

    state.handshaking();
    let ws_err = |e: tungstenite::Error| HubError::WebSocket {
        hub: hub(),
        message: redact(&e.to_string(), &token),
    };
    ws.send(WsMessage::text(HandshakeRequest::json_v1().encode()))
        .await
        .map_err(ws_err)?;
    let mut decoder = Decoder::client();
    let reply = timeout(config.handshake_timeout, async {
        loop {
            match decoder.next_decoded() {
                Some(Ok(Decoded::HandshakeReply(reply))) => return Ok(reply),
                Some(Ok(_)) => unreachable!("a client decoder yields the handshake reply first"),
                Some(Err(e)) => {
                    return Err(HubError::HandshakeRejected {
                        hub: hub(),
                        message: e.to_string(),
                    });
                }
                None => {}
            }
            let data = match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => t.as_bytes().to_vec(),
                Some(Ok(WsMessage::Binary(b))) => b.to_vec(),
                Some(Ok(WsMessage::Close(frame))) => {
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    return Err(HubError::ConnectionLost {
                        hub: hub(),
                        reason: format!("closed during handshake {reason}"),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ws_err(e)),
                None => {
                    return Err(HubError::ConnectionLost {
                        hub: hub(),
                        reason: "closed during handshake".into(),
                    });
                }
            };
            if let Err(e) = decoder.push(&data) {
                return Err(HubError::HandshakeRejected {
                    hub: hub(),
                    message: e.to_string(),
                });
            }
        }
    });
    match reply.await {
        Err(_) => Err(HubError::Timeout {
            hub: hub(),
            stage: "handshake reply",
            after: config.handshake_timeout,
        }),
        Ok(Err(e)) => Err(e),
        Ok(Ok(reply)) => match reply.error {
            Some(message) => Err(HubError::HandshakeRejected {
                hub: hub(),
                message,
            }),
            None => Ok((ws, decoder)),
        },
    }
}

async fn run<T: TokenSource>(shared: Shared<T>, mut book: Book, mut first: Option<(Ws, Decoder)>) {
    let hub = shared.config.name.clone();
    // Consecutive failed attempts since the connection was last live: drives the backoff.
    let mut failures: u32 = 0;
    loop {
        let attempt = match first.take() {
            Some(conn) => Ok(conn),
            None => {
                shared.state.connecting(failures);
                match offline(
                    &hub,
                    &mut book,
                    &shared.state,
                    establish(&shared.config, &shared.tokens, &shared.state),
                )
                .await
                {
                    Some(r) => r,
                    None => return,
                }
            }
        };
        let reason = match attempt {
            Ok((ws, decoder)) => {
                failures = 0;
                match serve(&shared, &mut book, ws, decoder).await {
                    Ended::Shutdown(reason) => {
                        book.fail_pending(&hub, &reason);
                        shared.state.closed(reason);
                        return;
                    }
                    Ended::ServerClosed(e) => {
                        tracing::error!(hub = %hub, "{e}; not reconnecting");
                        book.fail_pending(&hub, &e.to_string());
                        shared.state.closed(e.to_string());
                        return;
                    }
                    Ended::Lost(e) => e,
                }
            }
            Err(e) => e,
        };
        book.fail_pending(&hub, &reason.to_string());
        let delay = shared.config.backoff.delay_jittered(failures);
        failures = failures.saturating_add(1);
        tracing::warn!(hub = %hub, attempt = failures, ?delay, "{reason}; reconnecting");
        shared.state.reconnecting(failures, reason.to_string());
        if offline(&hub, &mut book, &shared.state, sleep(delay))
            .await
            .is_none()
        {
            return;
        }
    }
}

/// Runs `fut` (a connect or a backoff sleep) while serving commands as a disconnected connection
/// would. `None` means we were asked to stop; the state is then already `Closed`.
async fn offline<F: Future>(
    hub: &str,
    book: &mut Book,
    state: &StateMachine,
    fut: F,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            cmd = book.cmds.recv() => match cmd {
                None => {
                    state.closed("every handle was dropped");
                    return None;
                }
                Some(Command::Close { reply }) => {
                    state.closed("closed by the client");
                    let _ = reply.send(());
                    return None;
                }
                Some(Command::Invoke { reply, .. }) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(HubError::NotConnected { hub: hub.into() }));
                    }
                }
                // Recorded now, sent by the replay once the connection is live.
                Some(Command::Subscribe { sub, reply }) => {
                    book.record(sub);
                    let _ = reply.send(Ok(Value::Null));
                }
                Some(Command::Unsubscribe { sub, reply, .. }) => {
                    book.subs.retain(|s| *s != sub);
                    let _ = reply.send(Ok(Value::Null));
                }
            }
        }
    }
}

async fn serve<T: TokenSource>(
    shared: &Shared<T>,
    book: &mut Book,
    mut ws: Ws,
    mut decoder: Decoder,
) -> Ended {
    let cfg = &shared.config;
    let hub = cfg.name.as_str();
    let lost = |reason: String| {
        Ended::Lost(HubError::ConnectionLost {
            hub: hub.into(),
            reason,
        })
    };

    // Replay before going live, so nothing observing `Live` can subscribe ahead of the replay.
    for sub in book.subs.clone() {
        let msg = book.invocation(&sub.method, sub.args.clone(), None, Some(sub.clone()));
        if let Err(e) = send(&mut ws, &msg, cfg.server_timeout).await {
            return lost(e);
        }
    }
    tracing::info!(hub, subscriptions = book.subs.len(), "hub connection live");
    shared.state.live();

    // The handshake reply may have shared its frame with the first events.
    if let Some(end) = drain(&mut decoder, &mut ws, book, cfg).await {
        return end;
    }

    let mut ping = tokio::time::interval_at(
        Instant::now() + cfg.keep_alive_interval,
        cfg.keep_alive_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deadline = Instant::now() + cfg.server_timeout;
    loop {
        tokio::select! {
            frame = ws.next() => {
                deadline = Instant::now() + cfg.server_timeout;
                let data = match frame {
                    Some(Ok(WsMessage::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(WsMessage::Binary(b))) => b.to_vec(),
                    Some(Ok(WsMessage::Close(frame))) => {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return lost(format!("WebSocket closed by the server {reason}").trim_end().into());
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return lost(e.to_string()),
                    None => return lost("WebSocket ended".into()),
                };
                if let Err(e) = decoder.push(&data) {
                    tracing::warn!(hub, "{e}");
                }
                if let Some(end) = drain(&mut decoder, &mut ws, book, cfg).await {
                    return end;
                }
            }
            _ = ping.tick() => {
                if let Err(e) = send(&mut ws, &Message::Ping, cfg.server_timeout).await {
                    return lost(e);
                }
            }
            _ = sleep_until(deadline) => {
                return lost(format!("no message from the server for {:?}", cfg.server_timeout));
            }
            cmd = book.cmds.recv() => {
                let msg = match cmd {
                    None => {
                        let _ = timeout(cfg.handshake_timeout, ws.close(None)).await;
                        return Ended::Shutdown("every handle was dropped".into());
                    }
                    Some(Command::Close { reply }) => {
                        let _ = timeout(cfg.handshake_timeout, ws.close(None)).await;
                        let _ = reply.send(());
                        return Ended::Shutdown("closed by the client".into());
                    }
                    Some(Command::Invoke { target, args, reply }) => match reply {
                        Some(reply) => book.invocation(&target, args, Some(reply), None),
                        None => Message::Invocation(Invocation::new(target, args)),
                    },
                    Some(Command::Subscribe { sub, reply }) => {
                        book.record(sub.clone());
                        let (method, args) = (sub.method.clone(), sub.args.clone());
                        book.invocation(&method, args, Some(reply), Some(sub))
                    }
                    Some(Command::Unsubscribe { sub, unsubscribe_method, reply }) => {
                        book.subs.retain(|s| *s != sub);
                        book.invocation(&unsubscribe_method, sub.args, Some(reply), None)
                    }
                };
                if let Err(e) = send(&mut ws, &msg, cfg.server_timeout).await {
                    return lost(e);
                }
            }
        }
    }
}

/// Handles every complete message buffered in the decoder.
async fn drain(
    decoder: &mut Decoder,
    ws: &mut Ws,
    book: &mut Book,
    cfg: &HubConfig,
) -> Option<Ended> {
    let hub = cfg.name.as_str();
    while let Some(decoded) = decoder.next_decoded() {
        let msg = match decoded {
            Ok(Decoded::Message(m)) => m,
            Ok(other) => {
                tracing::warn!(
                    hub,
                    ?other,
                    "unexpected handshake record after the handshake"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(hub, "{e}");
                continue;
            }
        };
        match msg {
            Message::Invocation(inv) => {
                // We expose no client methods; answer a call that expects a result, as the
                // official clients do, rather than leave the server waiting.
                if let Some(id) = &inv.invocation_id {
                    let reply = Message::Completion(Completion::new(
                        id.clone(),
                        Outcome::Error("Client didn't provide a result.".into()),
                    ));
                    if let Err(e) = send(ws, &reply, cfg.server_timeout).await {
                        return Some(Ended::Lost(HubError::ConnectionLost {
                            hub: hub.into(),
                            reason: e,
                        }));
                    }
                }
                book.emit(
                    hub,
                    HubEvent {
                        target: inv.target,
                        arguments: inv.arguments,
                    },
                );
            }
            Message::Completion(c) => book.complete(hub, c),
            Message::Ping => {}
            Message::Close(close) => {
                let err = HubError::ServerClosed {
                    hub: hub.into(),
                    error: close.error,
                    allow_reconnect: close.allow_reconnect,
                };
                return Some(if close.allow_reconnect {
                    Ended::Lost(err)
                } else {
                    Ended::ServerClosed(err)
                });
            }
            other => tracing::debug!(hub, ?other, "ignoring a stream message"),
        }
    }
    None
}

async fn send(ws: &mut Ws, msg: &Message, within: Duration) -> Result<(), String> {
    // A peer that stops reading would otherwise block this task on a full TCP buffer forever.
    match timeout(within, ws.send(WsMessage::text(msg.encode()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("send blocked for {within:?}")),
    }
}

impl Book {
    fn record(&mut self, sub: Subscription) {
        if !self.subs.contains(&sub) {
            self.subs.push(sub);
        }
    }

    /// Builds an invocation with a fresh id and remembers who waits for its Completion.
    fn invocation(
        &mut self,
        target: &str,
        args: Vec<Value>,
        reply: Option<Reply>,
        sub: Option<Subscription>,
    ) -> Message {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.pending.insert(
            id.clone(),
            Pending {
                target: target.into(),
                reply,
                sub,
            },
        );
        Message::Invocation(Invocation::new(target, args).with_id(id))
    }

    fn complete(&mut self, hub: &str, c: Completion) {
        let Some(p) = self.pending.remove(&c.invocation_id) else {
            tracing::debug!(hub, id = %c.invocation_id, "Completion for no pending invocation");
            return;
        };
        let result = match c.outcome {
            Outcome::Void => Ok(Value::Null),
            Outcome::Result(v) => Ok(v),
            Outcome::Error(message) => {
                tracing::warn!(hub, target = %p.target, "SignalR {hub} hub error: {message}");
                if let Some(sub) = &p.sub {
                    // Replaying a subscription the server refuses would only fail again.
                    self.subs.retain(|s| s != sub);
                }
                Err(HubError::Server {
                    hub: hub.into(),
                    message,
                })
            }
        };
        if let Some(reply) = p.reply {
            let _ = reply.send(result);
        }
    }

    /// Answers every pending call after a drop. Subscriptions stay recorded and will be replayed,
    /// so their callers get `Ok`.
    fn fail_pending(&mut self, hub: &str, reason: &str) {
        for (_, p) in self.pending.drain() {
            if let Some(reply) = p.reply {
                let result = if p.sub.is_some() {
                    Ok(Value::Null)
                } else {
                    Err(HubError::ConnectionLost {
                        hub: hub.into(),
                        reason: reason.into(),
                    })
                };
                let _ = reply.send(result);
            }
        }
    }

    fn emit(&mut self, hub: &str, event: HubEvent) {
        if self.events.send(event).is_err() && !self.events_closed_warned {
            self.events_closed_warned = true;
            tracing::warn!(hub, "hub events are arriving but nobody is receiving them");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_url_maps_schemes_and_appends_the_token() {
        let t = Secret::new("ab.c+d");
        assert_eq!(
            hub_url("https://rtc.x.com/hubs/market", &t).unwrap(),
            "wss://rtc.x.com/hubs/market?access_token=ab.c%2Bd"
        );
        assert_eq!(
            hub_url("HTTP://h:1/hubs/user?x=1", &t).unwrap(),
            "ws://h:1/hubs/user?x=1&access_token=ab.c%2Bd"
        );
        assert_eq!(
            hub_url("wss://h/hubs/m", &t).unwrap(),
            "wss://h/hubs/m?access_token=ab.c%2Bd"
        );
        assert!(matches!(hub_url("ftp://h", &t), Err(HubError::Url(_))));
    }

    #[test]
    fn redaction_hides_the_token() {
        assert_eq!(
            redact_url("wss://h/hubs/m?access_token=SECRET&id=1"),
            "wss://h/hubs/m?access_token=***&id=1"
        );
        assert_eq!(
            redact_url("wss://h/m?a=1&access_token=SECRET"),
            "wss://h/m?a=1&access_token=***"
        );
        let t = Secret::new("SECRET");
        let text = redact("failed for wss://h/m?access_token=SECRET and SECRET", &t);
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn completion_error_message_names_the_hub() {
        let e = HubError::Server {
            hub: "market".into(),
            message: "Invalid contract".into(),
        };
        assert_eq!(e.to_string(), "SignalR market hub error: Invalid contract");
    }

    #[tokio::test]
    async fn crypto_provider_install_does_not_panic_twice() {
        ensure_crypto_provider();
        ensure_crypto_provider();
    }
}
