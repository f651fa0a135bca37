//! The hub client over real loopback sockets against a scripted hub (tests/common): merging
//! sparse quotes, reconnect and resubscribe, token refresh on reconnect, handshake and upgrade
//! failures, server silence, Completion errors, Close with and without `allowReconnect`, and user
//! hub events. No timing assertions: every wait is for a condition, with a generous limit.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::scripted_hub::{TestHub, WAIT, event, init, quote};
use moontick::feed::{
    MarketEvent, MarketEvents, MarketFeed as MarketHub, MarketFeedConfig as MarketHubConfig,
    UserEvent, UserFeed as UserHub, UserFeedConfig,
};
use moontick::secret::Secret;
use moontick::signalr::codec::{Completion, HandshakeReply, Message, Outcome};
use moontick::signalr::{
    Backoff, ConnectionState, FixedToken, HubConfig, HubConnection, HubError, TokenError,
    TokenSource,
};
use serde_json::json;
use tokio::sync::{mpsc, watch};

const MNQ: &str = "CON.F.US.MNQ.Z25";

/// Short intervals so failures are detected quickly; the server timeout stays long except where
/// a test is about it, because the scripted hub sends no keep-alives of its own.
fn fast(hub: HubConfig) -> HubConfig {
    HubConfig {
        handshake_timeout: Duration::from_secs(5),
        keep_alive_interval: Duration::from_millis(100),
        server_timeout: Duration::from_secs(20),
        invoke_timeout: Duration::from_secs(5),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            jitter: 0.2,
        },
        ..hub
    }
}

fn market_config(url: &str) -> MarketHubConfig {
    let mut cfg = MarketHubConfig::new(url);
    cfg.hub = fast(cfg.hub);
    cfg
}

fn token(s: &str) -> FixedToken {
    FixedToken(Secret::new(s))
}

fn user_config(url: &str) -> UserFeedConfig {
    let mut cfg = UserFeedConfig::new(url);
    cfg.hub = fast(cfg.hub);
    cfg
}

/// Where a test reads events from: a feed's channel or the market feed's queue.
trait Events<E> {
    async fn next(&mut self) -> Option<E>;
}

impl<E> Events<E> for mpsc::Receiver<E> {
    async fn next(&mut self) -> Option<E> {
        self.recv().await
    }
}

impl Events<MarketEvent> for MarketEvents {
    async fn next(&mut self) -> Option<MarketEvent> {
        self.recv().await
    }
}

/// Receives until `pick` returns `Some`, skipping other events.
async fn next_matching<E: std::fmt::Debug, T>(
    rx: &mut impl Events<E>,
    mut pick: impl FnMut(E) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.next().await.expect("event stream open");
            if let Some(t) = pick(ev) {
                return t;
            }
        }
    })
    .await
    .expect("expected event arrives")
}

async fn next_quote(rx: &mut MarketEvents) -> moontick::market::Quote {
    next_matching(rx, |e| match e {
        MarketEvent::Quote(quote) if &*quote.contract == MNQ => Some(quote),
        _ => None,
    })
    .await
}

async fn wait_state(
    rx: &mut watch::Receiver<ConnectionState>,
    pred: impl FnMut(&ConnectionState) -> bool,
) -> ConnectionState {
    tokio::time::timeout(WAIT, rx.wait_for(pred))
        .await
        .expect("state reached")
        .expect("state channel open")
        .clone()
}

