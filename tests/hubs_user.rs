//! Our user hub client against the simulator's user hub: an order placed over REST produces
//! order, position, trade and account events in the wrapped `{action, data}` shape, only for the
//! subscribed account, and they decode into the wire model.

mod common;

use std::time::Duration;

use common::{WAIT, approve, assert_no_secret_logged, client, credentials, session, start_sim};
use moontick::feed::{SessionTokens, UserEvent, UserFeed, UserFeedConfig};
use moontick::gateway::requests::PlaceOrderRequest;
use moontick::gateway::wire::{OrderSide, OrderStatus, OrderType};
use moontick::signalr::Backoff;
use tokio::sync::mpsc;

async fn next_event<T>(
    rx: &mut mpsc::Receiver<UserEvent>,
    mut pick: impl FnMut(UserEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(t) = pick(rx.recv().await.expect("event stream open")) {
                return t;
            }
        }
    })
    .await
    .expect("the expected user event arrives")
}

#[tokio::test]
async fn events_of_an_order_placed_over_rest_arrive_and_decode() {
    let sim = start_sim(|c| c.quote_rate = 10.0).await;
    let account = sim.account_id();
    let mnq = sim.contract_id("MNQ").unwrap();
    let mut cfg = UserFeedConfig::new(sim.user_hub_url());
    cfg.hub.keep_alive_interval = Duration::from_millis(200);
    cfg.hub.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(300),
        jitter: 0.2,
    };
    let (user, mut events) = UserFeed::connect(
        cfg,
        SessionTokens::new(session(&sim, None, Some(credentials()))),
    )
    .await
    .expect("user hub connects");
    user.subscribe_all(account).await.expect("subscribed");

    let rest = client(&sim);
    let id = rest
        .place_order(&approve(&PlaceOrderRequest {
            account_id: account,
            contract_id: mnq.clone(),
            order_type: OrderType::Market,
            side: OrderSide::Bid,
            size: 1,
            limit_price: None,
            stop_price: None,
            trail_price: None,
            custom_tag: Some("hub-test-1".into()),
            stop_loss_bracket: None,
            take_profit_bracket: None,
        }))
        .await
        .expect("order placed");

    let (action, order) = next_event(&mut events, |e| match e {
        UserEvent::Order { action, order }
            if order.id == id && order.status == OrderStatus::Filled =>
        {
            Some((action, order))
        }
        _ => None,
    })
    .await;
    assert_eq!(action, Some(1));
    assert_eq!(order.account_id, account);
    assert_eq!(order.custom_tag.as_deref(), Some("hub-test-1"));
    assert_eq!(order.fill_volume, 1);

    let (action, trade) = next_event(&mut events, |e| match e {
        UserEvent::Trade { action, trade } if trade.order_id == id => Some((action, trade)),
        _ => None,
    })
    .await;
    assert_eq!(action, Some(0));
    assert_eq!(trade.size, 1);
    assert!(trade.price > 0.0);

    let (action, position) = next_event(&mut events, |e| match e {
        UserEvent::Position { action, position } if position.contract_id == mnq => {
            Some((action, position))
        }
        _ => None,
    })
    .await;
    assert_eq!(action, Some(1));
    assert_eq!(position.size, 1);

    // Flattening closes the position: action 2, size 0.
    rest.close_position(account, &mnq).await.expect("closed");
    let (action, closed) = next_event(&mut events, |e| match e {
        UserEvent::Position { action, position }
            if position.contract_id == mnq && position.size == 0 =>
        {
            Some((action, position))
        }
        _ => None,
    })
    .await;
    assert_eq!(action, Some(2));
    assert_eq!(closed.account_id, account);
    // The fill changed the balance (fees at least).
    next_event(&mut events, |e| match e {
        UserEvent::Account { account: a, .. } if a.id == account => Some(()),
        _ => None,
    })
    .await;

    user.close().await;
    let tokens: Vec<String> = sim
        .stats()
        .hub_tokens
        .iter()
        .map(|t| t.expose().to_string())
        .collect();
    assert_no_secret_logged(&tokens.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn other_accounts_events_are_not_sent() {
    let sim = start_sim(|c| c.quote_rate = 10.0).await;
    let account = sim.account_id();
    let mnq = sim.contract_id("MNQ").unwrap();
    let (user, mut events) = UserFeed::connect(
        UserFeedConfig::new(sim.user_hub_url()),
        SessionTokens::new(session(&sim, None, Some(credentials()))),
    )
    .await
    .unwrap();
    // Subscribed to another account's orders only.
    user.subscribe_orders(moontick::sim::INACTIVE_ACCOUNT_ID)
        .await
        .unwrap();
    let rest = client(&sim);
    let mut req = PlaceOrderRequest {
        account_id: account,
        contract_id: mnq,
        order_type: OrderType::Limit,
        side: OrderSide::Bid,
        size: 1,
        limit_price: Some(1000.0),
        stop_price: None,
        trail_price: None,
        custom_tag: None,
        stop_loss_bracket: None,
        take_profit_bracket: None,
    };
    rest.place_order(&approve(&req)).await.unwrap();
    // Now subscribed to the right one: the next order shows up, and the first one never did.
    user.subscribe_orders(account).await.unwrap();
    req.custom_tag = Some("second".into());
    let second = rest.place_order(&approve(&req)).await.unwrap();
    let first_seen = next_event(&mut events, |e| match e {
        UserEvent::Order { order, .. } => Some(order),
        _ => None,
    })
    .await;
    assert_eq!(first_seen.id, second, "the unsubscribed order was not sent");
    user.close().await;
}
