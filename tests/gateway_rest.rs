//! Every REST endpoint through the real client against the simulator over loopback, with the
//! documented error codes, brackets, symbol resolution and the outcome-unknown rules.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use moontick::gateway::requests::*;
use moontick::gateway::symbols::ResolveError;
use moontick::gateway::wire::*;
use moontick::gateway::{Endpoint, GatewayClient, GatewayError, SymbolResolver, TransportOptions};
use moontick::sim::faults::{AfterExecute, FaultReply};

fn code_of(err: &GatewayError) -> (i32, &'static str) {
    match err {
        GatewayError::Rejected {
            code, code_name, ..
        } => (*code, code_name),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn market(account_id: i32, contract_id: &str, side: OrderSide, size: i32) -> PlaceOrderRequest {
    PlaceOrderRequest {
        account_id,
        contract_id: contract_id.to_string(),
        order_type: OrderType::Market,
        side,
        size,
        limit_price: None,
        stop_price: None,
        trail_price: None,
        custom_tag: None,
        stop_loss_bracket: None,
        take_profit_bracket: None,
    }
}

async fn setup() -> (moontick::sim::Simulator, GatewayClient, i32, String) {
    let sim = start_sim(|_| {}).await;
    sim.freeze_quotes(true);
    let client = client(&sim);
    let account = client.accounts(true).await.unwrap()[0].id;
    let mnq = SymbolResolver::new(client.clone())
        .contract_id("MNQ")
        .await
        .unwrap();
    sim.set_price(&mnq, 20000.0);
    (sim, client, account, mnq)
}

#[tokio::test]
async fn accounts_and_contracts() {
    let (_sim, client, _account, mnq) = setup().await;
    let active = client.accounts(true).await.unwrap();
    let all = client.accounts(false).await.unwrap();
    assert!(active.iter().all(|a| a.can_trade || a.is_visible));
    assert!(all.len() > active.len(), "onlyActiveAccounts filters");

    let found = client.search_contracts("NQ", false).await.unwrap();
    assert!(found.iter().any(|c| c.symbol_id == "F.US.ENQ"));
    assert!(
        found.iter().any(|c| c.symbol_id == "F.US.MNQ"),
        "search is fuzzy"
    );
    let by_id = client.contract_by_id(&mnq).await.unwrap();
    assert_eq!((by_id.tick_size, by_id.tick_value), (0.25, 0.5));
    assert_eq!(
        code_of(
            &client
                .contract_by_id("CON.F.US.NOPE.Z99")
                .await
                .unwrap_err()
        ),
        (1, "ContractNotFound")
    );
    let available = client.available_contracts(false).await.unwrap();
    assert!(available.len() >= 4);
}

#[tokio::test]
async fn symbols_resolve_to_front_months_by_exact_root() {
    let (sim, client, _, _) = setup().await;
    let resolver = SymbolResolver::new(client.clone());
    for (ticker, root, tick_value) in [
        ("MNQ", "MNQ", 0.5),
        ("MES", "MES", 1.25),
        ("NQ", "ENQ", 5.0),
        ("ES", "EP", 12.5),
    ] {
        let c = resolver.resolve(ticker).await.unwrap();
        assert_eq!(c.symbol_id, format!("F.US.{root}"), "{ticker}");
        assert!(c.active_contract && c.id.starts_with(&format!("CON.F.US.{root}.")));
        assert_eq!(c.tick_value, tick_value);
    }
    let before = sim.stats().calls(Endpoint::ContractSearch);
    resolver.resolve("mnq").await.unwrap();
    assert_eq!(
        sim.stats().calls(Endpoint::ContractSearch),
        before,
        "cached"
    );
    let id = resolver.resolve("MNQ").await.unwrap().id;
    assert_eq!(
        resolver.contract_id(&id).await.unwrap(),
        id,
        "a contract id passes through"
    );
    assert!(matches!(
        resolver.resolve("ZZZZ").await,
        Err(ResolveError::NotFound { .. })
    ));
}

#[tokio::test]
async fn bars_are_newest_first_on_the_tick_grid_and_validated() {
    let (_sim, client, _, mnq) = setup().await;
    let now = Utc::now();
    let mut req = RetrieveBarsRequest {
        contract_id: mnq.clone(),
        live: false,
        start_time: (now - chrono::Duration::hours(3)).into(),
        end_time: now.into(),
        unit: BarUnit::Minute,
        unit_number: 5,
        limit: 10,
        include_partial_bar: false,
    };
    let bars = client.retrieve_bars(&req).await.unwrap();
    assert_eq!(bars.len(), 10);
    for pair in bars.windows(2) {
        assert!(pair[0].t > pair[1].t, "newest first");
    }
    for b in &bars {
        assert!(b.l <= b.o.min(b.c) && b.h >= b.o.max(b.c));
        for p in [b.o, b.h, b.l, b.c] {
            assert_eq!((p / 0.25).fract(), 0.0, "{p} is off the tick grid");
        }
    }
    req.unit = BarUnit::Other(99);
    assert_eq!(
        code_of(&client.retrieve_bars(&req).await.unwrap_err()),
        (2, "UnitInvalid")
    );
    req.unit = BarUnit::Minute;
    req.unit_number = 0;
    assert_eq!(
        code_of(&client.retrieve_bars(&req).await.unwrap_err()),
        (3, "UnitNumberInvalid")
    );
    req.unit_number = 5;
    req.limit = 20_001;
    assert_eq!(
        code_of(&client.retrieve_bars(&req).await.unwrap_err()),
        (4, "LimitInvalid")
    );
    req.limit = 10;
    req.contract_id = "CON.F.US.NOPE.Z99".into();
    assert_eq!(
        code_of(&client.retrieve_bars(&req).await.unwrap_err()),
        (1, "ContractNotFound")
    );
}

#[tokio::test]
async fn market_order_fills_and_shows_in_orders_positions_and_trades() {
    let (sim, client, account, mnq) = setup().await;
    let start: Timestamp = (Utc::now() - chrono::Duration::minutes(1)).into();
    let mut req = market(account, &mnq, OrderSide::Bid, 2);
    req.custom_tag = Some("t-market-1".into());
    let id = client.place_order(&approve(&req)).await.unwrap();
    let order = client.order_by_id(account, id).await.unwrap();
    assert_eq!(order.status, OrderStatus::Filled);
    assert_eq!(order.fill_volume, 2);
    assert_eq!(order.custom_tag.as_deref(), Some("t-market-1"));
    let positions = client.open_positions(account).await.unwrap();
    let pos = positions.iter().find(|p| p.contract_id == mnq).unwrap();
    assert_eq!(pos.net_size(), 2);
    assert!(
        client
            .search_orders(account, start, None)
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == id)
    );

    // The same customTag again is rejected: it is what makes unknown outcomes reconcilable.
    assert_eq!(
        code_of(&client.place_order(&approve(&req)).await.unwrap_err()),
        (2, "OrderRejected")
    );

    // Close 1 of 2, then the rest; the closing half-turns carry P&L.
    sim.set_price(&mnq, 20010.0);
    client
        .partial_close_position(account, &mnq, 1)
        .await
        .unwrap();
    assert_eq!(
        code_of(
            &client
                .partial_close_position(account, &mnq, 5)
                .await
                .unwrap_err()
        ),
        (5, "InvalidCloseSize")
    );
    client.close_position(account, &mnq).await.unwrap();
    assert!(
        client
            .open_positions(account)
            .await
            .unwrap()
            .iter()
            .all(|p| p.contract_id != mnq)
    );
    assert_eq!(
        code_of(&client.close_position(account, &mnq).await.unwrap_err()),
        (2, "PositionNotFound")
    );
    let trades = client.search_trades(account, start, None).await.unwrap();
    assert_eq!(
        trades
            .iter()
            .filter(|t| t.profit_and_loss.is_none())
            .count(),
        1,
        "one opening half-turn"
    );
    let pnl: f64 = trades.iter().filter_map(|t| t.profit_and_loss).sum();
    assert!(pnl > 0.0, "bought at 20000, sold higher: {pnl}");
    let token = client.session().ensure_valid_token().await.unwrap();
    assert_no_secret_logged(&[token.expose(), KEY]);
}

#[tokio::test]
async fn working_orders_modify_cancel_and_each_type_places() {
    let (sim, client, account, mnq) = setup().await;
    let mut limit = market(account, &mnq, OrderSide::Bid, 1);
    limit.order_type = OrderType::Limit;
    limit.limit_price = Some(19900.0);
    let id = client.place_order(&approve(&limit)).await.unwrap();
    assert!(
        client
            .open_orders(account)
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == id)
    );
    client
        .modify_order(&approve_modify(&ModifyOrderRequest {
            account_id: account,
            order_id: id,
            size: Some(2),
            limit_price: Some(19950.0),
            stop_price: None,
            trail_price: None,
        }))
        .await
        .unwrap();
    let modified = client.order_by_id(account, id).await.unwrap();
    assert_eq!((modified.size, modified.limit_price), (2, Some(19950.0)));
    client.cancel_order(account, id).await.unwrap();
    assert_eq!(
        client.order_by_id(account, id).await.unwrap().status,
        OrderStatus::Cancelled
    );
    assert_eq!(
        code_of(&client.cancel_order(account, 987_654_321).await.unwrap_err()),
        (2, "OrderNotFound")
    );

    let mut stop = market(account, &mnq, OrderSide::Ask, 1);
    stop.order_type = OrderType::Stop;
    stop.stop_price = Some(19900.0);
    let stop_id = client.place_order(&approve(&stop)).await.unwrap();
    let mut trail = market(account, &mnq, OrderSide::Ask, 1);
    trail.order_type = OrderType::TrailingStop;
    trail.trail_price = Some(19990.0);
    let trail_id = client.place_order(&approve(&trail)).await.unwrap();
    let mut join = market(account, &mnq, OrderSide::Bid, 1);
    join.order_type = OrderType::JoinBid;
    let join_id = client.place_order(&approve(&join)).await.unwrap();
    let open = client.open_orders(account).await.unwrap();
    for id in [stop_id, trail_id, join_id] {
        assert!(open.iter().any(|o| o.id == id), "order {id} is working");
    }
    let page = client
        .query_orders(&OrderQueryRequest {
            filter: OrderQueryFilter {
                account_id: account,
                statuses: Some(vec![OrderStatus::Open]),
                ..Default::default()
            },
            page_size: Some(2),
            page_offset: Some(0),
            sort_by: Some(1),
            sort_direction: Some(1),
            include_total_count: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(page.orders.len(), 2);
    assert!(page.total_count.unwrap() >= 3);
    drop(sim);
}

#[tokio::test]
async fn documented_place_errors() {
    let (sim, client, account, mnq) = setup().await;
    let e = client
        .place_order(&approve(&market(999_999, &mnq, OrderSide::Bid, 1)))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), (1, "AccountNotFound"));
    // Size 0 cannot be approved, so the client cannot send it: ask the simulator directly.
    let token = fresh_token(&sim).await;
    let raw: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/Order/place", sim.url()))
        .bearer_auth(token.expose())
        .json(&market(account, &mnq, OrderSide::Bid, 0))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (raw["success"].as_bool(), raw["errorCode"].as_i64()),
        (Some(false), Some(2))
    );
    let e = client
        .place_order(&approve(&market(
            account,
            "CON.F.US.NOPE.Z99",
            OrderSide::Bid,
            1,
        )))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), (8, "ContractNotFound"));
    let inactive = sim.expired_contract_id("MNQ").unwrap();
    let e = client
        .place_order(&approve(&market(account, &inactive, OrderSide::Bid, 1)))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), (9, "ContractNotActive"));
    // A long's stop loss must be below the entry: positive ticks are refused.
    let mut bad = market(account, &mnq, OrderSide::Bid, 1);
    bad.stop_loss_bracket = Some(BracketLeg {
        ticks: 10,
        order_type: OrderType::Stop,
    });
    let e = client.place_order(&approve(&bad)).await.unwrap_err();
    assert_eq!(code_of(&e), (2, "OrderRejected"));
    assert!(
        e.to_string()
            .contains("Ticks should be less than zero when longing"),
        "{e}"
    );
    assert_eq!(
        code_of(&client.open_orders(999_999).await.unwrap_err()),
        (1, "AccountNotFound")
    );
    drop(sim);
}