#[tokio::test]
async fn sparse_quotes_merge_end_to_end() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let (market, mut events) = MarketHub::spawn(market_config(&hub.url), token("tok-1"));
    let mut conn = hub.accept().await;
    assert_eq!(conn.upgrade.path, "/hubs/market");
    assert_eq!(conn.upgrade.access_token.as_deref(), Some("tok-1"));
    assert_eq!(conn.upgrade.authorization.as_deref(), Some("Bearer tok-1"));

    // The handshake reply shares its frame with the first quote, which must not be lost.
    match conn.read().await {
        Some(moontick::signalr::codec::Decoded::HandshakeRequest(_)) => {}
        other => panic!("{other:?}"),
    }
    let full = json!({"symbol":"F.US.MNQ","lastPrice":25512.75,"bestBid":25512.5,"bestAsk":25512.75,"volume":412337});
    conn.send_text(&format!(
        "{}{}",
        HandshakeReply::ok().encode(),
        quote(MNQ, full)
    ))
    .await;
    let q = next_quote(&mut events).await;
    assert_eq!(q.bid, Some(25512.5));

    let sub = tokio::spawn({
        let market = market.clone();
        async move { market.subscribe_quotes(MNQ, "MNQ".into()).await }
    });
    let inv = conn.accept_invocation().await;
    assert_eq!(inv.target, "SubscribeContractQuotes");
    assert_eq!(inv.arguments, vec![json!(MNQ)]);
    sub.await.unwrap().unwrap();

    // Two sparse records in one frame, then one record split across two frames.
    let a = quote(MNQ, json!({"bestBid":25512.75,"bestAsk":25513.0}));
    let b = quote(MNQ, json!({"lastPrice":25513.0,"bestBid":null}));
    conn.send_text(&format!("{a}{b}")).await;
    let q1 = next_quote(&mut events).await;
    assert_eq!(
        (q1.bid, q1.ask, q1.last),
        (Some(25512.75), Some(25513.0), Some(25512.75))
    );
    let q2 = next_quote(&mut events).await;
    assert_eq!(
        (q2.bid, q2.last, q2.volume),
        (Some(25512.75), Some(25513.0), Some(412337))
    );
    let c = quote(MNQ, json!({"volume":412340}));
    let (c1, c2) = c.split_at(c.len() / 2);
    conn.send_text(c1).await;
    conn.send_text(c2).await;
    let q3 = next_quote(&mut events).await;
    assert_eq!(q3.volume, Some(412340));
    assert_eq!(
        q3.ask,
        Some(25513.0),
        "never reset to 0 or None by a sparse update"
    );
    assert_eq!(&*q3.symbol, "MNQ", "the name it was subscribed by");

    // Trades arrive as an array, depth as a single object: both are accepted.
    conn.send_text(&event(
        "GatewayTrade",
        vec![
            json!(MNQ),
            json!([{"price":25513.0,"type":0,"volume":2},{"price":25513.25,"type":1,"volume":1}]),
        ],
    ))
    .await;
    conn.send_text(&event(
        "GatewayDepth",
        vec![
            json!(MNQ),
            json!({"type":2,"price":25512.75,"volume":3,"currentVolume":14}),
        ],
    ))
    .await;
    let trades = next_matching(&mut events, |e| match e {
        MarketEvent::Trades(trades) => Some(trades),
        _ => None,
    })
    .await;
    assert_eq!(trades.len(), 2);
    let depth = next_matching(&mut events, |e| match e {
        MarketEvent::Depth(depth) => Some(depth),
        _ => None,
    })
    .await;
    assert_eq!(depth.levels.len(), 1);
    assert_eq!(depth.levels[0].size, 14.0, "the resting size");
    market.close().await;
}

#[tokio::test]
async fn dropped_socket_reconnects_resubscribes_and_quotes_resume() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let (market, mut events) = MarketHub::spawn(market_config(&hub.url), token("t"));
    let mut state = market.state();
    let mut conn = hub.accept().await;
    conn.handshake().await;
    let sub = tokio::spawn({
        let market = market.clone();
        async move { market.subscribe_quotes(MNQ, "MNQ".into()).await }
    });
    conn.accept_invocation().await;
    sub.await.unwrap().unwrap();
    conn.send_text(&quote(MNQ, json!({"bestBid":100.25,"bestAsk":100.5})))
        .await;
    assert_eq!(next_quote(&mut events).await.bid, Some(100.25));

    drop(conn);
    let s = wait_state(&mut state, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    assert!(
        matches!(s, ConnectionState::Reconnecting { attempt: 1, .. }),
        "{s:?}"
    );

    let mut conn = hub.accept().await;
    conn.handshake().await;
    let replay = conn.accept_invocation().await;
    assert_eq!(replay.target, "SubscribeContractQuotes");
    assert_eq!(replay.arguments, vec![json!(MNQ)]);
    wait_state(&mut state, ConnectionState::is_live).await;
    conn.send_text(&quote(MNQ, json!({"bestAsk":100.75}))).await;
    let q = next_quote(&mut events).await;
    assert_eq!((q.bid, q.ask), (Some(100.25), Some(100.75)));
}

