//! The ProjectX user feed: account, order, position and fill subscriptions on the user hub, and
//! their events decoded (inside the hub's connection task) into typed [`UserEvent`]s on a
//! bounded channel to the engine (gateway doc §5).
//!
//! The docs show bare objects, live traffic shows `{action, data}` wrappers, and either may come
//! one per argument or as an array: all four shapes decode the same way.
//!
//! Overflow policy: none of these events may be lost, so a full channel makes the connection
//! wait (and stop reading the socket) until the engine catches up; each wait is counted.

use prometheus_client::metrics::counter::Counter;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::gateway::hub_names::{
    ACCOUNT_EVENT, ORDER_EVENT, POSITION_EVENT, SUBSCRIBE_ACCOUNTS, SUBSCRIBE_ORDERS,
    SUBSCRIBE_POSITIONS, SUBSCRIBE_USER_TRADES, UNSUBSCRIBE_ACCOUNTS, UNSUBSCRIBE_ORDERS,
    UNSUBSCRIBE_POSITIONS, UNSUBSCRIBE_USER_TRADES, USER_TRADE_EVENT as TRADE_EVENT,
};
use crate::gateway::wire::{Account, Order, Position, Trade};
use crate::signalr::{
    ConnectionState, EventSink, HubConfig, HubConnection, HubError, HubEvent, TokenSource,
};

/// Room in the channel to the engine: a burst of fills and order updates never needs more; past
/// it the hub connection waits.
pub const DEFAULT_USER_BOUND: usize = 1024;

/// What the user hub reports. `action` is the wrapper's code when there was one (1 seen on
/// updates, 2 on a position close, 0 on fills; undocumented), `None` for a bare object.
#[derive(Debug, Clone, PartialEq)]
pub enum UserEvent {
    Account {
        action: Option<i64>,
        account: Account,
    },
    Order {
        action: Option<i64>,
        order: Order,
    },
    Position {
        action: Option<i64>,
        position: Position,
    },
    /// One fill (half-turn) on the account.
    Trade {
        action: Option<i64>,
        trade: Trade,
    },
    /// An event this client does not know.
    Other(HubEvent),
}

/// Settings of a user feed.
#[derive(Debug, Clone)]
pub struct UserFeedConfig {
    pub hub: HubConfig,
    /// Events waiting for the engine past which the connection waits.
    pub bound: usize,
    /// Counts the times the connection had to wait for room.
    pub waits: Counter,
}

impl UserFeedConfig {
    /// SignalR's defaults, [`DEFAULT_USER_BOUND`], a counter of its own.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            hub: HubConfig::new("user", url),
            bound: DEFAULT_USER_BOUND,
            waits: Counter::default(),
        }
    }
}

/// Runs inside the user hub's connection task: decodes each event and hands it on, waiting for
/// room rather than dropping it.
struct UserSink {
    tx: mpsc::Sender<UserEvent>,
    waits: Counter,
}

