//! Our market hub client against the simulator's market hub over loopback: quotes flow and merge
//! (sparse updates never turn a field into 0), a dropped socket is reconnected and resubscribed,
//! a token that expired while disconnected is refreshed first, and a handshake error, a silent
//! server, a Completion error, a Close with an error and a refused upgrade each behave as the
//! client promises. No timing assertions: every wait is for a condition, with a generous limit.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{WAIT, assert_no_secret_logged, credentials, session, session_with_margin, start_sim};
use moontick::feed::{
    MarketEvent, MarketEvents, MarketFeed as MarketHub, MarketFeedConfig as MarketHubConfig,
    SessionTokens,
};
use moontick::gateway::Session;
use moontick::market::Quote;
use moontick::secret::Secret;
use moontick::signalr::{Backoff, ConnectionState, FixedToken, HubError};
use moontick::sim::Simulator;
use tokio::sync::watch;

fn config(sim: &Simulator) -> MarketHubConfig {
    let mut cfg = MarketHubConfig::new(sim.market_hub_url());
    cfg.hub.handshake_timeout = Duration::from_secs(5);
    cfg.hub.keep_alive_interval = Duration::from_millis(200);
    cfg.hub.invoke_timeout = Duration::from_secs(5);
    cfg.hub.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(300),
        jitter: 0.2,
    };
    cfg
}

fn tokens(sim: &Simulator) -> SessionTokens {
    SessionTokens::new(session(sim, None, Some(credentials())))
}

