//! The simulator's SignalR hub sessions, shared by both hubs: the JSON handshake, keep-alive
//! pings, the client timeout, call dispatch with Completion replies, and the hub fault switches
//! (silence, drops, Close with an error). `hub_upgrade` does the HTTP side before it.
//!
//! What each hub answers and sends lives in `market_hub` and `user_hub`, behind [`Hub`]. Timings
//! follow ASP.NET Core SignalR's defaults (pings every 15 s, a client silent for 30 s is dropped,
//! 15 s for the handshake), so clients tuned for ProjectX behave the same here.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::faults::{HubFaults, Kick};
use super::shared::Shared;
use crate::signalr::codec::{
    Close, Completion, Decoded, Decoder, HandshakeReply, Invocation, Message, Outcome,
};

/// ASP.NET's HandshakeTimeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// One outgoing frame carries at most this much: batching records is what makes 100,000
/// quotes a second possible, and the cap keeps a frame from growing without bound.
const MAX_FRAME: usize = 64 * 1024;

/// Why a hub method call failed.
pub(crate) enum CallError {
    /// No such method: ASP.NET's "Unknown hub method" error.
    Unknown,
    /// The method exists but the call was wrong (arguments of the wrong number or type).
    Failed(String),
}

/// The error text ASP.NET sends when arguments cannot be bound.
pub(crate) fn binding_error(target: &str, detail: &str) -> CallError {
    CallError::Failed(format!(
        "Failed to invoke '{target}' due to an error on the server. InvalidDataException: {detail}"
    ))
}

/// What one hub does with calls and with the simulator's events; the session does the rest.
pub(crate) trait Hub: Send + 'static {
    type Item: Clone + Send + 'static;

    /// The simulator channel this hub forwards from.
    fn feed(shared: &Shared) -> broadcast::Receiver<Self::Item>;

    /// Runs one call. Records to send right after its Completion (a first full quote) go into
    /// `after`.
    ///
    /// # Errors
    /// An unknown method, or arguments that do not fit it.
    fn call(
        &mut self,
        shared: &Shared,
        faults: &HubFaults,
        target: &str,
        args: &[Value],
        after: &mut String,
    ) -> Result<(), CallError>;

    /// Appends the records `item` produces for this client (none when it is not subscribed).
    fn render(&mut self, item: &Self::Item, faults: &HubFaults, out: &mut String);
}

/// Counts the session as open while it lives.
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.stats().hub_open += 1;
        Self(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut stats = self.0.stats();
        stats.hub_open = stats.hub_open.saturating_sub(1);
    }
}

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How a session ends.
enum End {
    /// Close the socket with a WebSocket close frame (after any Close message was sent).
    Graceful,
    /// Just drop the socket: the client sees the stream end with no Close at all.
    Abrupt,
}