#[tokio::test]
async fn bracket_children_wait_then_one_cancels_the_other() {
    let (sim, client, account, mnq) = setup().await;
    let start: Timestamp = (Utc::now() - chrono::Duration::minutes(1)).into();
    let mut entry = market(account, &mnq, OrderSide::Bid, 1);
    entry.order_type = OrderType::Limit;
    entry.limit_price = Some(19990.0);
    entry.custom_tag = Some("brk-1".into());
    entry.stop_loss_bracket = Some(BracketLeg {
        ticks: -8,
        order_type: OrderType::Stop,
    });
    entry.take_profit_bracket = Some(BracketLeg {
        ticks: 16,
        order_type: OrderType::Limit,
    });
    let entry_id = client.place_order(&approve(&entry)).await.unwrap();
    // Children are suspended, so searchOpen shows only the entry.
    let open = client.open_orders(account).await.unwrap();
    assert_eq!(
        open.iter()
            .filter(|o| o.parent_order_id == Some(entry_id))
            .count(),
        0
    );

    // The simulator's ask is one tick above the price it is set to: this puts the ask at the limit.
    sim.set_price(&mnq, 19989.75);
    let children = wait_for(|| {
        let client = client.clone();
        async move {
            let open = client.open_orders(account).await.unwrap();
            let kids: Vec<Order> = open
                .into_iter()
                .filter(|o| o.parent_order_id == Some(entry_id))
                .collect();
            (kids.len() == 2).then_some(kids)
        }
    })
    .await;
    let sl = children
        .iter()
        .find(|o| o.order_type == OrderType::Stop)
        .unwrap();
    let tp = children
        .iter()
        .find(|o| o.order_type == OrderType::Limit)
        .unwrap();
    assert_eq!(sl.custom_tag.as_deref(), Some("brk-1-SL"));
    assert_eq!(tp.custom_tag.as_deref(), Some("brk-1-TP"));
    assert_eq!(tp.linked_order_id, Some(sl.id));
    assert_eq!(sl.stop_price, Some(19990.0 - 8.0 * 0.25));
    assert_eq!(tp.limit_price, Some(19990.0 + 16.0 * 0.25));

    sim.set_price(&mnq, 19995.0);
    let (sl_id, tp_id) = (sl.id, tp.id);
    wait_for(|| {
        let client = client.clone();
        async move {
            let tp = client.order_by_id(account, tp_id).await.unwrap();
            let sl = client.order_by_id(account, sl_id).await.unwrap();
            (tp.status == OrderStatus::Filled && sl.status == OrderStatus::Cancelled).then_some(())
        }
    })
    .await;
    assert!(
        client
            .open_positions(account)
            .await
            .unwrap()
            .iter()
            .all(|p| p.contract_id != mnq)
    );
    let orders = client.search_orders(account, start, None).await.unwrap();
    assert!(
        orders
            .iter()
            .any(|o| o.id == tp_id && o.status == OrderStatus::Filled)
    );
}

