//! Unit tests of the matching engine against a hand-moved market.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::*;
use crate::gateway::wire::PositionType;
use crate::sim::market::{Touch, catalog};

struct Stub {
    specs: Vec<ContractSpec>,
    touch: HashMap<String, Touch>,
}

impl MarketView for Stub {
    fn spec(&self, id: &str) -> Option<&ContractSpec> {
        self.specs.iter().find(|s| &*s.id == id)
    }
    fn touch(&self, id: &str) -> Option<Touch> {
        self.touch.get(id).copied()
    }
}

const ACCT: i32 = 1;

struct World {
    engine: Engine,
    market: Stub,
    mnq: String,
    events: Vec<UserEvent>,
    now: DateTime<Utc>,
}

impl World {
    fn new(auto_oco: bool) -> Self {
        let specs = catalog(NaiveDate::from_ymd_opt(2025, 10, 1).unwrap());
        let mnq = specs
            .iter()
            .find(|s| s.ticker == "MNQ" && s.active)
            .unwrap()
            .id
            .to_string();
        let accounts = vec![
            Account {
                id: ACCT,
                name: "PRAC".into(),
                balance: 50_000.0,
                can_trade: true,
                is_visible: true,
                simulated: true,
            },
            Account {
                id: 2,
                name: "OLD".into(),
                balance: 0.0,
                can_trade: false,
                is_visible: false,
                simulated: true,
            },
        ];
        let mut w = Self {
            engine: Engine::new(accounts, auto_oco),
            market: Stub {
                specs,
                touch: HashMap::new(),
            },
            mnq,
            events: Vec::new(),
            now: "2025-10-01T14:00:00Z".parse().unwrap(),
        };
        w.set_bid(20_000.0);
        w
    }

    /// Bid at `bid`, ask one tick above, last at the bid; then lets the engine react.
    fn set_bid(&mut self, bid: f64) {
        self.market.touch.insert(
            self.mnq.clone(),
            Touch {
                bid,
                ask: bid + 0.25,
                last: bid,
            },
        );
        let id = self.mnq.clone();
        self.engine
            .on_quote(&id, &self.market, self.now, &mut self.events);
    }

