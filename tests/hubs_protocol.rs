//! The simulator's hubs on the wire, through a bare WebSocket client and moontick's codec:
//! negotiate (versions 0 and 1) and the `id` it hands out, the token check on negotiate, full
//! then sparse `GatewayQuote` records, Completions for calls with an `invocationId` and silence
//! for calls without one. The `#[ignore]`d test measures the market hub's quote throughput.

mod common;

use std::time::{Duration, Instant};

use common::{WAIT, fresh_token, start_sim};
use futures_util::{SinkExt, StreamExt};
use moontick::signalr::codec::{
    Completion, Decoded, Decoder, HandshakeRequest, Invocation, Message, Outcome,
};
use moontick::sim::Simulator;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Raw {
    ws: Ws,
    decoder: Decoder,
}

impl Raw {
    async fn connect(url: &str) -> Result<Raw, tungstenite::Error> {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        ws.send(WsMessage::text(HandshakeRequest::json_v1().encode()))
            .await?;
        let mut raw = Raw {
            ws,
            decoder: Decoder::client(),
        };
        match raw.next().await {
            Decoded::HandshakeReply(r) => assert_eq!(r.error, None),
            other => panic!("expected the handshake reply, got {other:?}"),
        }
        Ok(raw)
    }

    async fn next(&mut self) -> Decoded {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(d) = self.decoder.next_decoded() {
                    return d.expect("well-formed record");
                }
                match self.ws.next().await {
                    Some(Ok(WsMessage::Text(t))) => self.decoder.push(t.as_bytes()).unwrap(),
                    Some(Ok(_)) => {}
                    other => panic!("socket ended: {other:?}"),
                }
            }
        })
        .await
        .expect("a record arrives")
    }

    async fn send(&mut self, msg: Message) {
        self.ws.send(WsMessage::text(msg.encode())).await.unwrap();
    }

    async fn call(&mut self, id: &str, target: &str, args: Vec<Value>) {
        self.send(Message::Invocation(
            Invocation::new(target, args).with_id(id),
        ))
        .await;
    }

    /// The next message that is not a ping or an event, with the events seen on the way.
    async fn completion(&mut self) -> (Completion, Vec<Invocation>) {
        let mut events = Vec::new();
        loop {
            match self.next().await {
                Decoded::Message(Message::Completion(c)) => return (c, events),
                Decoded::Message(Message::Invocation(inv)) => events.push(inv),
                Decoded::Message(Message::Ping) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn event(&mut self, target: &str) -> Invocation {
        loop {
            if let Decoded::Message(Message::Invocation(inv)) = self.next().await
                && inv.target == target
            {
                return inv;
            }
        }
    }
}

fn ws_url(sim: &Simulator, hub: &str, query: &str) -> String {
    format!("ws://{}/hubs/{hub}?{query}", sim.addr())
}

async fn negotiate(sim: &Simulator, query: &str, token: Option<&str>) -> reqwest::Response {
    let mut req =
        reqwest::Client::new().post(format!("{}/hubs/market/negotiate{query}", sim.url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn negotiate_hands_out_a_one_time_connection_token() {
    let sim = start_sim(|_| {}).await;
    let token = fresh_token(&sim).await;
    let t = token.expose();

    assert_eq!(
        negotiate(&sim, "?negotiateVersion=1", None).await.status(),
        401
    );
    let v1: Value = negotiate(&sim, "?negotiateVersion=1", Some(t))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v1["negotiateVersion"], 1);
    assert_eq!(v1["availableTransports"][0]["transport"], "WebSockets");
    assert_eq!(
        v1["availableTransports"][0]["transferFormats"],
        json!(["Text", "Binary"])
    );
    let id = v1["connectionToken"].as_str().unwrap();
    assert_ne!(id, v1["connectionId"].as_str().unwrap());

    let url = ws_url(&sim, "market", &format!("id={id}&access_token={t}"));
    Raw::connect(&url)
        .await
        .expect("the connection token is accepted");
    match Raw::connect(&url).await.map(drop).unwrap_err() {
        tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 404),
        e => panic!("a reused connection token is refused: {e}"),
    }
    // The token is still required with an id.
    let id2 = negotiate(&sim, "?negotiateVersion=1", Some(t))
        .await
        .json::<Value>()
        .await
        .unwrap()["connectionToken"]
        .as_str()
        .unwrap()
        .to_string();
    match Raw::connect(&ws_url(&sim, "market", &format!("id={id2}")))
        .await
        .map(drop)
        .unwrap_err()
    {
        tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 401),
        e => panic!("{e}"),
    }

    // Version 0 (what signalrcore asks for): the connection id is the id.
    let v0: Value = negotiate(&sim, "", Some(t)).await.json().await.unwrap();
    assert_eq!(v0["negotiateVersion"], 0);
    assert!(v0.get("connectionToken").is_none());
    let id = v0["connectionId"].as_str().unwrap();
    Raw::connect(&ws_url(
        &sim,
        "market",
        &format!("id={id}&access_token={t}"),
    ))
    .await
    .expect("version 0 id accepted");
    assert_eq!(sim.stats().hub_negotiations, 3);
}

#[tokio::test]
async fn quotes_are_full_first_then_sparse_and_calls_are_answered_by_id() {
    let sim = start_sim(|c| c.quote_rate = 50.0).await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let token = fresh_token(&sim).await;
    let mut raw = Raw::connect(&ws_url(
        &sim,
        "market",
        &format!("access_token={}", token.expose()),
    ))
    .await
    .unwrap();

    // No invocationId: no reply, even for an unknown method.
    raw.send(Message::Invocation(Invocation::new("Nope", vec![])))
        .await;
    raw.call("1", "SubscribeContractQuotes", vec![json!(mnq)])
        .await;
    let (c, _) = raw.completion().await;
    assert_eq!((c.invocation_id.as_str(), c.outcome), ("1", Outcome::Void));

    let first = raw.event("GatewayQuote").await;
    assert_eq!(first.arguments[0], json!(mnq));
    let q = &first.arguments[1];
    for f in [
        "symbol",
        "symbolName",
        "lastPrice",
        "bestBid",
        "bestAsk",
        "change",
        "changePercent",
        "open",
        "high",
        "low",
        "lastUpdated",
        "timestamp",
    ] {
        assert!(q.get(f).is_some(), "{f} missing from the first quote {q}");
    }
    let mut sparse = false;
    for _ in 0..30 {
        let ev = raw.event("GatewayQuote").await;
        let q = ev.arguments[1].as_object().unwrap();
        for f in ["symbol", "lastUpdated", "timestamp"] {
            assert!(q.contains_key(f), "{f} missing from {q:?}");
        }
        // Prices and volume are never 0 or null; only a change against the open may be 0.
        assert!(
            q.iter()
                .filter(|(k, _)| !k.starts_with("change"))
                .all(|(_, v)| !v.is_null() && v != &json!(0)),
            "{q:?}"
        );
        sparse |= !q.contains_key("bestBid") || !q.contains_key("open");
    }
    assert!(sparse, "later quotes carry only what changed");
    // The hub counts the quote records it wrote (benchmarks compare it with Lua's count).
    moontick::tls::ensure_crypto_provider();
    let stats: serde_json::Value = reqwest::get(format!("{}/sim/stats", sim.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = stats["quotes_sent"].as_u64().unwrap();
    assert!(sent >= 31 && sent <= sim.quotes_sent(), "{stats}");

    raw.call("2", "Nope", vec![]).await;
    let (c, _) = raw.completion().await;
    assert_eq!(c.invocation_id, "2");
    assert_eq!(
        c.outcome,
        Outcome::Error("Unknown hub method 'Nope'".into())
    );
}

/// Measures what one loopback client receives when the simulator quotes all four contracts at
/// `QUOTE_RATE` each. Run with
/// `cargo test --release --test hubs_protocol -- --ignored --nocapture quote_throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it on purpose, in release"]
async fn quote_throughput() {
    const QUOTE_RATE: f64 = 100_000.0;
    const MEASURE: Duration = Duration::from_secs(5);
    let sim = start_sim(|c| {
        c.quote_rate = QUOTE_RATE;
        c.rate_limits = false;
    })
    .await;
    let token = fresh_token(&sim).await;
    let mut raw = Raw::connect(&ws_url(
        &sim,
        "market",
        &format!("access_token={}", token.expose()),
    ))
    .await
    .unwrap();
    for (i, ticker) in ["MNQ", "MES", "NQ", "ES"].iter().enumerate() {
        let id = sim.contract_id(ticker).unwrap();
        raw.call(&i.to_string(), "SubscribeContractQuotes", vec![json!(id)])
            .await;
    }
    // Count records straight from the frames: decoding JSON here would measure the client.
    let needle = br#"{"type":1,"target":"GatewayQuote""#;
    let count = |data: &[u8]| {
        data.split(|&b| b == 0x1e)
            .filter(|r| r.starts_with(needle))
            .count() as u64
    };
    let warm = Instant::now() + Duration::from_secs(1);
    while Instant::now() < warm {
        raw.ws.next().await.unwrap().unwrap();
    }
    let (mut quotes, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < MEASURE {
        if let WsMessage::Text(t) = raw.ws.next().await.unwrap().unwrap() {
            bytes += t.len() as u64;
            quotes += count(t.as_bytes());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "quote throughput: {:.0} quotes/s received ({:.1} MB/s) with 4 contracts at {QUOTE_RATE}/s each",
        quotes as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    assert!(quotes > 0);
}

/// A client that stops reading while quotes (and the trades in them) pour in is dropped once it
/// has fallen past the hub's queue, and the drop and the events it missed are counted in
/// `/sim/stats`: the simulator never serves on with a silent gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_falls_behind_is_dropped_and_counted_never_skipped_silently() {
    let sim = start_sim(|c| {
        c.quote_rate = 20_000.0;
        c.rate_limits = false;
    })
    .await;
    let token = fresh_token(&sim).await;
    let mut raw = Raw::connect(&ws_url(
        &sim,
        "market",
        &format!("access_token={}", token.expose()),
    ))
    .await
    .unwrap();
    for (i, ticker) in ["MNQ", "MES", "NQ", "ES"].iter().enumerate() {
        let id = sim.contract_id(ticker).unwrap();
        raw.call(&i.to_string(), "SubscribeContractQuotes", vec![json!(id)])
            .await;
    }
    moontick::tls::ensure_crypto_provider();
    let stats = || async {
        reqwest::get(format!("{}/sim/stats", sim.url()))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    // Not reading for a while: the socket's buffers fill, and the hub's queue for this client
    // overflows while its writer waits on the socket.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Reading again: what was sent before the gap arrives, then the socket ends.
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match raw.ws.next().await {
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the lagging client's connection ends");
    let seen = stats().await;
    assert_eq!(seen["lagging_dropped"], 1, "{seen}");
    assert!(seen["lagging_skipped"].as_u64().unwrap() > 0, "{seen}");
}
