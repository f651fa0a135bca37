//! A scriptable SignalR hub for tests, on `127.0.0.1:0`, speaking through moontick's own codec:
//! the test body plays the server, one accepted connection at a time, until the simulator's hubs
//! exist.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use moontick::signalr::codec::{
    Close, Completion, Decoded, Decoder, HandshakeReply, Invocation, Message, Outcome,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

/// Generous: a slow shared CI machine must not fail a test that is only waiting for something.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn init() {
    moontick::tls::ensure_crypto_provider();
}

/// What the client sent on the WebSocket upgrade.
#[derive(Debug, Clone)]
pub struct Upgrade {
    pub path: String,
    pub access_token: Option<String>,
    pub authorization: Option<String>,
}

pub struct TestHub {
    /// `http://127.0.0.1:<port>/hubs/market`: the client must turn it into `ws://`.
    pub url: String,
    conns: mpsc::UnboundedReceiver<ServerConn>,
    /// When set, upgrades are refused with this HTTP status.
    pub reject_with: Arc<Mutex<Option<u16>>>,
}

impl TestHub {
    pub async fn start(path: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let (tx, conns) = mpsc::unbounded_channel();
        let reject_with = Arc::new(Mutex::new(None));
        let reject = reject_with.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let reject = *reject.lock().unwrap();
                tokio::spawn(async move {
                    if let Some(conn) = ServerConn::accept(stream, reject).await {
                        let _ = tx.send(conn);
                    }
                });
            }
        });
        Self {
            url,
            conns,
            reject_with,
        }
    }

    /// The next connection the client opens.
    pub async fn accept(&mut self) -> ServerConn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("the client connects")
            .expect("hub listener alive")
    }

    /// `None` if no connection comes within `within`.
    pub async fn try_accept(&mut self, within: Duration) -> Option<ServerConn> {
        tokio::time::timeout(within, self.conns.recv())
            .await
            .ok()
            .flatten()
    }
}

pub struct ServerConn {
    pub upgrade: Upgrade,
    ws: WebSocketStream<TcpStream>,
    decoder: Decoder,
}

impl ServerConn {
    // The callback's error type is tungstenite's `ErrorResponse`; boxing it is not ours to do.
    #[allow(clippy::result_large_err)]
    async fn accept(stream: TcpStream, reject: Option<u16>) -> Option<Self> {
        let seen = Arc::new(Mutex::new(None));
        let seen_cb = seen.clone();
        let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let query = req.uri().query().unwrap_or("");
            let access_token = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("access_token="))
                .map(str::to_string);
            let authorization = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            *seen_cb.lock().unwrap() = Some(Upgrade {
                path: req.uri().path().to_string(),
                access_token,
                authorization,
            });
            match reject {
                Some(status) => {
                    let mut err = ErrorResponse::new(Some("refused".into()));
                    *err.status_mut() = StatusCode::from_u16(status).unwrap();
                    Err(err)
                }
                None => Ok(resp),
            }
        };
        let ws = tokio_tungstenite::accept_hdr_async(stream, callback)
            .await
            .ok()?;
        let upgrade = seen.lock().unwrap().take()?;
        Some(Self {
            upgrade,
            ws,
            decoder: Decoder::server(),
        })
    }

    /// The next decoded item; `None` once the client has gone.
    pub async fn read(&mut self) -> Option<Decoded> {
        loop {
            if let Some(d) = self.decoder.next_decoded() {
                return Some(d.expect("the client sends well-formed records"));
            }
            match tokio::time::timeout(WAIT, self.ws.next()).await.ok()?? {
                Ok(WsMessage::Text(t)) => self.decoder.push(t.as_bytes()).unwrap(),
                Ok(WsMessage::Binary(b)) => self.decoder.push(&b).unwrap(),
                Ok(WsMessage::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads the client's handshake request and accepts it.
    pub async fn handshake(&mut self) {
        self.handshake_with(HandshakeReply::ok()).await;
    }

    pub async fn handshake_with(&mut self, reply: HandshakeReply) {
        match self.read().await {
            Some(Decoded::HandshakeRequest(r)) => {
                assert_eq!((r.protocol.as_str(), r.version), ("json", 1))
            }
            other => panic!("expected a handshake request, got {other:?}"),
        }
        self.send_text(&reply.encode()).await;
    }

    /// The next invocation from the client, skipping its keep-alive pings.
    pub async fn invocation(&mut self) -> Invocation {
        loop {
            match self.read().await {
                Some(Decoded::Message(Message::Invocation(inv))) => return inv,
                Some(Decoded::Message(Message::Ping)) => continue,
                other => panic!("expected an invocation, got {other:?}"),
            }
        }
    }

    /// Answers the next invocation with a void Completion and returns it.
    pub async fn accept_invocation(&mut self) -> Invocation {
        let inv = self.invocation().await;
        let id = inv
            .invocation_id
            .clone()
            .expect("subscriptions are invoked with an id");
        self.send(&Message::Completion(Completion::new(id, Outcome::Void)))
            .await;
        inv
    }

    /// Waits for a keep-alive Ping from the client.
    pub async fn expect_ping(&mut self) {
        loop {
            match self.read().await {
                Some(Decoded::Message(Message::Ping)) => return,
                Some(_) => continue,
                None => panic!("client went away before pinging"),
            }
        }
    }

    pub async fn send(&mut self, msg: &Message) {
        self.send_text(&msg.encode()).await;
    }

    /// One WebSocket text frame holding exactly `text` (which may hold several records or part
    /// of one).
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(WsMessage::text(text.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_close(&mut self, error: Option<&str>, allow_reconnect: bool) {
        let close = Close {
            error: error.map(str::to_string),
            allow_reconnect,
        };
        self.send(&Message::Close(close)).await;
    }

    pub async fn try_send_text(&mut self, text: &str) -> Result<(), tungstenite::Error> {
        self.ws.send(WsMessage::text(text.to_string())).await
    }
}

/// A server event record (`type:1`, no invocation id).
pub fn event(target: &str, arguments: Vec<Value>) -> String {
    Message::Invocation(Invocation::new(target, arguments)).encode()
}

pub fn quote(contract: &str, data: Value) -> String {
    event("GatewayQuote", vec![json!(contract), data])
}
