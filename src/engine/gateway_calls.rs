//! The engine's order calls through an [`Exchange`]: the REST client (each call in its own
//! task so the loop never waits on the network) or a backtest's simulated exchange. Each
//! reports back to the loop as an [`Input`]. A mutating call is sent exactly once: an unknown
//! outcome is looked up, never repeated. Places and modifies take the risk guard's approval.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;

use super::book::LocalOrder;
use super::input::{Input, Mutation};
use crate::gateway::GatewayClient;
use crate::gateway::requests::{BracketLeg, ModifyOrderRequest, OrderTerms};
use crate::gateway::wire::{OrderType as WireType, Timestamp};
use crate::risk::RiskApproved;
use crate::script::{OrderType, Side};

/// What the gateway needs of one of our orders besides the approved contract, side and size.
/// Bracket ticks are signed relative to the entry: below it for a long's stop loss, above for
/// its take profit, the reverse for a short.
pub fn order_terms(account_id: i32, order: &LocalOrder) -> OrderTerms {
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
    OrderTerms {
        account_id,
        order_type,
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

/// Where the engine's order calls go: the gateway's REST API (live), or an in-process
/// simulated exchange (a backtest). Each call reports back to the loop on `tx` as an
/// [`Input`], now or later; none blocks the loop.
pub(crate) trait Exchange: Send + Sync + 'static {
    fn place(&self, tx: &mpsc::Sender<Input>, local_id: u64, order: RiskApproved<OrderTerms>);
    fn cancel(&self, tx: &mpsc::Sender<Input>, account_id: i32, broker_id: i64);
    fn modify(&self, tx: &mpsc::Sender<Input>, change: RiskApproved<ModifyOrderRequest>);
    fn close(&self, tx: &mpsc::Sender<Input>, account_id: i32, contract_id: String);
    /// The account's orders (since `since`), open positions and fills, for reconciling.
    fn snapshot(&self, tx: &mpsc::Sender<Input>, account_id: i32, since: chrono::DateTime<Utc>);
}

pub(crate) type SharedExchange = Arc<dyn Exchange>;

pub fn spawn_place(
    ex: SharedExchange,
    tx: mpsc::Sender<Input>,
    local_id: u64,
    order: RiskApproved<OrderTerms>,
) {
    ex.place(&tx, local_id, order);
}

pub fn spawn_cancel(ex: SharedExchange, tx: mpsc::Sender<Input>, account_id: i32, broker_id: i64) {
    ex.cancel(&tx, account_id, broker_id);
}

pub fn spawn_modify(
    ex: SharedExchange,
    tx: mpsc::Sender<Input>,
    change: RiskApproved<ModifyOrderRequest>,
) {
    ex.modify(&tx, change);
}

pub fn spawn_close(
    ex: SharedExchange,
    tx: mpsc::Sender<Input>,
    account_id: i32,
    contract_id: String,
) {
    ex.close(&tx, account_id, contract_id);
}

/// Reads the account's orders (since `since`), open positions and fills, for reconciling after
/// a reconnect or an unknown outcome.
pub fn spawn_snapshot(
    ex: SharedExchange,
    tx: mpsc::Sender<Input>,
    account_id: i32,
    since: chrono::DateTime<Utc>,
) {
    ex.snapshot(&tx, account_id, since);
}

/// Live: each call in its own task, so the loop never waits on the network.
impl Exchange for GatewayClient {
    fn place(&self, tx: &mpsc::Sender<Input>, local_id: u64, order: RiskApproved<OrderTerms>) {
        let (client, tx) = (self.clone(), tx.clone());
        tokio::spawn(async move {
            let result = client.place_order(&order).await;
            let _ = tx.send(Input::Placed { local_id, result }).await;
        });
    }

    fn cancel(&self, tx: &mpsc::Sender<Input>, account_id: i32, broker_id: i64) {
        let (client, tx) = (self.clone(), tx.clone());
        tokio::spawn(async move {
            let result = client.cancel_order(account_id, broker_id).await;
            let _ = tx
                .send(Input::Mutated {
                    what: Mutation::Cancel(broker_id),
                    result,
                })
                .await;
        });
    }

    fn modify(&self, tx: &mpsc::Sender<Input>, change: RiskApproved<ModifyOrderRequest>) {
        let (client, tx) = (self.clone(), tx.clone());
        tokio::spawn(async move {
            let result = client.modify_order(&change).await;
            let _ = tx
                .send(Input::Mutated {
                    what: Mutation::Modify(change.payload().order_id),
                    result,
                })
                .await;
        });
    }

    fn close(&self, tx: &mpsc::Sender<Input>, account_id: i32, contract_id: String) {
        let (client, tx) = (self.clone(), tx.clone());
        tokio::spawn(async move {
            let result = client.close_position(account_id, &contract_id).await;
            let _ = tx
                .send(Input::Mutated {
                    what: Mutation::Close(contract_id),
                    result,
                })
                .await;
        });
    }

    fn snapshot(&self, tx: &mpsc::Sender<Input>, account_id: i32, since: chrono::DateTime<Utc>) {
        let (client, tx) = (self.clone(), tx.clone());
        tokio::spawn(async move {
            let since = Timestamp::from(since);
            let result = tokio::try_join!(
                client.search_orders(account_id, since, None),
                client.open_positions(account_id),
                client.search_trades(account_id, since, None),
            );
            match result {
                Ok((orders, positions, trades)) => {
                    let _ = tx
                        .send(Input::Snapshot {
                            orders,
                            positions,
                            trades,
                        })
                        .await;
                }
                Err(e) => tracing::error!("reconciling orders and positions failed: {e}"),
            }
        });
    }
}
