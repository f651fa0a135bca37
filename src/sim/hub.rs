//! The simulator's SignalR hub sessions, shared by both hubs: the token check on the upgrade,
//! `negotiate`, the WebSocket upgrade over hyper, the JSON handshake, keep-alive pings, the client
//! timeout, call dispatch with Completion replies, and the hub fault switches.
//!
//! What each hub answers and sends lives in `market_hub` and `user_hub`, behind [`Hub`]. Timings
//! follow ASP.NET Core SignalR's defaults (pings every 15 s, a client silent for 30 s is dropped,
//! 15 s for the handshake), so clients tuned for ProjectX behave the same here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::Shared;
use super::auth::TokenError;
use super::faults::{HubFaults, Kick};
use super::http::{Reply, bearer, empty, json as json_reply, unauthorized};
use super::market_hub::MarketSession;
use super::user_hub::UserSession;
use crate::secret::Secret;
use crate::signalr::codec::{
    Close, Completion, Decoded, Decoder, HandshakeReply, Invocation, Message, Outcome,
};

/// ASP.NET's HandshakeTimeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// A negotiated connection token must be used within this long (ASP.NET keeps them a little
/// while for the transport request that follows).
const NEGOTIATED_TTL: Duration = Duration::from_secs(120);
/// One outgoing frame carries at most this much: batching records is what makes 100,000
/// quotes a second possible, and the cap keeps a frame from growing without bound.
const MAX_FRAME: usize = 64 * 1024;

/// Hub state shared by all sessions: negotiated connection tokens and the stop signal.
pub(crate) struct Hubs {
    negotiated: Mutex<HashMap<String, (HubKind, std::time::Instant)>>,
    stop: watch::Sender<bool>,
}

impl Default for Hubs {
    fn default() -> Self {
        Self {
            negotiated: Mutex::new(HashMap::new()),
            stop: watch::channel(false).0,
        }
    }
}