/// Hands out `tok-1`, `tok-2`, ...: a session that refreshed its token while we were away.
struct Rotating(AtomicU32);

impl TokenSource for Rotating {
    async fn token(&self) -> Result<Secret, TokenError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Secret::new(format!("tok-{n}")))
    }
}

#[tokio::test]
async fn expired_token_is_refreshed_before_the_reconnect() {
    init();
    let mut hub = TestHub::start("/hubs/user").await;
    let (user, _events) = UserHub::spawn(user_config(&hub.url), Rotating(AtomicU32::new(0)));
    let mut conn = hub.accept().await;
    assert_eq!(conn.upgrade.access_token.as_deref(), Some("tok-1"));
    conn.handshake().await;
    drop(conn);
    let conn = hub.accept().await;
    assert_eq!(conn.upgrade.access_token.as_deref(), Some("tok-2"));
    assert_eq!(conn.upgrade.authorization.as_deref(), Some("Bearer tok-2"));
    user.close().await;
}

#[tokio::test]
async fn handshake_error_is_reported_with_the_server_message() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let cfg = fast(HubConfig::new("market", hub.url.clone()));
    let connect = tokio::spawn(HubConnection::connect(cfg, token("t")));
    let mut conn = hub.accept().await;
    conn.handshake_with(HandshakeReply::error(
        "Requested protocol 'json' is not available.",
    ))
    .await;
    let err = connect.await.unwrap().unwrap_err();
    assert_eq!(
        err,
        HubError::HandshakeRejected {
            hub: "market".into(),
            message: "Requested protocol 'json' is not available.".into()
        }
    );
}

#[tokio::test]
async fn rejected_upgrade_reports_the_http_status_without_the_token() {
    init();
    let hub = TestHub::start("/hubs/market").await;
    *hub.reject_with.lock().unwrap() = Some(401);
    let cfg = fast(HubConfig::new("market", hub.url.clone()));
    let err = HubConnection::connect(cfg, token("very-secret-token"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HubError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("very-secret-token"));
}

#[tokio::test]
async fn silent_server_times_out_and_the_client_reconnects() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let mut cfg = fast(HubConfig::new("market", hub.url.clone()));
    cfg.server_timeout = Duration::from_millis(400);
    let (client, _events) = HubConnection::spawn(cfg, token("t"));
    let mut state = client.state();
    let mut silent = hub.accept().await;
    silent.handshake().await;
    silent.expect_ping().await; // keep-alives flow from the client...
    // ...but the server says nothing more, and keeps the socket open.
    let s = wait_state(&mut state, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let ConnectionState::Reconnecting { reason, .. } = s else {
        unreachable!()
    };
    assert!(reason.contains("no message from the server"), "{reason}");
    let mut conn = hub.accept().await;
    conn.handshake().await;
    wait_state(&mut state, ConnectionState::is_live).await;
    drop(silent);
    client.close().await;
}

#[tokio::test]
async fn completion_error_surfaces_with_the_server_message() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let (market, _events) = MarketHub::spawn(market_config(&hub.url), token("t"));
    let mut conn = hub.accept().await;
    conn.handshake().await;
    let sub = tokio::spawn({
        let market = market.clone();
        async move {
            market
                .subscribe_quotes("CON.F.US.NOPE.Z25", "NOPE".into())
                .await
        }
    });
    let inv = conn.invocation().await;
    let id = inv.invocation_id.unwrap();
    let completion = Completion::new(id, Outcome::Error("Contract not found".into()));
    conn.send(&Message::Completion(completion)).await;
    let err = sub.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "SignalR market hub error: Contract not found"
    );

    // A refused subscription is not replayed after a reconnect; an accepted one is.
    let sub = tokio::spawn({
        let market = market.clone();
        async move { market.subscribe_trades(MNQ).await }
    });
    conn.accept_invocation().await;
    sub.await.unwrap().unwrap();
    drop(conn);
    let mut conn = hub.accept().await;
    conn.handshake().await;
    let replay = conn.accept_invocation().await;
    assert_eq!(
        (replay.target.as_str(), replay.arguments),
        ("SubscribeContractTrades", vec![json!(MNQ)])
    );
}