    fn req(&self, order_type: OrderType, side: OrderSide, size: i32) -> PlaceOrderRequest {
        PlaceOrderRequest {
            account_id: ACCT,
            contract_id: self.mnq.clone(),
            order_type,
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

    fn place(&mut self, req: PlaceOrderRequest) -> Result<i64, Refusal> {
        self.engine
            .place(&req, &self.market, self.now, &mut self.events)
    }

    fn order(&self, id: i64) -> Order {
        self.engine.order(ACCT, id).unwrap().clone()
    }

    fn net(&self) -> i32 {
        self.engine
            .positions(ACCT)
            .first()
            .map_or(0, Position::net_size)
    }

    fn balance(&self) -> f64 {
        self.engine.accounts()[0].balance
    }
}

#[test]
fn market_buy_fills_at_the_ask_and_opens_a_long() {
    let mut w = World::new(true);
    let id = w
        .place(w.req(OrderType::Market, OrderSide::Bid, 2))
        .unwrap();
    let o = w.order(id);
    assert_eq!(
        (o.status, o.filled_price, o.fill_volume),
        (OrderStatus::Filled, Some(20_000.25), 2)
    );
    let p = &w.engine.positions(ACCT)[0];
    assert_eq!(
        (p.position_type, p.size, p.average_price),
        (PositionType::Long, 2, 20_000.25)
    );
    let t = w.engine.trades(ACCT).next().unwrap();
    assert_eq!((t.profit_and_loss, t.fees, t.order_id), (None, 0.74, id));
    assert_eq!(w.balance(), 50_000.0 - 0.74);
}

#[test]
fn closing_fill_realises_pnl_by_tick_value() {
    let mut w = World::new(true);
    w.place(w.req(OrderType::Market, OrderSide::Bid, 1))
        .unwrap(); // 20000.25
    w.set_bid(20_010.25); // +10 points = 40 ticks = $20 on MNQ
    w.place(w.req(OrderType::Market, OrderSide::Ask, 1))
        .unwrap();
    let closing = w.engine.trades(ACCT).nth(1).unwrap().clone();
    assert_eq!(closing.profit_and_loss, Some(20.0));
    assert_eq!(w.net(), 0);
    assert!(w.engine.positions(ACCT).is_empty());
    assert_eq!(w.balance(), 50_000.0 + 20.0 - 0.74);
}

#[test]
fn limit_rests_until_the_market_reaches_it() {
    let mut w = World::new(true);
    let id = w
        .place(PlaceOrderRequest {
            limit_price: Some(19_990.0),
            ..w.req(OrderType::Limit, OrderSide::Bid, 1)
        })
        .unwrap();
    assert_eq!(w.order(id).status, OrderStatus::Open);
    w.set_bid(19_995.0);
    assert_eq!(w.order(id).status, OrderStatus::Open);
    w.set_bid(19_989.75); // ask 19990.00 touches the limit
    assert_eq!(
        (w.order(id).status, w.order(id).filled_price),
        (OrderStatus::Filled, Some(19_990.0))
    );
}

#[test]
fn marketable_limit_fills_at_once_at_the_touch() {
    let mut w = World::new(true);
    let id = w
        .place(PlaceOrderRequest {
            limit_price: Some(19_990.0),
            ..w.req(OrderType::Limit, OrderSide::Ask, 1)
        })
        .unwrap();
    assert_eq!(w.order(id).filled_price, Some(20_000.0));
}

#[test]
fn stop_triggers_when_the_market_trades_through_it() {
    let mut w = World::new(true);
    let id = w
        .place(PlaceOrderRequest {
            stop_price: Some(20_005.0),
            ..w.req(OrderType::Stop, OrderSide::Bid, 1)
        })
        .unwrap();
    w.set_bid(20_004.5);
    assert_eq!(w.order(id).status, OrderStatus::Open);
    w.set_bid(20_004.75); // ask 20005.00
    assert_eq!(
        (w.order(id).status, w.order(id).filled_price),
        (OrderStatus::Filled, Some(20_005.0))
    );
}

#[test]
fn trailing_stop_converts_the_level_to_ticks_and_follows_the_price() {
    let mut w = World::new(true);
    w.place(w.req(OrderType::Market, OrderSide::Bid, 1))
        .unwrap();
    // last 20000.00, trail level 19995.00 → 20 ticks.
    let id = w
        .place(PlaceOrderRequest {
            trail_price: Some(19_995.0),
            ..w.req(OrderType::TrailingStop, OrderSide::Ask, 1)
        })
        .unwrap();
    let o = w.order(id);
    assert_eq!(
        (o.trail_distance, o.trail_price, o.stop_price),
        (Some(20), Some(5.0), Some(19_995.0))
    );
    w.set_bid(20_010.0);
    assert_eq!(w.order(id).stop_price, Some(20_005.0));
    w.set_bid(20_007.0); // falling back does not lower the stop
    assert_eq!(w.order(id).stop_price, Some(20_005.0));
    w.set_bid(20_005.0);
    assert_eq!(
        (w.order(id).status, w.order(id).filled_price),
        (OrderStatus::Filled, Some(20_005.0))
    );
    assert_eq!(w.net(), 0);
}

#[test]
fn trailing_stop_rejections_carry_the_documented_messages() {
    let mut w = World::new(true);
    let base = w.req(OrderType::TrailingStop, OrderSide::Ask, 1);
    let msg = |r: Result<i64, Refusal>| r.unwrap_err().message.unwrap();
    assert_eq!(msg(w.place(base.clone())), "Trail Distance not set.");
    assert_eq!(
        msg(w.place(PlaceOrderRequest {
            trail_price: Some(19_995.1),
            ..base.clone()
        })),
        "Invalid trail price. Price is not aligned to tick size."
    );
    assert_eq!(
        msg(w.place(PlaceOrderRequest {
            trail_price: Some(19_000.0),
            ..base
        })),
        "Trail Distance exceeds maximum (1000)"
    );
}

#[test]
fn join_bid_and_join_ask_rest_at_the_touch() {
    let mut w = World::new(true);
    let bid = w
        .place(w.req(OrderType::JoinBid, OrderSide::Bid, 1))
        .unwrap();
    let ask = w
        .place(w.req(OrderType::JoinAsk, OrderSide::Ask, 1))
        .unwrap();
    assert_eq!(
        (w.order(bid).limit_price, w.order(bid).status),
        (Some(20_000.0), OrderStatus::Open)
    );
    assert_eq!(
        (w.order(ask).limit_price, w.order(ask).status),
        (Some(20_000.25), OrderStatus::Open)
    );
    w.set_bid(19_999.75);
    assert_eq!(w.order(bid).status, OrderStatus::Filled);
}

#[test]
fn rejected_place_still_records_an_order_id() {
    let mut w = World::new(true);
    let r = w
        .place(w.req(OrderType::Market, OrderSide::Bid, 0))
        .unwrap_err();
    assert_eq!(r.name, "OrderRejected");
    let id = r.order_id.expect("rejected orders are recorded");
    assert_eq!(w.order(id).status, OrderStatus::Rejected);
}

#[test]
fn account_and_contract_errors_are_named() {
    let mut w = World::new(true);
    let base = w.req(OrderType::Market, OrderSide::Bid, 1);
    let old = w
        .market
        .specs
        .iter()
        .find(|s| !s.active)
        .unwrap()
        .id
        .to_string();
    let cases = [
        (
            PlaceOrderRequest {
                account_id: 99,
                ..base.clone()
            },
            "AccountNotFound",
        ),
        (
            PlaceOrderRequest {
                account_id: 2,
                ..base.clone()
            },
            "AccountRejected",
        ),
        (
            PlaceOrderRequest {
                contract_id: "CON.F.US.X.Z25".into(),
                ..base.clone()
            },
            "ContractNotFound",
        ),
        (
            PlaceOrderRequest {
                contract_id: old,
                ..base
            },
            "ContractNotActive",
        ),
    ];
    for (req, name) in cases {
        assert_eq!(w.place(req).unwrap_err().name, name);
    }
}

#[test]
fn custom_tag_is_unique_per_account() {
    let mut w = World::new(true);
    let tagged = PlaceOrderRequest {
        custom_tag: Some("s1-1".into()),
        ..w.req(OrderType::Market, OrderSide::Bid, 1)
    };
    w.place(tagged.clone()).unwrap();
    let r = w.place(tagged).unwrap_err();
    assert_eq!((r.name, r.order_id), ("OrderRejected", None));
}

#[test]
fn partial_close_reduces_and_full_close_flattens() {
    let mut w = World::new(true);
    w.place(w.req(OrderType::Market, OrderSide::Ask, 3))
        .unwrap();
    assert_eq!(w.net(), -3);
    let mnq = w.mnq.clone();
    let close = |w: &mut World, size| {
        w.engine
            .close(ACCT, &mnq, size, &w.market, w.now, &mut w.events)
    };
    assert_eq!(close(&mut w, Some(4)).unwrap_err().name, "InvalidCloseSize");
    assert_eq!(close(&mut w, Some(0)).unwrap_err().name, "InvalidCloseSize");
    close(&mut w, Some(1)).unwrap();
    assert_eq!(w.net(), -2);
    close(&mut w, None).unwrap();
    assert_eq!(w.net(), 0);
    assert_eq!(close(&mut w, None).unwrap_err().name, "PositionNotFound");
    // Short at the bid (20000.00), covered at the ask (20000.25): one tick lost per contract.
    let pnl: f64 = w
        .engine
        .trades(ACCT)
        .filter_map(|t| t.profit_and_loss)
        .sum();
    assert_eq!(pnl, -1.5);
}

fn bracketed(w: &World, side: OrderSide, sl: i32, tp: i32) -> PlaceOrderRequest {
    PlaceOrderRequest {
        custom_tag: Some("e1".into()),
        stop_loss_bracket: Some(BracketLeg {
            ticks: sl,
            order_type: OrderType::Stop,
        }),
        take_profit_bracket: Some(BracketLeg {
            ticks: tp,
            order_type: OrderType::Limit,
        }),
        limit_price: Some(19_990.0),
        ..w.req(OrderType::Limit, side, 1)
    }
}

#[test]
fn bracket_lifecycle_suspended_then_open_then_one_cancels_other() {
    let mut w = World::new(true);
    let entry = w
        .place(PlaceOrderRequest {
            limit_price: Some(19_990.0),
            ..bracketed(&w, OrderSide::Bid, -20, 40)
        })
        .unwrap();
    let (sl, tp) = (w.order(entry + 1), w.order(entry + 2));
    assert_eq!(
        (sl.status, sl.order_type, sl.side),
        (OrderStatus::Suspended, OrderType::Stop, OrderSide::Ask)
    );
    assert_eq!(
        (tp.status, tp.order_type),
        (OrderStatus::Suspended, OrderType::Limit)
    );
    assert_eq!(
        (sl.parent_order_id, tp.parent_order_id, tp.linked_order_id),
        (Some(entry), Some(entry), Some(sl.id))
    );
    assert_eq!(
        (sl.custom_tag.as_deref(), tp.custom_tag.as_deref()),
        (Some("e1-SL"), Some("e1-TP"))
    );
    assert_eq!((sl.stop_price, tp.limit_price), (None, None));

    w.set_bid(19_989.75); // entry fills at 19990.00
    assert_eq!(w.order(entry).status, OrderStatus::Filled);
    let (sl, tp) = (w.order(entry + 1), w.order(entry + 2));
    assert_eq!(
        (sl.status, sl.stop_price),
        (OrderStatus::Open, Some(19_985.0))
    );
    assert_eq!(
        (tp.status, tp.limit_price),
        (OrderStatus::Open, Some(20_000.0))
    );

    w.set_bid(20_000.0); // take profit: sell at the bid 20000.00
    assert_eq!(w.order(entry + 2).status, OrderStatus::Filled);
    assert_eq!(w.order(entry + 1).status, OrderStatus::Cancelled);
    assert_eq!(w.net(), 0);
    let pnl = w
        .engine
        .trades(ACCT)
        .filter_map(|t| t.profit_and_loss)
        .sum::<f64>();
    assert_eq!(pnl, 20.0);
}

#[test]
fn cancelling_a_bracket_entry_cancels_its_children() {
    let mut w = World::new(true);
    let entry = w
        .place(PlaceOrderRequest {
            limit_price: Some(19_990.0),
            ..bracketed(&w, OrderSide::Bid, -20, 40)
        })
        .unwrap();
    w.engine.cancel(ACCT, entry, w.now, &mut w.events).unwrap();
    for id in entry..=entry + 2 {
        assert_eq!(w.order(id).status, OrderStatus::Cancelled);
    }
    assert_eq!(
        w.engine
            .cancel(ACCT, entry, w.now, &mut w.events)
            .unwrap_err()
            .name,
        "Rejected"
    );
    assert_eq!(
        w.engine
            .cancel(ACCT, 1, w.now, &mut w.events)
            .unwrap_err()
            .name,
        "OrderNotFound"
    );
}

#[test]
fn bracket_ticks_are_signed_relative_to_the_entry() {
    let mut w = World::new(true);
    let msg = |w: &mut World, r| w.place(r).unwrap_err().message.unwrap();
    let r = bracketed(&w, OrderSide::Bid, 20, 40);
    assert_eq!(
        msg(&mut w, r),
        "Ticks should be less than zero when longing"
    );
    let mut r = bracketed(&w, OrderSide::Ask, 20, 40);
    r.custom_tag = None;
    assert_eq!(
        msg(&mut w, r),
        "Ticks should be less than zero when shorting"
    );
    let mut r = bracketed(&w, OrderSide::Ask, 20, -40);
    r.custom_tag = Some("short".into());
    assert!(w.place(r).is_ok());
}

#[test]
fn brackets_need_auto_oco_mode() {
    let mut w = World::new(false);
    let r = w.place(bracketed(&w, OrderSide::Bid, -20, 40)).unwrap_err();
    assert_eq!(
        r.message.as_deref(),
        Some("Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets.")
    );
}

#[test]
fn modify_moves_a_limit_and_refills_when_marketable() {
    let mut w = World::new(true);
    let id = w
        .place(PlaceOrderRequest {
            limit_price: Some(19_990.0),
            ..w.req(OrderType::Limit, OrderSide::Bid, 1)
        })
        .unwrap();
    let req = |limit, size| ModifyOrderRequest {
        account_id: ACCT,
        order_id: id,
        size,
        limit_price: limit,
        stop_price: None,
        trail_price: None,
    };
    let r = w
        .engine
        .modify(&req(Some(19_990.1), None), &w.market, w.now, &mut w.events)
        .unwrap_err();
    assert_eq!(r.name, "Rejected");
    w.engine
        .modify(&req(None, Some(3)), &w.market, w.now, &mut w.events)
        .unwrap();
    assert_eq!(w.order(id).size, 3);
    w.engine
        .modify(&req(Some(20_000.25), None), &w.market, w.now, &mut w.events)
        .unwrap();
    assert_eq!((w.order(id).status, w.net()), (OrderStatus::Filled, 3));
}

#[test]
fn every_fill_publishes_order_trade_position_and_account_events() {
    let mut w = World::new(true);
    w.events.clear();
    w.place(w.req(OrderType::Market, OrderSide::Bid, 1))
        .unwrap();
    let kinds: Vec<&str> = w
        .events
        .iter()
        .map(|e| match e {
            UserEvent::Order(_) => "order",
            UserEvent::Trade(_) => "trade",
            UserEvent::Position(_) => "position",
            UserEvent::Account(_) => "account",
        })
        .collect();
    assert_eq!(kinds, ["order", "order", "trade", "position", "account"]);
}
