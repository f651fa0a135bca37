//! The feeds' bounded queues against the simulator's hubs over loopback, under a quote flood:
//! the market queue conflates per contract only once the reader has fallen past its bound (and
//! counts it), its depth never exceeds the bound plus one quote per contract, and order, fill and
//! position events all arrive, in order, while the user feed's reader is slower than the hub
//! (the hub connection waits for it instead of dropping, and the waits are counted).

mod common;

use std::time::Duration;

use common::{WAIT, client, credentials, session, start_sim};
use moontick::feed::{
    MarketEvent, MarketEvents, MarketFeed, MarketFeedConfig, SessionTokens, UserEvent, UserFeed,
    UserFeedConfig,
};
use moontick::gateway::requests::PlaceOrderRequest;
use moontick::gateway::wire::{OrderSide, OrderStatus, OrderType};
use moontick::sim::Simulator;

fn tokens(sim: &Simulator) -> SessionTokens {
    SessionTokens::new(session(sim, None, Some(credentials())))
}

/// Reads every quote for `duration`; returns how many came. (Their order is the queue's unit
/// tests' business: the simulator's own timestamps are not strictly monotonic.)
async fn read_quotes_for(events: &mut MarketEvents, duration: Duration) -> usize {
    let mut n = 0;
    let _ = tokio::time::timeout(duration, async {
        while let Some(ev) = events.recv().await {
            if let MarketEvent::Quote(q) = ev {
                assert!(q.bid.is_some() && q.ask.is_some(), "{q:?}");
                n += 1;
            }
        }
    })
    .await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_queue_conflates_only_past_its_bound_and_stays_bounded() {
    let sim = start_sim(|c| c.quote_rate = 2_000.0).await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let mut cfg = MarketFeedConfig::new(sim.market_hub_url());
    cfg.queue_bound = 512;
    let (market, mut events) = MarketFeed::spawn(cfg, tokens(&sim));
    market
        .subscribe_quotes(&mnq, "MNQ".into())
        .await
        .expect("subscribed");

    // A reader that keeps up: every quote is kept, nothing is conflated.
    let read = read_quotes_for(&mut events, Duration::from_millis(800)).await;
    assert!(read > 100, "only {read} quotes in 0.8 s at 2,000/s");
    let counters = events.queue().counters().clone();
    assert_eq!(counters.conflated.get(), 0, "conflated below the bound");

    // A reader that stops: the queue fills to its bound, then quotes conflate, counted.
    tokio::time::timeout(WAIT, async {
        while counters.conflated.get() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("quotes conflate once the reader is past the bound");
    let queue = events.queue();
    let bound = queue.bound();
    // One contract: the bound, plus its one quote, plus stale/resumed reports.
    assert!(queue.len() <= bound + 2, "depth {}", queue.len());
    assert!(
        queue.high_water() <= bound + 2,
        "high water {}",
        queue.high_water()
    );

    // Reading again: what was queued drains in order and fresh quotes follow.
    let read = read_quotes_for(&mut events, Duration::from_millis(500)).await;
    assert!(read > bound / 2, "only {read} quotes after the backlog");
    assert!(events.queue().high_water() <= bound + 2);
    market.close().await;
}

fn market_order(account: i32, contract: &str, side: OrderSide, tag: String) -> PlaceOrderRequest {
    PlaceOrderRequest {
        account_id: account,
        contract_id: contract.to_string(),
        order_type: OrderType::Market,
        side,
        size: 1,
        limit_price: None,
        stop_price: None,
        trail_price: None,
        custom_tag: Some(tag),
        stop_loss_bracket: None,
        take_profit_bracket: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_fill_and_position_events_survive_a_quote_flood_in_order() {
    let sim = start_sim(|c| c.quote_rate = 5_000.0).await;
    let account = sim.account_id();
    let mnq = sim.contract_id("MNQ").unwrap();

    let mut market_cfg = MarketFeedConfig::new(sim.market_hub_url());
    market_cfg.queue_bound = 64;
    let (market, mut quotes) = MarketFeed::spawn(market_cfg, tokens(&sim));
    market
        .subscribe_quotes(&mnq, "MNQ".into())
        .await
        .expect("subscribed");

    // Room for a single event: the hub connection must wait for this slow reader.
    let mut user_cfg = UserFeedConfig::new(sim.user_hub_url());
    user_cfg.bound = 1;
    let waits = user_cfg.waits.clone();
    let (user, mut events) = UserFeed::connect(user_cfg, tokens(&sim))
        .await
        .expect("user hub connects");
    user.subscribe_all(account).await.expect("subscribed");

    // Nobody reads quotes while the orders go through: the market queue is flooded.
    const ORDERS: usize = 12;
    let rest = client(&sim);
    let mut placed = Vec::new();
    for i in 0..ORDERS {
        let side = if i % 2 == 0 {
            OrderSide::Bid
        } else {
            OrderSide::Ask
        };
        let id = rest
            .place_order(&common::approve(&market_order(
                account,
                &mnq,
                side,
                format!("flood-{i}"),
            )))
            .await
            .expect("order placed");
        placed.push(id);
    }

    let mut first_seen = Vec::new();
    let mut filled = Vec::new();
    let mut fills = Vec::new();
    let mut positions = 0;
    tokio::time::timeout(WAIT * 2, async {
        while filled.len() < ORDERS || fills.len() < ORDERS || positions < ORDERS {
            let ev = events.recv().await.expect("user events keep coming");
            // A slow reader: the hub's events pile up behind the one free slot.
            tokio::time::sleep(Duration::from_millis(2)).await;
            match ev {
                UserEvent::Order { order, .. } if order.account_id == account => {
                    if !first_seen.contains(&order.id) {
                        first_seen.push(order.id);
                    }
                    if order.status == OrderStatus::Filled {
                        filled.push(order.id);
                    }
                }
                UserEvent::Trade { trade, .. } => fills.push(trade.order_id),
                UserEvent::Position { position, .. } if position.contract_id == mnq => {
                    positions += 1
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "lost events: {} filled, {} fills, {positions} position updates of {ORDERS}",
            filled.len(),
            fills.len()
        )
    });
    assert_eq!(first_seen, placed, "every order, in the order placed");
    assert_eq!(filled, placed, "every fill confirmation, in order");
    assert_eq!(fills, placed, "every fill, in order");
    assert!(waits.get() > 0, "the hub never had to wait for the reader");

    let queue = quotes.queue();
    assert!(
        queue.counters().conflated.get() > 0,
        "the flood never passed the market queue's bound"
    );
    assert!(
        queue.high_water() <= queue.bound() + 2,
        "market queue grew to {}",
        queue.high_water()
    );
    assert!(quotes.try_recv().is_some(), "quotes kept flowing");
    market.close().await;
    user.close().await;
}
