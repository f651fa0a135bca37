//! The hub connection task: connect (token → URL → upgrade → handshake), replay subscriptions,
//! then serve the socket (events, Completions, keep-alive, server timeout) until it drops, and
//! reconnect with backoff. Only [`super::connection`] starts it.

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::auth::{TokenSource, hub_url, redact, redact_url};
use super::book::{Book, Command};
use super::codec::{Completion, Decoded, Decoder, HandshakeRequest, Message, Outcome};
use super::config::HubConfig;
use super::error::{HubError, TokenError};
use super::sink::{EventSink, HubEvent};
use super::state::StateMachine;

/// What tungstenite reads per `read` call. Its default (128 KiB) is zero-filled before every
/// read, busy socket or not: at 1,000 quotes/s, one frame per quote, that memset was half of
/// the engine's CPU (callgrind). 16 KiB still takes a busy feed's 64 KiB frames in four reads.
pub const READ_BUFFER: usize = 16 * 1024;

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Starts the task's loop; `first` is a connection already established by `connect`.
pub(super) async fn run<T: TokenSource, S: EventSink>(
    config: HubConfig,
    tokens: T,
    state: StateMachine,
    first: Option<(Ws, Decoder)>,
    cmds: mpsc::UnboundedReceiver<Command>,
    sink: S,
) {
    let shared = Shared {
        config,
        tokens,
        state,
    };
    let book = Book::new(cmds, sink);
    run_loop(shared, book, first).await;
}

/// What the connection task only reads.
struct Shared<T> {
    config: HubConfig,
    tokens: T,
    state: StateMachine,
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
pub(super) async fn establish<T: TokenSource>(
    config: &HubConfig,
    tokens: &T,
    state: &StateMachine,
) -> Result<(Ws, Decoder), HubError> {
    let hub = || config.name.clone();
    let token = tokens.token().await?;
    let url = hub_url(&config.url, &token)?;
    tracing::info!(hub = %config.name, url = %redact_url(&url), "connecting to hub");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| HubError::Url(redact(&e.to_string(), &token)))?;
    let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| TokenError::NotAHeaderValue)?;
    bearer.set_sensitive(true);
    request.headers_mut().insert("Authorization", bearer);

    crate::tls::ensure_crypto_provider();
    let upgrade = timeout(
        config.handshake_timeout,
        tokio_tungstenite::connect_async_with_config(
            request,
            Some(WebSocketConfig::default().read_buffer_size(READ_BUFFER)),
            false,
        ),
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

async fn run_loop<T: TokenSource, S: EventSink>(
    shared: Shared<T>,
    mut book: Book<S>,
    mut first: Option<(Ws, Decoder)>,
) {
    let hub = shared.config.name.clone();
    // Consecutive failed attempts since the connection was last live: drives the backoff.
    let mut failures: u32 = 0;
    loop {
        let attempt = match first.take() {
            Some(conn) => Ok(conn),
            None => {
                shared.state.connecting(failures);
                let connecting = establish(&shared.config, &shared.tokens, &shared.state);
                match offline(&hub, &mut book, &shared.state, connecting, true).await {
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
        for cmd in std::mem::take(&mut book.deferred) {
            book.offline_command(&hub, cmd);
        }
        let delay = shared.config.backoff.delay_jittered(failures);
        failures = failures.saturating_add(1);
        tracing::warn!(hub = %hub, attempt = failures, ?delay, "{reason}; reconnecting");
        shared.state.reconnecting(failures, reason.to_string());
        if offline(&hub, &mut book, &shared.state, sleep(delay), false)
            .await
            .is_none()
        {
            return;
        }
    }
}

/// Runs `fut` (a connect or a backoff sleep) while serving commands. During a connect (`defer`)
/// calls are held back and sent once live, so "spawn, then subscribe" gets the server's answer;
/// during a backoff they are answered as disconnected. `None` means we were asked to stop; the
/// state is then already `Closed`.
async fn offline<F: Future, S: EventSink>(
    hub: &str,
    book: &mut Book<S>,
    state: &StateMachine,
    fut: F,
    defer: bool,
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
                Some(cmd) if defer => book.deferred.push(cmd),
                Some(cmd) => book.offline_command(hub, cmd),
            }
        }
    }
}

async fn serve<T: TokenSource, S: EventSink>(
    shared: &Shared<T>,
    book: &mut Book<S>,
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

    // Calls made while connecting go out now, after the replay.
    for cmd in std::mem::take(&mut book.deferred) {
        if let Some(msg) = book.live_command(cmd)
            && let Err(e) = send(&mut ws, &msg, cfg.server_timeout).await
        {
            return lost(e);
        }
    }

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
                let pushed = match frame {
                    Some(Ok(WsMessage::Text(t))) => decoder.push(t.as_bytes()),
                    Some(Ok(WsMessage::Binary(b))) => decoder.push(&b),
                    Some(Ok(WsMessage::Close(frame))) => {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return lost(format!("WebSocket closed by the server {reason}").trim_end().into());
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return lost(e.to_string()),
                    None => return lost("WebSocket ended".into()),
                };
                if let Err(e) = pushed {
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
                let cmd = match cmd {
                    None => {
                        let _ = timeout(cfg.handshake_timeout, ws.close(None)).await;
                        return Ended::Shutdown("every handle was dropped".into());
                    }
                    Some(Command::Close { reply }) => {
                        let _ = timeout(cfg.handshake_timeout, ws.close(None)).await;
                        let _ = reply.send(());
                        return Ended::Shutdown("closed by the client".into());
                    }
                    Some(cmd) => cmd,
                };
                if let Some(msg) = book.live_command(cmd)
                    && let Err(e) = send(&mut ws, &msg, cfg.server_timeout).await
                {
                    return lost(e);
                }
            }
        }
    }
}

/// Handles every complete message buffered in the decoder.
async fn drain<S: EventSink>(
    decoder: &mut Decoder,
    ws: &mut Ws,
    book: &mut Book<S>,
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
                )
                .await;
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
