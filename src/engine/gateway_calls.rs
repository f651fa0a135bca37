//! The engine's REST calls, each in its own task so the loop never waits on the network. Each
//! reports back to the loop as an [`Input`]. A mutating call is sent exactly once: an unknown
//! outcome is looked up, never repeated.

use chrono::Utc;
use tokio::sync::mpsc;

use super::Input;
use super::book::LocalOrder;
use crate::gateway::GatewayClient;
use crate::gateway::requests::{BracketLeg, ModifyOrderRequest, PlaceOrderRequest};
use crate::gateway::wire::{OrderSide, OrderType as WireType, Timestamp};
use crate::script::{OrderChange, OrderType, Side};

/// The `Order/place` body for one of our orders. Bracket ticks are signed relative to the
/// entry: below it for a long's stop loss, above for its take profit, the reverse for a short.
pub fn place_request(account_id: i32, order: &LocalOrder) -> PlaceOrderRequest {
    let i = &order.intent;
    let (order_type, limit_price, stop_price, trail_price) = match i.order_type {
        OrderType::Market => (WireType::Market, None, None, None),
        OrderType::Limit => (WireType::Limit, i.price, None, None),
        OrderType::Stop => (WireType::Stop, None, i.stop_price.or(i.price), None),
        OrderType::Trailing => (
            WireType::TrailingStop,
            None,
            None,
            i.trail_price.or(i.price),
        ),
        OrderType::JoinBid => (WireType::JoinBid, None, None, None),
        OrderType::JoinAsk => (WireType::JoinAsk, None, None, None),
    };
    let long = i.side == Side::Buy;
    let signed = |ticks: i64, toward_profit: bool| -> i32 {
        let t = ticks.unsigned_abs().min(i32::MAX as u64) as i32;
        if long == toward_profit { t } else { -t }
    };
    PlaceOrderRequest {
        account_id,
        contract_id: order.contract.id.to_string(),
        order_type,
        side: if long { OrderSide::Bid } else { OrderSide::Ask },
        size: i.size as i32,
        limit_price,
        stop_price,
        trail_price,
        custom_tag: Some(order.custom_tag.clone()),
        stop_loss_bracket: i.stop_loss_ticks.map(|t| BracketLeg {
            ticks: signed(t, false),
            order_type: WireType::Stop,
        }),
        take_profit_bracket: i.take_profit_ticks.map(|t| BracketLeg {
            ticks: signed(t, true),
            order_type: WireType::Limit,
        }),
    }
}

pub fn spawn_place(
    client: GatewayClient,
    tx: mpsc::UnboundedSender<Input>,
    local_id: u64,
    request: PlaceOrderRequest,
) {
    tokio::spawn(async move {
        let result = client.place_order(&request).await;
        let _ = tx.send(Input::Placed { local_id, result });
    });
}

pub fn spawn_cancel(
    client: GatewayClient,
    tx: mpsc::UnboundedSender<Input>,
    account_id: i32,
    broker_id: i64,
) {
    tokio::spawn(async move {
        let result = client.cancel_order(account_id, broker_id).await;
        let _ = tx.send(Input::Mutated {
            what: format!("cancel of order {broker_id}"),
            result,
        });
    });
}

pub fn spawn_modify(
    client: GatewayClient,
    tx: mpsc::UnboundedSender<Input>,
    account_id: i32,
    broker_id: i64,
    change: OrderChange,
) {
    tokio::spawn(async move {
        let request = ModifyOrderRequest {
            account_id,
            order_id: broker_id,
            size: change.size.map(|s| s as i32),
            limit_price: change.price,
            stop_price: change.stop_price,
            trail_price: None,
        };
        let result = client.modify_order(&request).await;
        let _ = tx.send(Input::Mutated {
            what: format!("modify of order {broker_id}"),
            result,
        });
    });
}

pub fn spawn_close(
    client: GatewayClient,
    tx: mpsc::UnboundedSender<Input>,
    account_id: i32,
    contract_id: String,
) {
    tokio::spawn(async move {
        let result = client.close_position(account_id, &contract_id).await;
        let _ = tx.send(Input::Mutated {
            what: format!("close of {contract_id}"),
            result,
        });
    });
}

/// Reads the account's orders (since `since`), open positions and fills, for reconciling after
/// a reconnect or an unknown outcome.
pub fn spawn_snapshot(
    client: GatewayClient,
    tx: mpsc::UnboundedSender<Input>,
    account_id: i32,
    since: chrono::DateTime<Utc>,
) {
    tokio::spawn(async move {
        let since = Timestamp::from(since);
        let result = tokio::try_join!(
            client.search_orders(account_id, since, None),
            client.open_positions(account_id),
            client.search_trades(account_id, since, None),
        );
        match result {
            Ok((orders, positions, trades)) => {
                let _ = tx.send(Input::Snapshot {
                    orders,
                    positions,
                    trades,
                });
            }
            Err(e) => tracing::error!("reconciling orders and positions failed: {e}"),
        }
    });
}