async fn next_quote(rx: &mut MarketEvents, contract: &str) -> Quote {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await.expect("event stream open") {
                MarketEvent::Quote(quote) if &*quote.contract == contract => {
                    return quote;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a quote arrives")
}

async fn wait_state(
    rx: &mut watch::Receiver<ConnectionState>,
    pred: impl FnMut(&ConnectionState) -> bool,
) -> ConnectionState {
    tokio::time::timeout(WAIT, rx.wait_for(pred))
        .await
        .expect("state reached in time")
        .expect("state channel open")
        .clone()
}

fn hub_tokens(sim: &Simulator) -> Vec<String> {
    sim.stats()
        .hub_tokens
        .iter()
        .map(|t| t.expose().to_string())
        .collect()
}

fn assert_complete(q: &Quote) {
    for (name, v) in [
        ("bid", q.bid),
        ("ask", q.ask),
        ("last", q.last),
        ("open", q.open),
        ("high", q.high),
        ("low", q.low),
    ] {
        let v = v.unwrap_or_else(|| panic!("{name} missing from the merged quote {q:?}"));
        assert!(v > 0.0, "{name} became {v}: {q:?}");
    }
    // Volume is absent only before the contract's first trade of the session.
    assert!(q.volume.is_none_or(|v| v > 0), "volume: {q:?}");
    assert!(
        (q.ask.unwrap() - q.bid.unwrap() - 0.25).abs() < 1e-9,
        "{q:?}"
    );
}

#[tokio::test]
async fn quotes_flow_and_sparse_updates_merge_without_zeros() {
    let sim = start_sim(|c| c.quote_rate = 40.0).await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let (market, mut events) = MarketHub::spawn(config(&sim), tokens(&sim));
    market
        .subscribe_quotes(&mnq, "MNQ".into())
        .await
        .expect("subscribed");
    let mut seen_bids = std::collections::HashSet::new();
    for _ in 0..40 {
        let q = next_quote(&mut events, &mnq).await;
        assert_complete(&q);
        assert_eq!(&*q.symbol, "MNQ");
        seen_bids.insert(q.bid.unwrap().to_bits());
    }
    let last = next_quote(&mut events, &mnq).await;
    assert!(last.volume.is_some_and(|v| v > 0), "{last:?}");
    // The walk moved, so the merge saw sparse updates that changed some fields and not others.
    assert!(seen_bids.len() > 1, "the bid never moved");
    market.close().await;
    assert_no_secret_logged(
        &hub_tokens(&sim)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
}

#[tokio::test]
async fn dropped_socket_reconnects_resubscribes_and_quotes_resume() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let (market, mut events) = MarketHub::spawn(config(&sim), tokens(&sim));
    let mut state = market.state();
    market.subscribe_quotes(&mnq, "MNQ".into()).await.unwrap();
    next_quote(&mut events, &mnq).await;
    assert_eq!(sim.stats().hub_connects, 1);

    sim.faults().drop_hub_connections();
    wait_state(&mut state, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    wait_state(&mut state, ConnectionState::is_live).await;
    while events.try_recv().is_some() {}
    let q = next_quote(&mut events, &mnq).await;
    assert_complete(&q);
    assert_eq!(sim.stats().hub_connects, 2);
    market.close().await;
}

#[tokio::test]
async fn periodic_drops_are_survived() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let (market, mut events) = MarketHub::spawn(config(&sim), tokens(&sim));
    market.subscribe_quotes(&mnq, "MNQ".into()).await.unwrap();
    sim.faults()
        .drop_hub_connections_every(Some(Duration::from_millis(300)));
    tokio::time::timeout(WAIT, async {
        while sim.stats().hub_connects < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the client kept reconnecting");
    sim.faults().drop_hub_connections_every(None);
    assert!(market.connection().wait_live(WAIT).await);
    while events.try_recv().is_some() {}
    assert_complete(&next_quote(&mut events, &mnq).await);
    market.close().await;
}

#[tokio::test]
async fn token_that_expired_while_disconnected_is_refreshed_before_the_reconnect() {
    let sim = start_sim(|c| {
        c.quote_rate = 10.0;
        c.token_lifetime = Duration::from_secs(3);
    })
    .await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let session: Arc<Session> =
        session_with_margin(&sim, None, Some(credentials()), Duration::from_millis(500));
    let (market, mut events) = MarketHub::spawn(config(&sim), SessionTokens::new(session.clone()));
    let mut state = market.state();
    market.subscribe_quotes(&mnq, "MNQ".into()).await.unwrap();
    next_quote(&mut events, &mnq).await;
    let first = hub_tokens(&sim);
    assert_eq!(first.len(), 1);

    // Cut the connection and keep the hub unreachable until the token has expired.
    sim.faults().reject_hub_upgrades(Some(503));
    sim.faults().drop_hub_connections();
    wait_state(&mut state, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let expiry = session.expires_at().expect("the session holds a token");
    tokio::time::timeout(WAIT, async {
        while chrono::Utc::now() <= expiry + chrono::Duration::milliseconds(200) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    sim.faults().reject_hub_upgrades(None);

    wait_state(&mut state, ConnectionState::is_live).await;
    while events.try_recv().is_some() {}
    next_quote(&mut events, &mnq).await;
    let tokens = hub_tokens(&sim);
    assert_eq!(tokens.len(), 2, "refused upgrades are not recorded");
    assert_ne!(tokens[1], tokens[0], "the reconnect used a fresh token");
    assert_eq!(
        sim.stats().hub_unauthorized,
        0,
        "the expired token was never offered"
    );
    market.close().await;
    assert_no_secret_logged(&tokens.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn handshake_error_is_reported_with_the_server_message() {
    let sim = start_sim(|_| {}).await;
    sim.faults()
        .hub_handshake_error(Some("Handshake refused by the simulator"));
    let err = MarketHub::connect(config(&sim), tokens(&sim))
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(
        err,
        HubError::HandshakeRejected {
            hub: "market".into(),
            message: "Handshake refused by the simulator".into()
        }
    );
    sim.faults().hub_handshake_error(None);
    let (market, _events) = MarketHub::connect(config(&sim), tokens(&sim))
        .await
        .expect("handshake accepted again");
    market.close().await;
}

#[tokio::test]
async fn silent_server_is_detected_by_the_ping_timeout_and_quotes_resume() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let mut cfg = config(&sim);
    cfg.hub.server_timeout = Duration::from_millis(800);
    cfg.stale_after = Duration::from_millis(400);
    let (market, mut events) = MarketHub::spawn(cfg, tokens(&sim));
    let mut state = market.state();
    market.subscribe_quotes(&mnq, "MNQ".into()).await.unwrap();
    next_quote(&mut events, &mnq).await;

    sim.faults().hubs_silent(true);
    let s = wait_state(&mut state, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let ConnectionState::Reconnecting { reason, .. } = s else {
        unreachable!()
    };
    assert!(reason.contains("no message from the server"), "{reason}");
    let stale = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(MarketEvent::Stale { contract_id, .. }) = events.recv().await {
                return contract_id;
            }
        }
    })
    .await
    .expect("the contract is reported stale");
    assert_eq!(&*stale, mnq);

    sim.faults().hubs_silent(false);
    wait_state(&mut state, ConnectionState::is_live).await;
    assert_complete(&next_quote(&mut events, &mnq).await);
    market.close().await;
}

#[tokio::test]
async fn unknown_method_gets_a_completion_error_and_fire_and_forget_is_ignored() {
    let sim = start_sim(|_| {}).await;
    let (market, _events) = MarketHub::connect(config(&sim), tokens(&sim))
        .await
        .unwrap();
    let conn = market.connection();
    let err = conn
        .invoke("SubscribeContractBars", vec![])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "SignalR market hub error: Unknown hub method 'SubscribeContractBars'"
    );
    // Wrong arguments to a real method are the server's error too.
    let err = conn
        .invoke("SubscribeContractQuotes", vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("target expects 1"), "{err}");
    // Without an invocationId nobody is told; the connection carries on.
    conn.send("NoSuchMethod", vec![]).unwrap();
    let mnq = sim.contract_id("MNQ").unwrap();
    market
        .subscribe_quotes(&mnq, "MNQ".into())
        .await
        .expect("still serving calls");
    assert!(market.state().borrow().is_live());
    market.close().await;
}

#[tokio::test]
async fn close_with_an_error_honours_allow_reconnect() {
    let sim = start_sim(|_| {}).await;
    let (market, _events) = MarketHub::connect(config(&sim), tokens(&sim))
        .await
        .unwrap();
    let mut state = market.state();
    sim.faults()
        .close_hub_connections("Connection closed with an error.", true);
    wait_state(&mut state, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    wait_state(&mut state, ConnectionState::is_live).await;

    sim.faults()
        .close_hub_connections("Connection closed with an error.", false);
    let s = wait_state(&mut state, ConnectionState::is_closed).await;
    let ConnectionState::Closed { reason } = s else {
        unreachable!()
    };
    assert!(
        reason.contains("Connection closed with an error."),
        "{reason}"
    );
    assert_eq!(sim.stats().hub_connects, 2);
}

#[tokio::test]
async fn bad_tokens_and_refused_upgrades_are_rejected_with_their_status() {
    let sim = start_sim(|_| {}).await;
    let garbage = FixedToken(Secret::new("not-a-jwt-but-secret"));
    let err = MarketHub::connect(config(&sim), garbage)
        .await
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(err, HubError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    let expired = FixedToken(sim.mint_token(chrono::Duration::seconds(-5)));
    let err = MarketHub::connect(config(&sim), expired.clone())
        .await
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(err, HubError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(sim.stats().hub_unauthorized, 2);

    sim.faults().reject_hub_upgrades(Some(503));
    let err = MarketHub::connect(config(&sim), tokens(&sim))
        .await
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(err, HubError::Rejected { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(sim.stats().hub_connects, 0);
    assert_no_secret_logged(&["not-a-jwt-but-secret", expired.0.expose()]);
}