impl Hubs {
    /// Closes every open hub session (the simulator is stopping).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn remember(&self, token: String, kind: HubKind) {
        let mut map = self.negotiated.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < NEGOTIATED_TTL);
        map.insert(token, (kind, std::time::Instant::now()));
    }

    /// A connection token is good for one connection to the hub that issued it.
    fn take(&self, token: &str, kind: HubKind) -> bool {
        let mut map = self.negotiated.lock().unwrap_or_else(|p| p.into_inner());
        match map.remove(token) {
            Some((k, at)) => k == kind && at.elapsed() < NEGOTIATED_TTL,
            None => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HubKind {
    Market,
    User,
}

/// `/hubs/market` or `/hubs/user`, optionally followed by `/negotiate`.
fn parse_path(path: &str) -> Option<(HubKind, bool)> {
    let rest = path.get(6..)?.trim_end_matches('/');
    let (name, negotiate) = match rest.rsplit_once('/') {
        Some((name, tail)) if tail.eq_ignore_ascii_case("negotiate") => (name, true),
        Some(_) => return None,
        None => (rest, false),
    };
    let kind = if name.eq_ignore_ascii_case("market") {
        HubKind::Market
    } else if name.eq_ignore_ascii_case("user") {
        HubKind::User
    } else {
        return None;
    };
    Some((kind, negotiate))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_params(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        // The JS client may append `access_token` a second time; the first one wins.
        .fold(HashMap::new(), |mut m, (k, v)| {
            m.entry(k).or_insert(v);
            m
        })
}

/// Serves a request under `/hubs/`: `negotiate` (POST) or the WebSocket upgrade (GET).
pub(crate) async fn handle(shared: Arc<Shared>, mut req: Request<Incoming>) -> Reply {
    let Some((kind, negotiate)) = parse_path(req.uri().path()) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if let Some(status) = shared.faults.hub_snapshot().reject_upgrades {
        return empty(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE));
    }
    let params = query_params(req.uri().query());
    // Browsers cannot set headers on an upgrade, so SignalR carries the token in the query;
    // other clients send the header. Either is accepted, the query first (as ASP.NET's
    // JwtBearer setup for SignalR does).
    let token = params
        .get("access_token")
        .filter(|t| !t.is_empty())
        .cloned()
        .or_else(|| bearer(req.headers()));
    if let Err(e) = shared.tokens.verify(token.as_deref()) {
        shared.stats().hub_unauthorized += 1;
        tracing::debug!(hub = ?kind, reason = ?e, "simulator refused a hub token");
        return unauthorized(e != TokenError::Missing);
    }
    let token = token.unwrap_or_default();

    if negotiate {
        if req.method() != Method::POST {
            return empty(StatusCode::METHOD_NOT_ALLOWED);
        }
        let version = params
            .get("negotiateVersion")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        return negotiate_reply(&shared, kind, version);
    }

    if req.method() != Method::GET || !is_websocket_upgrade(&req) {
        // Only the WebSockets transport is offered (negotiate says so).
        return json_reply(
            StatusCode::BAD_REQUEST,
            b"WebSocket upgrade expected".to_vec(),
            "text/plain; charset=utf-8",
        );
    }
    if let Some(id) = params.get("id")
        && !shared.hubs.take(id, kind)
    {
        // ASP.NET answers an unknown or reused connection token with 404.
        return json_reply(
            StatusCode::NOT_FOUND,
            b"No Connection with that ID".to_vec(),
            "text/plain; charset=utf-8",
        );
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    let accept = derive_accept_key(key.as_bytes());
    {
        let mut stats = shared.stats();
        stats.hub_tokens.push(Secret::new(token));
        stats.hub_connects += 1;
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                match kind {
                    HubKind::Market => run(shared, MarketSession::default(), ws).await,
                    HubKind::User => run(shared, UserSession::default(), ws).await,
                }
            }
            Err(e) => tracing::debug!(error = %e, "hub upgrade failed"),
        }
    });
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(want))
            })
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// The negotiate answer. Version 1 hands out a separate connection token (the `id` of the
/// upgrade); version 0 (no `negotiateVersion` in the query, as signalrcore sends) uses the
/// connection id itself, as ASP.NET does.
fn negotiate_reply(shared: &Shared, kind: HubKind, version: u32) -> Reply {
    let connection_id = random_id();
    let mut body = json!({
        "connectionId": connection_id,
        "negotiateVersion": version.min(1),
        "availableTransports": [
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
        ],
    });
    let token = if version >= 1 {
        let token = random_id();
        body["connectionToken"] = json!(token);
        token
    } else {
        connection_id
    };
    shared.hubs.remember(token, kind);
    shared.stats().hub_negotiations += 1;
    tracing::debug!(hub = ?kind, version, "hub negotiated");
    json_reply(
        StatusCode::OK,
        serde_json::to_vec(&body).expect("negotiate reply serializes"),
        "application/json; charset=utf-8",
    )
}

/// 22 URL-safe characters, like ASP.NET's connection ids.
fn random_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = rand::random::<u128>();
    (0..22)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}

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
async fn run<H: Hub>(shared: Arc<Shared>, mut hub: H, mut ws: Ws) {
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
    let mut stop = shared.hubs.stop.subscribe();
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
                                    Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                    // A slow client loses the oldest quotes, like a real feed under load.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "hub client lagging; events skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return End::Graceful,
                }
            }
        }
        if !flush(ws, &mut out).await {
            return End::Abrupt;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_paths_parse() {
        assert_eq!(parse_path("/hubs/market"), Some((HubKind::Market, false)));
        assert_eq!(
            parse_path("/HUBS/User/negotiate"),
            Some((HubKind::User, true))
        );
        assert_eq!(parse_path("/hubs/market/"), Some((HubKind::Market, false)));
        assert_eq!(parse_path("/hubs/other"), None);
        assert_eq!(parse_path("/hubs/market/x"), None);
    }

    #[test]
    fn query_values_are_decoded_and_the_first_wins() {
        let p = query_params(Some("access_token=a%2Bb&id=x&access_token=second&flag"));
        assert_eq!(p["access_token"], "a+b");
        assert_eq!(p["id"], "x");
        assert_eq!(p["flag"], "");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn random_ids_differ() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
    }
}
