//! The simulator's user hub: `SubscribeAccounts`, `SubscribeOrders` / `Positions` / `Trades`
//! (by account id) and their unsubscribes, and the `GatewayUser*` events its matching engine
//! produces, wrapped as `{action, data}` with null fields omitted, as the live gateway sends them.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::events::UserEvent;
use super::faults::HubFaults;
use super::hub::{CallError, Hub, binding_error};
use super::shared::Shared;
use crate::gateway::hub_names::{
    ACCOUNT_EVENT, ORDER_EVENT, POSITION_EVENT, SUBSCRIBE_ACCOUNTS, SUBSCRIBE_ORDERS,
    SUBSCRIBE_POSITIONS, SUBSCRIBE_USER_TRADES as SUBSCRIBE_TRADES, UNSUBSCRIBE_ACCOUNTS,
    UNSUBSCRIBE_ORDERS, UNSUBSCRIBE_POSITIONS, UNSUBSCRIBE_USER_TRADES as UNSUBSCRIBE_TRADES,
    USER_TRADE_EVENT as TRADE_EVENT,
};
use crate::signalr::codec::{Invocation, Message};

/// `action` values seen on the live gateway: 1 for an order or position update, 2 when a
/// position closes, 0 for a trade. Accounts are sent with 1.
const ACTION_UPDATE: i64 = 1;
const ACTION_CLOSED: i64 = 2;
const ACTION_TRADE: i64 = 0;

#[derive(Default)]
pub(crate) struct UserSession {
    accounts: bool,
    orders: HashSet<i32>,
    positions: HashSet<i32>,
    trades: HashSet<i32>,
}

/// The object with its null fields removed (the live hub omits them).
fn without_nulls<T: Serialize>(data: &T) -> Value {
    let mut v = serde_json::to_value(data).expect("wire structs serialize");
    if let Value::Object(map) = &mut v {
        map.retain(|_, field| !field.is_null());
    }
    v
}

fn write_event(out: &mut String, target: &str, action: i64, data: Value) {
    let inv = Invocation::new(target, vec![json!({"action": action, "data": data})]);
    out.push_str(&Message::Invocation(inv).encode());
}

fn account_arg(target: &str, args: &[Value]) -> Result<i32, CallError> {
    match args {
        [v] => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                binding_error(
                    target,
                    "Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
                )
            }),
        _ => Err(binding_error(
            target,
            &format!(
                "Invocation provides {} argument(s) but target expects 1.",
                args.len()
            ),
        )),
    }
}

impl Hub for UserSession {
    type Item = UserEvent;

    fn feed(shared: &Shared) -> broadcast::Receiver<UserEvent> {
        shared.user.subscribe()
    }

    fn call(
        &mut self,
        _shared: &Shared,
        _faults: &HubFaults,
        target: &str,
        args: &[Value],
        _after: &mut String,
    ) -> Result<(), CallError> {
        match target {
            SUBSCRIBE_ACCOUNTS | UNSUBSCRIBE_ACCOUNTS => {
                if !args.is_empty() {
                    return Err(binding_error(
                        target,
                        &format!(
                            "Invocation provides {} argument(s) but target expects 0.",
                            args.len()
                        ),
                    ));
                }
                self.accounts = target == SUBSCRIBE_ACCOUNTS;
                return Ok(());
            }
            SUBSCRIBE_ORDERS
            | UNSUBSCRIBE_ORDERS
            | SUBSCRIBE_POSITIONS
            | UNSUBSCRIBE_POSITIONS
            | SUBSCRIBE_TRADES
            | UNSUBSCRIBE_TRADES => {}
            _ => return Err(CallError::Unknown),
        }
        let account = account_arg(target, args)?;
        let (set, on) = match target {
            SUBSCRIBE_ORDERS => (&mut self.orders, true),
            UNSUBSCRIBE_ORDERS => (&mut self.orders, false),
            SUBSCRIBE_POSITIONS => (&mut self.positions, true),
            UNSUBSCRIBE_POSITIONS => (&mut self.positions, false),
            SUBSCRIBE_TRADES => (&mut self.trades, true),
            _ => (&mut self.trades, false),
        };
        // Another user's account id is accepted and simply never gets events, since the
        // simulator's only user owns every account it lists.
        if on {
            set.insert(account);
        } else {
            set.remove(&account);
        }
        Ok(())
    }

    fn render(&mut self, event: &UserEvent, _faults: &HubFaults, out: &mut String) {
        let account = event.account_id();
        match event {
            UserEvent::Account(a) if self.accounts => {
                write_event(out, ACCOUNT_EVENT, ACTION_UPDATE, without_nulls(a));
            }
            UserEvent::Order(o) if self.orders.contains(&account) => {
                write_event(out, ORDER_EVENT, ACTION_UPDATE, without_nulls(o));
            }
            UserEvent::Position(p) if self.positions.contains(&account) => {
                let action = if p.size == 0 {
                    ACTION_CLOSED
                } else {
                    ACTION_UPDATE
                };
                write_event(out, POSITION_EVENT, action, without_nulls(p));
            }
            UserEvent::Trade(t) if self.trades.contains(&account) => {
                write_event(out, TRADE_EVENT, ACTION_TRADE, without_nulls(t));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::wire::Account;

    #[test]
    fn only_subscribed_accounts_get_events_wrapped_without_nulls() {
        let mut s = UserSession::default();
        let account = UserEvent::Account(Account {
            id: 7,
            name: "A".into(),
            balance: 1.0,
            can_trade: true,
            is_visible: true,
            simulated: true,
        });
        let mut out = String::new();
        s.render(&account, &HubFaults::default(), &mut out);
        assert!(out.is_empty());
        s.accounts = true;
        s.render(&account, &HubFaults::default(), &mut out);
        let v: Value = serde_json::from_str(out.trim_end_matches('\u{1e}')).unwrap();
        assert_eq!(v["target"], ACCOUNT_EVENT);
        assert_eq!(v["arguments"][0]["action"], 1);
        assert_eq!(v["arguments"][0]["data"]["id"], 7);
    }

    #[test]
    fn account_argument_must_be_an_integer() {
        assert_eq!(account_arg("SubscribeOrders", &[json!(5)]).ok(), Some(5));
        assert!(account_arg("SubscribeOrders", &[json!("5")]).is_err());
        assert!(account_arg("SubscribeOrders", &[]).is_err());
    }
}