#[tokio::test]
async fn close_without_allow_reconnect_stops_for_good() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let (client, _events) =
        HubConnection::spawn(fast(HubConfig::new("market", hub.url.clone())), token("t"));
    let mut state = client.state();
    let mut conn = hub.accept().await;
    conn.handshake().await;
    conn.send_close(Some("Server shutting down"), false).await;
    let s = wait_state(&mut state, ConnectionState::is_closed).await;
    let ConnectionState::Closed { reason } = s else {
        unreachable!()
    };
    assert!(reason.contains("Server shutting down"), "{reason}");
    assert!(
        hub.try_accept(Duration::from_millis(500)).await.is_none(),
        "no reconnect"
    );
    let err = client.invoke("Anything", vec![]).await.unwrap_err();
    assert!(matches!(err, HubError::Closed { .. }), "{err:?}");
}

#[tokio::test]
async fn close_with_allow_reconnect_reconnects() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let (client, _events) =
        HubConnection::spawn(fast(HubConfig::new("market", hub.url.clone())), token("t"));
    let mut conn = hub.accept().await;
    conn.handshake().await;
    conn.send_close(Some("rebalancing"), true).await;
    let mut conn = hub.accept().await;
    conn.handshake().await;
    assert!(client.wait_live(WAIT).await);
    client.close().await;
}

#[tokio::test]
async fn user_hub_events_decode_wrapped_and_bare() {
    init();
    let mut hub = TestHub::start("/hubs/user").await;
    let (user, mut events) = UserHub::spawn(user_config(&hub.url), token("t"));
    let mut conn = hub.accept().await;
    conn.handshake().await;
    let sub = tokio::spawn({
        let user = user.clone();
        async move { user.subscribe_all(123).await }
    });
    let mut seen = Vec::new();
    for _ in 0..4 {
        let inv = conn.accept_invocation().await;
        seen.push((inv.target, inv.arguments));
    }
    sub.await.unwrap().unwrap();
    assert_eq!(
        seen,
        vec![
            ("SubscribeAccounts".to_string(), vec![]),
            ("SubscribeOrders".to_string(), vec![json!(123)]),
            ("SubscribePositions".to_string(), vec![json!(123)]),
            ("SubscribeTrades".to_string(), vec![json!(123)]),
        ]
    );

    let order = |id: i64| json!({"id":id,"accountId":123,"contractId":MNQ,"creationTimestamp":"2025-12-01T15:30:03.4962794+00:00","status":6,"type":2,"side":0,"size":1,"fillVolume":0,"customTag":"s1-0001"});
    conn.send_text(&event(
        "GatewayUserOrder",
        vec![json!({"action":1,"data":order(1)})],
    ))
    .await;
    conn.send_text(&event(
        "GatewayUserOrder",
        vec![json!([order(2), {"action":1,"data":order(3)}])],
    ))
    .await;
    conn.send_text(&event("GatewayUserTrade", vec![json!({"action":0,"data":{"id":8604,"accountId":123,"contractId":MNQ,"creationTimestamp":"2025-12-01T15:30:03.5+00:00","price":25513.0,"fees":0.37,"side":0,"size":1,"voided":false,"orderId":1}})])).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            next_matching(&mut events, |e| match e {
                UserEvent::Order { action, order } => Some((action, order.id)),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(ids, vec![(Some(1), 1), (None, 2), (Some(1), 3)]);
    let fill = next_matching(&mut events, |e| match e {
        UserEvent::Trade { trade, .. } => Some(trade),
        _ => None,
    })
    .await;
    assert_eq!((fill.order_id, fill.profit_and_loss), (1, None));
}

#[tokio::test]
async fn silent_contract_is_reported_stale_then_resumed() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let mut cfg = market_config(&hub.url);
    cfg.stale_after = Duration::from_millis(200);
    let (market, mut events) = MarketHub::spawn(cfg, token("t"));
    let mut conn = hub.accept().await;
    conn.handshake().await;
    let sub = tokio::spawn({
        let market = market.clone();
        async move { market.subscribe_quotes(MNQ, "MNQ".into()).await }
    });
    conn.accept_invocation().await;
    sub.await.unwrap().unwrap();
    let stale = next_matching(&mut events, |e| match e {
        MarketEvent::Stale {
            contract_id,
            silent_for,
        } => Some((contract_id, silent_for)),
        _ => None,
    })
    .await;
    assert_eq!(&*stale.0, MNQ);
    assert!(stale.1 >= Duration::from_millis(200));
    conn.send_text(&quote(MNQ, json!({"bestBid":1.25}))).await;
    let resumed = next_matching(&mut events, |e| match e {
        MarketEvent::Resumed { contract_id } => Some(contract_id),
        _ => None,
    })
    .await;
    assert_eq!(&*resumed, MNQ);
}

#[tokio::test]
async fn invoke_returns_the_completion_result() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let (client, _events) =
        HubConnection::spawn(fast(HubConfig::new("market", hub.url.clone())), token("t"));
    let mut conn = hub.accept().await;
    conn.handshake().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.invoke("Echo", vec![json!(7)]).await }
    });
    let inv = conn.invocation().await;
    assert_eq!(inv.arguments, vec![json!(7)]);
    let completion = Completion::new(
        inv.invocation_id.unwrap(),
        Outcome::Result(json!({"ok":true})),
    );
    conn.send(&Message::Completion(completion)).await;
    assert_eq!(call.await.unwrap().unwrap(), json!({"ok":true}));
}