#[tokio::test]
async fn brackets_need_auto_oco_mode() {
    let sim = start_sim(|c| c.auto_oco_brackets = false).await;
    let client = client(&sim);
    let account = client.accounts(true).await.unwrap()[0].id;
    let mnq = SymbolResolver::new(client.clone())
        .contract_id("MNQ")
        .await
        .unwrap();
    let mut req = market(account, &mnq, OrderSide::Bid, 1);
    req.stop_loss_bracket = Some(BracketLeg {
        ticks: -10,
        order_type: OrderType::Stop,
    });
    let e = client.place_order(&approve(&req)).await.unwrap_err();
    assert_eq!(code_of(&e), (2, "OrderRejected"));
    assert!(e.to_string().contains("Auto OCO Brackets"), "{e}");
}

#[tokio::test]
async fn place_that_times_out_after_executing_is_outcome_unknown_and_sent_once() {
    let sim = start_sim(|_| {}).await;
    let options = TransportOptions {
        timeout: Duration::from_millis(500),
        ..fast_options()
    };
    let client = GatewayClient::new(session_with(&sim, None, Some(credentials()), options));
    let account = client.accounts(true).await.unwrap()[0].id;
    let mnq = SymbolResolver::new(client.clone())
        .contract_id("MNQ")
        .await
        .unwrap();
    let start: Timestamp = (Utc::now() - chrono::Duration::minutes(1)).into();

    sim.faults().execute_then(
        1,
        Some(Endpoint::OrderPlace),
        AfterExecute::Delay(Duration::from_secs(2)),
    );
    let mut req = market(account, &mnq, OrderSide::Bid, 1);
    req.custom_tag = Some("unknown-1".into());
    let e = client.place_order(&approve(&req)).await.unwrap_err();
    assert!(e.is_outcome_unknown(), "{e:?}");
    assert_eq!(
        sim.stats().calls(Endpoint::OrderPlace),
        1,
        "never resent blindly"
    );
    // Reconciling by customTag finds the order that did go through.
    let orders = client.search_orders(account, start, None).await.unwrap();
    assert_eq!(
        orders
            .iter()
            .filter(|o| o.custom_tag.as_deref() == Some("unknown-1"))
            .count(),
        1
    );

    sim.faults()
        .execute_then(1, Some(Endpoint::OrderCancel), AfterExecute::ServerError);
    let mut limit = market(account, &mnq, OrderSide::Bid, 1);
    limit.order_type = OrderType::Limit;
    limit.limit_price = Some(1.0);
    let id = client.place_order(&approve(&limit)).await.unwrap();
    let e = client.cancel_order(account, id).await.unwrap_err();
    assert!(e.is_outcome_unknown(), "{e:?}");
    assert_eq!(sim.stats().calls(Endpoint::OrderCancel), 1);
    assert_eq!(
        client.order_by_id(account, id).await.unwrap().status,
        OrderStatus::Cancelled
    );
}

#[tokio::test]
async fn read_only_call_is_retried_after_a_500() {
    let (sim, client, account, _) = setup().await;
    sim.faults().fail_next(
        1,
        Some(Endpoint::PositionSearchOpen),
        FaultReply::ServerError,
    );
    let before = sim.stats().calls(Endpoint::PositionSearchOpen);
    client.open_positions(account).await.unwrap();
    assert_eq!(sim.stats().calls(Endpoint::PositionSearchOpen) - before, 2);
    // A mutating call answered 500 is not retried.
    sim.faults()
        .fail_next(1, Some(Endpoint::PositionClose), FaultReply::ServerError);
    let e = client
        .close_position(account, "CON.F.US.MNQ.Z99")
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e:?}");
}

#[tokio::test]
async fn logout_answers_success() {
    let (_sim, client, _, _) = setup().await;
    client.logout().await.unwrap();
}

/// Polls `f` until it returns `Some`, for at most 10 s.
async fn wait_for<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
