//! Unit tests of the engine's book: tags, attribution, exposure, brackets, positions.

use super::*;
use crate::gateway::wire::{OrderSide, OrderType as WireType, PositionType, Timestamp};
use crate::script::OrderType;

fn mnq() -> Arc<ContractInfo> {
    Arc::new(ContractInfo {
        id: "CON.F.US.MNQ.Z26".into(),
        symbol: "MNQ".into(),
        tick_size: 0.25,
        tick_value: 0.5,
        ..ContractInfo::default()
    })
}

fn intent(side: Side, size: i64) -> OrderIntent {
    OrderIntent {
        symbol: "MNQ".into(),
        side,
        size,
        order_type: OrderType::Market,
        price: None,
        stop_price: None,
        trail_price: None,
        stop_loss_ticks: None,
        take_profit_ticks: None,
        tag: None,
    }
}

fn wire_order(id: i64, tag: &str, status: OrderStatus, filled: i32) -> Order {
    Order {
        id,
        account_id: 1,
        contract_id: "CON.F.US.MNQ.Z26".into(),
        symbol_id: None,
        creation_timestamp: Timestamp::now(),
        update_timestamp: None,
        status,
        order_type: WireType::Market,
        side: OrderSide::Bid,
        size: 2,
        limit_price: None,
        stop_price: None,
        fill_volume: filled,
        filled_price: None,
        custom_tag: Some(tag.into()),
        trail_distance: None,
        trail_price: None,
        parent_order_id: None,
        linked_order_id: None,
    }
}

fn trade(id: i64, order_id: i64, side: OrderSide, size: i32, price: f64) -> Trade {
    Trade {
        id,
        account_id: 1,
        contract_id: "CON.F.US.MNQ.Z26".into(),
        creation_timestamp: Timestamp::now(),
        price,
        profit_and_loss: None,
        fees: 0.37,
        side,
        size,
        voided: false,
        order_id,
        commissions: None,
    }
}

#[test]
fn tags_are_unique_name_the_strategy_and_parse_back() {
    let mut book = Book::new("abc");
    let a = book
        .insert("my breakout.v2", mnq(), intent(Side::Buy, 1))
        .custom_tag
        .clone();
    let b = book
        .insert("my breakout.v2", mnq(), intent(Side::Buy, 1))
        .custom_tag
        .clone();
    assert_ne!(a, b);
    assert_eq!(a, "my_breakout_v2.mtabc.1");
    assert_eq!(strategy_of_tag(&a), Some("my_breakout_v2"));
    assert_eq!(strategy_of_tag(&format!("{a}-SL")), Some("my_breakout_v2"));
    assert_eq!(strategy_of_tag("manual order"), None);
}

#[test]
fn hub_event_before_the_rest_reply_is_matched_by_tag() {
    let mut book = Book::new("r");
    let tag = book
        .insert("s", mnq(), intent(Side::Buy, 2))
        .custom_tag
        .clone();
    assert_eq!(
        book.apply_order(&wire_order(77, &tag, OrderStatus::Open, 0)),
        Some(Changed::Order(1))
    );
    assert_eq!(book.get(1).unwrap().broker_id, Some(77));
    assert_eq!(
        book.apply_order(&wire_order(77, &tag, OrderStatus::Open, 0)),
        None,
        "no change"
    );
    book.placed(1, 77);
    assert_eq!(
        book.get(1).unwrap().state,
        OrderState::Broker(OrderStatus::Open),
        "the later reply does not regress it"
    );
    let t = trade(5, 77, OrderSide::Bid, 2, 100.0);
    assert!(book.first_sight(&t));
    assert!(
        !book.first_sight(&t),
        "the hub and a REST snapshot both report it: counted once"
    );
    let fill = book.attribute_trade(&t).unwrap();
    assert_eq!((fill.strategy.as_str(), fill.local_id), ("s", 1));
    let mut voided = trade(6, 77, OrderSide::Bid, 1, 100.0);
    voided.voided = true;
    assert!(!book.first_sight(&voided));
    assert_eq!(book.strategy_position("s", "CON.F.US.MNQ.Z26").size, 2);
}

#[test]
fn exposure_counts_working_orders_ours_and_foreign() {
    let mut book = Book::new("r");
    book.insert("s", mnq(), intent(Side::Buy, 2));
    book.insert("t", mnq(), intent(Side::Sell, 1));
    let mut manual = wire_order(9, "manual", OrderStatus::Open, 0);
    manual.custom_tag = None;
    book.apply_order(&manual);
    let e = book.exposure("s", "CON.F.US.MNQ.Z26");
    assert_eq!((e.account_working_buy, e.account_working_sell), (4, 1));
    assert_eq!((e.strategy_working_buy, e.strategy_working_sell), (2, 0));
    assert_eq!(book.working_broker_ids(), vec![9]);
}