impl EventSink for UserSink {
    async fn event(&mut self, ev: HubEvent) -> bool {
        for e in decode_event(ev) {
            let e = match self.tx.try_send(e) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(e)) => e,
            };
            self.waits.inc();
            if self.tx.send(e).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Flattens the arguments of a user event into `(action, data)` pairs: each argument may be an
/// object or an array of objects, each object wrapped as `{action, data}` or bare.
pub fn unwrap_items(args: &[Value]) -> Vec<(Option<i64>, &Value)> {
    fn one(v: &Value) -> (Option<i64>, &Value) {
        match v.get("data") {
            // A bare order or position never has a `data` field, so its presence marks a wrapper.
            Some(data) if data.is_object() || data.is_array() => {
                (v.get("action").and_then(Value::as_i64), data)
            }
            _ => (None, v),
        }
    }
    let mut out = Vec::new();
    for arg in args {
        let (action, data) = match arg {
            Value::Array(_) => (None, arg),
            _ => one(arg),
        };
        match data {
            // `{action, data: [..]}` or `[..]`: each element may itself be wrapped.
            Value::Array(items) => {
                for item in items {
                    let (a, d) = one(item);
                    out.push((a.or(action), d));
                }
            }
            _ => out.push((action, data)),
        }
    }
    out
}

/// Decodes every item of a user event into `T`, each with its action.
///
/// # Errors
/// Per item: the serde message, so one bad item does not hide the others.
pub fn decode_user<T: DeserializeOwned>(args: &[Value]) -> Vec<Result<(Option<i64>, T), String>> {
    unwrap_items(args)
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(action, v)| {
            T::deserialize(v)
                .map(|t| (action, t))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Turns one hub event into user events; undecodable items are logged and skipped.
pub fn decode_event(ev: HubEvent) -> Vec<UserEvent> {
    fn each<T: DeserializeOwned>(
        ev: &HubEvent,
        wrap: fn(Option<i64>, T) -> UserEvent,
    ) -> Vec<UserEvent> {
        decode_user::<T>(&ev.arguments)
            .into_iter()
            .filter_map(|r| match r {
                Ok((action, t)) => Some(wrap(action, t)),
                Err(e) => {
                    // User events carry account data but no secrets; the payload makes a format
                    // change diagnosable, and a lost fill must at least be visible in the log.
                    let args = serde_json::Value::Array(ev.arguments.clone());
                    tracing::error!(event = %ev.target, %args, "undecodable user hub event: {e}");
                    None
                }
            })
            .collect()
    }
    match ev.target.as_str() {
        ACCOUNT_EVENT => each(&ev, |action, account| UserEvent::Account {
            action,
            account,
        }),
        ORDER_EVENT => each(&ev, |action, order| UserEvent::Order { action, order }),
        POSITION_EVENT => each(&ev, |action, position| UserEvent::Position {
            action,
            position,
        }),
        TRADE_EVENT => each(&ev, |action, trade| UserEvent::Trade { action, trade }),
        _ => vec![UserEvent::Other(ev)],
    }
}

/// A user feed. Cheap to clone; the connection closes when every clone is dropped or
/// [`UserFeed::close`] is called.
#[derive(Debug, Clone)]
pub struct UserFeed {
    conn: HubConnection,
}

impl UserFeed {
    /// Starts the connection in the background (reconnecting forever); events arrive on the
    /// returned receiver, bounded by `config.bound`: order and fill events are never dropped.
    pub fn spawn<T: TokenSource>(
        config: UserFeedConfig,
        tokens: T,
    ) -> (Self, mpsc::Receiver<UserEvent>) {
        let (sink, rx) = Self::sink(&config);
        let conn = HubConnection::spawn_with(config.hub, tokens, sink);
        (Self { conn }, rx)
    }

    /// Connects once before returning, so a bad token or URL is reported at once.
    ///
    /// # Errors
    /// See [`HubConnection::connect`].
    pub async fn connect<T: TokenSource>(
        config: UserFeedConfig,
        tokens: T,
    ) -> Result<(Self, mpsc::Receiver<UserEvent>), HubError> {
        let (sink, rx) = Self::sink(&config);
        let conn = HubConnection::connect_with(config.hub, tokens, sink).await?;
        Ok((Self { conn }, rx))
    }

    fn sink(config: &UserFeedConfig) -> (UserSink, mpsc::Receiver<UserEvent>) {
        let (tx, rx) = mpsc::channel(config.bound.max(1));
        let sink = UserSink {
            tx,
            waits: config.waits.clone(),
        };
        (sink, rx)
    }

    pub fn connection(&self) -> &HubConnection {
        &self.conn
    }

    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.conn.state()
    }

    /// # Errors
    /// See [`HubConnection::subscribe`].
    pub async fn subscribe_accounts(&self) -> Result<(), HubError> {
        self.conn.subscribe(SUBSCRIBE_ACCOUNTS, vec![]).await
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_accounts(&self) -> Result<(), HubError> {
        self.conn
            .unsubscribe(SUBSCRIBE_ACCOUNTS, UNSUBSCRIBE_ACCOUNTS, vec![])
            .await
    }

    /// # Errors
    /// See [`HubConnection::subscribe`].
    pub async fn subscribe_orders(&self, account_id: i32) -> Result<(), HubError> {
        self.conn
            .subscribe(SUBSCRIBE_ORDERS, vec![json!(account_id)])
            .await
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_orders(&self, account_id: i32) -> Result<(), HubError> {
        self.conn
            .unsubscribe(
                SUBSCRIBE_ORDERS,
                UNSUBSCRIBE_ORDERS,
                vec![json!(account_id)],
            )
            .await
    }

    /// # Errors
    /// See [`HubConnection::subscribe`].
    pub async fn subscribe_positions(&self, account_id: i32) -> Result<(), HubError> {
        self.conn
            .subscribe(SUBSCRIBE_POSITIONS, vec![json!(account_id)])
            .await
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_positions(&self, account_id: i32) -> Result<(), HubError> {
        self.conn
            .unsubscribe(
                SUBSCRIBE_POSITIONS,
                UNSUBSCRIBE_POSITIONS,
                vec![json!(account_id)],
            )
            .await
    }

    /// # Errors
    /// See [`HubConnection::subscribe`].
    pub async fn subscribe_trades(&self, account_id: i32) -> Result<(), HubError> {
        self.conn
            .subscribe(SUBSCRIBE_USER_TRADES, vec![json!(account_id)])
            .await
    }

    /// # Errors
    /// See [`HubConnection::unsubscribe`].
    pub async fn unsubscribe_trades(&self, account_id: i32) -> Result<(), HubError> {
        self.conn
            .unsubscribe(
                SUBSCRIBE_USER_TRADES,
                UNSUBSCRIBE_USER_TRADES,
                vec![json!(account_id)],
            )
            .await
    }

    /// Subscribes to everything about one account: the account list, orders, positions, fills.
    ///
    /// # Errors
    /// The first failing subscription's error.
    pub async fn subscribe_all(&self, account_id: i32) -> Result<(), HubError> {
        self.subscribe_accounts().await?;
        self.subscribe_orders(account_id).await?;
        self.subscribe_positions(account_id).await?;
        self.subscribe_trades(account_id).await
    }

    pub async fn close(&self) {
        self.conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::wire::{OrderStatus, PositionType};

    fn order(id: i64) -> Value {
        json!({"id":id,"accountId":123,"contractId":"CON.F.US.MNQ.Z25","symbolId":"F.US.MNQ",
               "creationTimestamp":"2025-12-01T15:30:03.4962794+00:00","status":6,"type":2,"side":0,"size":1,"fillVolume":0})
    }

    fn orders(args: Vec<Value>) -> Vec<(Option<i64>, i64)> {
        let ev = HubEvent {
            target: ORDER_EVENT.into(),
            arguments: args,
        };
        decode_event(ev)
            .into_iter()
            .map(|e| match e {
                UserEvent::Order { action, order } => (action, order.id),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn wrapped_bare_single_and_array_shapes_all_decode() {
        assert_eq!(
            orders(vec![json!({"action":1,"data":order(1)})]),
            vec![(Some(1), 1)]
        );
        assert_eq!(orders(vec![order(2)]), vec![(None, 2)]);
        assert_eq!(
            orders(vec![json!([{"action":1,"data":order(3)}, order(4)])]),
            vec![(Some(1), 3), (None, 4)]
        );
        assert_eq!(
            orders(vec![json!({"action":1,"data":[order(5), order(6)]})]),
            vec![(Some(1), 5), (Some(1), 6)]
        );
        assert_eq!(orders(vec![order(7), order(8)]), vec![(None, 7), (None, 8)]);
    }

    #[test]
    fn a_bad_item_is_skipped_and_the_rest_decode() {
        assert_eq!(
            orders(vec![json!([{"id":"nope"}, order(9)])]),
            vec![(None, 9)]
        );
    }

    #[test]
    fn the_documented_frames_decode_into_the_wire_model() {
        let ev = |target: &str, data: Value| HubEvent {
            target: target.into(),
            arguments: vec![data],
        };
        let acct = decode_event(ev(
            ACCOUNT_EVENT,
            json!({"action":1,"data":{"id":123,"name":"50KTC","balance":50210.5,"canTrade":true,"isVisible":true,"simulated":true}}),
        ));
        assert!(
            matches!(&acct[0], UserEvent::Account { account, .. } if account.balance == 50210.5)
        );
        let pos = decode_event(ev(
            POSITION_EVENT,
            json!({"action":2,"data":{"id":6124,"accountId":123,"contractId":"C","creationTimestamp":"2025-12-01T15:30:03.51+00:00","type":0,"size":0,"averagePrice":0.0}}),
        ));
        assert!(
            matches!(&pos[0], UserEvent::Position { action: Some(2), position } if position.position_type == PositionType::Undefined)
        );
        let fill = decode_event(ev(
            TRADE_EVENT,
            json!({"action":0,"data":{"id":8604,"accountId":123,"contractId":"C","creationTimestamp":"2025-12-01T15:30:03.5+00:00","price":25513.0,"fees":0.37,"side":0,"size":1,"voided":false,"orderId":2934939764_i64}}),
        ));
        assert!(
            matches!(&fill[0], UserEvent::Trade { trade, .. } if trade.profit_and_loss.is_none() && trade.order_id == 2934939764)
        );
        let o = decode_event(ev(ORDER_EVENT, order(1)));
        assert!(
            matches!(&o[0], UserEvent::Order { order, .. } if order.status == OrderStatus::Pending)
        );
        let other = decode_event(ev("GatewayLogout", json!({})));
        assert!(matches!(&other[0], UserEvent::Other(_)));
    }
}