#[tokio::test]
async fn silent_handshake_times_out() {
    init();
    let mut hub = TestHub::start("/hubs/market").await;
    let mut cfg = fast(HubConfig::new("market", hub.url.clone()));
    cfg.handshake_timeout = Duration::from_millis(300);
    let connect = tokio::spawn(HubConnection::connect(cfg, token("t")));
    let _conn = hub.accept().await; // upgraded, but never answers the handshake
    let err = connect.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Timeout {
                stage: "handshake reply",
                ..
            }
        ),
        "{err:?}"
    );
}

struct Broken;

impl TokenSource for Broken {
    async fn token(&self) -> Result<Secret, TokenError> {
        Err(TokenError::Refused("login failed: errorCode 3".into()))
    }
}

#[tokio::test]
async fn token_source_failure_is_reported_and_retried() {
    init();
    let hub = TestHub::start("/hubs/market").await;
    let cfg = fast(HubConfig::new("market", hub.url.clone()));
    let err = HubConnection::connect(cfg.clone(), Broken)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        HubError::Token(TokenError::Refused("login failed: errorCode 3".into()))
    );
    let (client, _events) = HubConnection::spawn(cfg, Broken);
    let mut state = client.state();
    let s = wait_state(&mut state, |s| {
        matches!(s, ConnectionState::Reconnecting { attempt: 2, .. })
    })
    .await;
    let ConnectionState::Reconnecting { reason, .. } = s else {
        unreachable!()
    };
    assert!(reason.contains("errorCode 3"), "{reason}");
    client.close().await;
    assert!(client.state().borrow().is_closed());
}

#[tokio::test]
async fn https_url_uses_tls_and_fails_cleanly_against_a_plain_socket() {
    init();
    let hub = TestHub::start("/hubs/market").await;
    // The hub speaks plain TCP, so the TLS handshake fails: an error, not a panic.
    let url = hub.url.replace("http://", "https://");
    let cfg = fast(HubConfig::new("market", url));
    let err = HubConnection::connect(cfg, token("secret-in-url"))
        .await
        .unwrap_err();
    assert!(matches!(err, HubError::WebSocket { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("secret-in-url"));
}