#[test]
fn bracket_is_protected_only_once_both_children_work() {
    let mut book = Book::new("r");
    let mut i = intent(Side::Buy, 1);
    i.stop_loss_ticks = Some(8);
    i.take_profit_ticks = Some(16);
    let tag = book.insert("s", mnq(), i).custom_tag.clone();
    book.placed(1, 100);
    let mut sl = wire_order(101, &format!("{tag}-SL"), OrderStatus::Suspended, 0);
    sl.order_type = WireType::Stop;
    sl.parent_order_id = Some(100);
    let mut tp = wire_order(102, &format!("{tag}-TP"), OrderStatus::Suspended, 0);
    tp.order_type = WireType::Limit;
    assert_eq!(book.apply_order(&sl), Some(Changed::Bracket(1)));
    assert_eq!(book.apply_order(&tp), Some(Changed::Bracket(1)));
    assert!(!book.get(1).unwrap().bracket.as_ref().unwrap().protects());
    sl.status = OrderStatus::Open;
    book.apply_order(&sl);
    assert!(!book.get(1).unwrap().bracket.as_ref().unwrap().protects());
    tp.status = OrderStatus::Open;
    book.apply_order(&tp);
    assert!(book.get(1).unwrap().bracket.as_ref().unwrap().protects());
    assert_eq!(book.working_broker_ids(), vec![100, 101, 102]);
}

#[test]
fn strategy_average_price_follows_fills_through_a_flip() {
    let mut p = StrategyPosition::default();
    p.apply(2, 100.0);
    p.apply(2, 102.0);
    assert_eq!((p.size, p.avg_price), (4, 101.0));
    p.apply(-1, 110.0);
    assert_eq!((p.size, p.avg_price), (3, 101.0));
    p.apply(-5, 105.0);
    assert_eq!((p.size, p.avg_price), (-2, 105.0));
    p.apply(2, 100.0);
    assert_eq!((p.size, p.avg_price), (0, 0.0));
}

#[test]
fn positions_replace_and_report_changes() {
    let mut book = Book::new("r");
    let pos = Position {
        id: 1,
        account_id: 1,
        contract_id: "CON.F.US.MNQ.Z26".into(),
        creation_timestamp: Timestamp::now(),
        position_type: PositionType::Short,
        size: 3,
        average_price: 100.0,
        contract_display_name: None,
    };
    assert!(book.apply_position(&pos));
    assert!(!book.apply_position(&pos));
    assert_eq!(book.position("CON.F.US.MNQ.Z26"), (-3, 100.0));
    assert_eq!(
        book.replace_positions(&[]),
        vec!["CON.F.US.MNQ.Z26".to_string()]
    );
    assert_eq!(book.position("CON.F.US.MNQ.Z26"), (0, 0.0));
}

#[test]
fn a_fill_seen_before_its_order_is_attributed_once_the_order_is_known() {
    let mut book = Book::new("r");
    let tag = book
        .insert("s", mnq(), intent(Side::Buy, 1))
        .custom_tag
        .clone();
    let t = trade(7, 100, OrderSide::Bid, 1, 100.0);
    assert!(book.first_sight(&t));
    assert_eq!(book.attribute_trade(&t), None, "order 100 is not known yet");
    assert!(book.attribute_late_fills().is_empty());
    book.apply_order(&wire_order(100, &tag, OrderStatus::Filled, 1));
    let late = book.attribute_late_fills();
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].local_id, late[0].after), (1, 1));
    assert!(book.attribute_late_fills().is_empty(), "attributed once");
    assert_eq!(book.strategy_position("s", "CON.F.US.MNQ.Z26").size, 1);
}

#[test]
fn an_unknown_order_counts_as_working_for_the_risk_guard() {
    let mut book = Book::new("r");
    book.insert("s", mnq(), intent(Side::Buy, 2));
    book.get_mut(1).unwrap().state = OrderState::Unknown;
    let e = book.exposure("s", "CON.F.US.MNQ.Z26");
    assert_eq!((e.account_working_buy, e.strategy_working_buy), (2, 2));
}

#[test]
fn a_leg_fill_that_does_not_reduce_the_position_is_an_orphan() {
    let mut book = Book::new("r");
    let mut i = intent(Side::Buy, 1);
    i.stop_loss_ticks = Some(8);
    let tag = book.insert("s", mnq(), i).custom_tag.clone();
    book.placed(1, 100);
    let mut sl = wire_order(101, &format!("{tag}-SL"), OrderStatus::Open, 0);
    sl.order_type = WireType::Stop;
    sl.side = OrderSide::Ask;
    sl.size = 1;
    sl.stop_price = Some(98.0);
    book.apply_order(&sl);
    let entry = book
        .attribute_trade(&trade(1, 100, OrderSide::Bid, 1, 100.0))
        .unwrap();
    assert!(!entry.is_orphan_leg());
    let exit = book
        .attribute_trade(&trade(2, 101, OrderSide::Ask, 1, 98.0))
        .unwrap();
    assert_eq!(
        (exit.leg, exit.before, exit.after),
        (Some(LegKind::StopLoss), 1, 0)
    );
    assert!(
        !exit.is_orphan_leg(),
        "a stop that closes the position is its job"
    );
    let again = book
        .attribute_trade(&trade(3, 101, OrderSide::Ask, 1, 97.0))
        .unwrap();
    assert!(again.is_orphan_leg(), "from flat it opens a position");
    assert_eq!(book.take_legs_to_cancel(Some("s"), None, None), vec![101]);
    assert!(
        book.take_legs_to_cancel(Some("s"), None, None).is_empty(),
        "a cancel is sent once"
    );
}