async fn recv_feed<T: Clone>(
    feed: &mut Option<broadcast::Receiver<T>>,
) -> Result<T, broadcast::error::RecvError> {
    match feed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One hub connection, from the upgraded socket to its end.
pub(crate) async fn run<H: Hub>(shared: Arc<Shared>, mut hub: H, mut ws: Ws) {
    let _open = OpenGuard::new(shared.clone());
    let end = serve(&shared, &mut hub, &mut ws).await;
    match end {
        End::Graceful => {
            let _ = ws.close(None).await;
        }
        End::Abrupt => drop(ws),
    }
}

async fn serve<H: Hub>(shared: &Shared, hub: &mut H, ws: &mut Ws) -> End {
    let config = &shared.config;
    let mut faults_rx = shared.faults.hub_faults();
    let mut faults = faults_rx.borrow_and_update().clone();
    let seen_kick = faults.kick;
    let mut stop = shared.hubs.stopped();
    if *stop.borrow_and_update() {
        return End::Graceful;
    }
    let opened = Instant::now();
    let mut last_heard = opened;
    let mut decoder = Decoder::server();
    let mut feed: Option<broadcast::Receiver<H::Item>> = None;
    let keep_alive = config.hub_keep_alive.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(opened + keep_alive, keep_alive);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = String::with_capacity(4096);

    loop {
        let handshaken = feed.is_some();
        let drop_at = faults.drop_every.map(|d| opened + d);
        let timeout_at = if handshaken {
            last_heard + config.hub_client_timeout
        } else {
            opened + HANDSHAKE_TIMEOUT
        };
        tokio::select! {
            biased;
            _ = stop.changed() => return End::Graceful,
            changed = faults_rx.changed() => {
                if changed.is_err() {
                    return End::Graceful;
                }
                faults = faults_rx.borrow_and_update().clone();
                if faults.kick != seen_kick {
                    return match &faults.last_kick {
                        Kick::Drop => End::Abrupt,
                        Kick::Close { error, allow_reconnect } => {
                            let close = Message::Close(Close {
                                error: Some(error.clone()),
                                allow_reconnect: *allow_reconnect,
                            });
                            let _ = ws.send(WsMessage::text(close.encode())).await;
                            End::Graceful
                        }
                    };
                }
            }
            _ = sleep_until_opt(drop_at) => return End::Abrupt,
            _ = sleep_until(timeout_at) => {
                if handshaken {
                    let close = Message::Close(Close {
                        error: Some(
                            "Server timeout elapsed without receiving a message from the client."
                                .into(),
                        ),
                        allow_reconnect: false,
                    });
                    let _ = ws.send(WsMessage::text(close.encode())).await;
                }
                return End::Graceful;
            }
            msg = ws.next() => {
                let data = match msg {
                    Some(Ok(WsMessage::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(WsMessage::Binary(b))) => b.to_vec(),
                    Some(Ok(WsMessage::Close(_))) | None => return End::Graceful,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "hub socket error");
                        return End::Abrupt;
                    }
                };
                last_heard = Instant::now();
                if decoder.push(&data).is_err() {
                    return End::Graceful;
                }
                while let Some(decoded) = decoder.next_decoded() {
                    match decoded {
                        Ok(Decoded::HandshakeRequest(req)) => {
                            let refusal = faults.handshake_error.clone().or_else(|| {
                                if !req.protocol.eq_ignore_ascii_case("json") {
                                    Some(format!(
                                        "The protocol '{}' is not supported.",
                                        req.protocol
                                    ))
                                } else if req.version > 1 {
                                    // ASP.NET accepts any version up to its own (signalrcore
                                    // sends 0 after a version-0 negotiate).
                                    Some(format!(
                                        "The server does not support version {} of the 'json' protocol.",
                                        req.version
                                    ))
                                } else {
                                    None
                                }
                            });
                            if let Some(error) = refusal {
                                let reply = HandshakeReply::error(error).encode();
                                let _ = ws.send(WsMessage::text(reply)).await;
                                return End::Graceful;
                            }
                            out.push_str(&HandshakeReply::ok().encode());
                            // Subscribed only now: nothing can be subscribed before the
                            // handshake, and a receiver opened earlier would only fill up.
                            feed = Some(H::feed(shared));
                            ping.reset();
                        }
                        Ok(Decoded::HandshakeReply(_)) => {}
                        Ok(Decoded::Message(m)) => {
                            if let Some(end) = on_message(shared, hub, &faults, m, &mut out) {
                                flush(ws, &mut out).await;
                                return end;
                            }
                        }
                        Err(e) if feed.is_none() => {
                            let reply = HandshakeReply::error(format!(
                                "Unable to parse the handshake request: {e}"
                            ));
                            let _ = ws.send(WsMessage::text(reply.encode())).await;
                            return End::Graceful;
                        }
                        Err(e) => tracing::debug!(error = %e, "malformed hub record ignored"),
                    }
                }
            }
            _ = ping.tick(), if handshaken => {
                if !faults.silent {
                    out.push_str(&Message::Ping.encode());
                }
            }
            item = recv_feed(&mut feed) => {
                match item {
                    Ok(item) => {
                        if !faults.silent {
                            hub.render(&item, &faults, &mut out);
                        }
                        // Drain what is already queued into the same frame.
                        if let Some(rx) = feed.as_mut() {
                            while out.len() < MAX_FRAME {
                                match rx.try_recv() {
                                    Ok(item) if !faults.silent => hub.render(&item, &faults, &mut out),
                                    Ok(_) => {}
                                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                        return lagging(shared, n);
                                    }
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => return lagging(shared, n),
                    Err(broadcast::error::RecvError::Closed) => return End::Graceful,
                }
            }
        }
        if !flush(ws, &mut out).await {
            return End::Abrupt;
        }
    }
}

/// A client too slow for the event stream: its receiver lost `skipped` events. It is dropped,
/// counted and logged, never served on with a silent gap. An ASP.NET Core SignalR server never
/// skips a message to a connection: it delivers in order, or the connection ends (its buffer
/// overflows, or the transport gives up), and the client learns of it and reconnects. Serving on
/// after a gap would let the simulator pass tests a real gateway would not (a missed fill, or
/// trades missing from `on_trade` and bars). The episode ends with the connection, so the one
/// warning is the one per episode.
fn lagging(shared: &Shared, skipped: u64) -> End {
    use std::sync::atomic::Ordering::Relaxed;
    shared.lagging_dropped.fetch_add(1, Relaxed);
    shared.lagging_skipped.fetch_add(skipped, Relaxed);
    tracing::warn!(
        skipped,
        "simulator hub: client fell too far behind the event stream; connection dropped"
    );
    End::Abrupt
}

/// Sends what `out` holds as one text frame. `false` when the socket is gone.
async fn flush(ws: &mut Ws, out: &mut String) -> bool {
    if out.is_empty() {
        return true;
    }
    let frame = std::mem::take(out);
    match ws.send(WsMessage::text(frame)).await {
        Ok(()) => true,
        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => false,
        Err(e) => {
            tracing::debug!(error = %e, "hub send failed");
            false
        }
    }
}

/// Handles one message from the client; `Some` ends the session.
fn on_message<H: Hub>(
    shared: &Shared,
    hub: &mut H,
    faults: &HubFaults,
    msg: Message,
    out: &mut String,
) -> Option<End> {
    match msg {
        Message::Invocation(inv) | Message::StreamInvocation(inv) => {
            let Invocation {
                invocation_id,
                target,
                arguments,
                ..
            } = inv;
            let mut after = String::new();
            let result = hub.call(shared, faults, &target, &arguments, &mut after);
            if faults.silent {
                return None;
            }
            if let Some(id) = invocation_id {
                let outcome = match result {
                    Ok(()) => Outcome::Void,
                    Err(CallError::Unknown) => {
                        Outcome::Error(format!("Unknown hub method '{target}'"))
                    }
                    Err(CallError::Failed(message)) => Outcome::Error(message),
                };
                out.push_str(&Message::Completion(Completion::new(id, outcome)).encode());
            } else if let Err(CallError::Unknown) = result {
                // Fire-and-forget: the caller wants no reply, so there is nobody to tell.
                tracing::debug!(%target, "unknown hub method ignored (no invocationId)");
            }
            out.push_str(&after);
            None
        }
        Message::Close(_) => Some(End::Graceful),
        // Pings only prove the client is alive (already noted); Completions, stream items and
        // cancels answer nothing this server asked.
        _ => None,
    }
}
