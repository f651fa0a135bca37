//! The engine's book: our orders (local id ↔ customTag ↔ broker id, bracket children), orders
//! placed outside moontick, account and per-strategy positions, and which fills were already
//! counted. Pure state, no I/O: the engine loop feeds it gateway events and reads exposures.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::gateway::wire::{Order, OrderStatus, Position, Trade};
use crate::risk::Exposure;
use crate::script::{OrderIntent, Side};

/// A contract the engine trades, with what P&L and routing need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractInfo {
    pub id: Arc<str>,
    /// The name strategies use for it (`MNQ`, or the contract id when they used that).
    pub symbol: Arc<str>,
    /// The exchange code (`MNQZ6`) and the gateway's description, for `bot.contract`.
    pub name: Arc<str>,
    pub description: Arc<str>,
    pub tick_size: f64,
    pub tick_value: f64,
}

impl ContractInfo {
    /// Dollars per point per contract.
    pub fn point_value(&self) -> f64 {
        if self.tick_size > 0.0 {
            self.tick_value / self.tick_size
        } else {
            0.0
        }
    }
}

/// Where one of our orders is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// `Order/place` is on its way.
    Sending,
    /// The place call's outcome is unknown: being reconciled, never resent.
    Unknown,
    /// What the gateway last said.
    Broker(OrderStatus),
}

impl OrderState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Broker(s) if s.is_terminal())
    }

    /// The status name strategies see.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sending => "pending",
            Self::Unknown => "unknown",
            Self::Broker(s) => match s {
                OrderStatus::Open => "open",
                OrderStatus::Filled => "filled",
                OrderStatus::Cancelled => "cancelled",
                OrderStatus::Expired => "expired",
                OrderStatus::Rejected => "rejected",
                OrderStatus::Pending | OrderStatus::None => "pending",
                OrderStatus::PendingCancellation => "cancelling",
                OrderStatus::Suspended => "suspended",
                _ => "unknown",
            },
        }
    }
}

/// One order a strategy placed through the engine.
#[derive(Debug, Clone)]
pub struct LocalOrder {
    pub local_id: u64,
    pub strategy: String,
    pub contract: Arc<ContractInfo>,
    pub intent: OrderIntent,
    /// Unique per account and across restarts; names the strategy and the local id.
    pub custom_tag: String,
    pub broker_id: Option<i64>,
    pub state: OrderState,
    pub filled: i32,
    pub bracket: Option<Bracket>,
    pub sent_at: DateTime<Utc>,
    pub reason: Option<String>,
    /// `bot.cancel` came while the place call was still in flight: cancel as soon as the
    /// gateway's id is known.
    pub cancel_pending: bool,
    /// Its position was flattened: bracket legs reported from now on are cancelled at once.
    pub legs_unwanted: bool,
    /// When the place call's outcome became unknown (for the "not placed" grace period).
    pub unknown_since: Option<tokio::time::Instant>,
}

/// What an order update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// One of our orders (by local id).
    Order(u64),
    /// A bracket child of one of our orders (by the entry's local id).
    Bracket(u64),
}

/// A fill attributed to a strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributedFill {
    pub strategy: String,
    /// The order it filled (for a bracket leg: the entry's local id).
    pub local_id: u64,
    /// Set when a bracket leg filled, not the entry.
    pub leg: Option<LegKind>,
    pub contract: Arc<ContractInfo>,
    pub trade: Trade,
    /// The strategy's position on the contract before and after this fill.
    pub before: i32,
    pub after: i32,
}

impl AttributedFill {
    /// A leg is an exit: a leg fill that did not bring the position toward flat (it was already
    /// flat, or the fill grew or flipped it) opened a position nobody asked for.
    pub fn is_orphan_leg(&self) -> bool {
        let reduced = self.before != 0
            && self.after.abs() < self.before.abs()
            && (self.after == 0 || self.after.signum() == self.before.signum());
        self.leg.is_some() && !reduced
    }
}

/// A strategy's own position on a contract, from its fills.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StrategyPosition {
    pub size: i32,
    pub avg_price: f64,
}

impl StrategyPosition {
    fn apply(&mut self, signed: i32, price: f64) {
        let new = self.size + signed;
        if self.size == 0 || self.size.signum() == signed.signum() {
            let total = self.size.abs() + signed.abs();
            self.avg_price = (self.avg_price * self.size.abs() as f64
                + price * signed.abs() as f64)
                / total as f64;
        } else if new.signum() != self.size.signum() && new != 0 {
            // Flipped through flat: what is left was opened at this fill's price.
            self.avg_price = price;
        }
        self.size = new;
        if new == 0 {
            self.avg_price = 0.0;
        }
    }
}

/// The book. Owned by the engine loop.
#[derive(Debug)]
pub struct Book {
    run_id: String,
    next_local: u64,
    orders: HashMap<u64, LocalOrder>,
    by_broker: HashMap<i64, u64>,
    by_tag: HashMap<String, u64>,
    /// Bracket children's broker ids → their entry's local id.
    child_of: HashMap<i64, u64>,
    foreign: HashMap<i64, Order>,
    positions: HashMap<Arc<str>, Position>,
    strategy_positions: HashMap<(String, Arc<str>), StrategyPosition>,
    seen_trades: HashSet<i64>,
    /// Fills of orders not (yet) known as ours: the hub can report a fill before the order's id
    /// is known (a place of unknown outcome), so they are attributed once it is.
    unattributed: Vec<Trade>,
}

/// How many unattributed fills are kept (the oldest go first); fills of orders placed by hand
/// land here too and must not grow without bound.
const UNATTRIBUTED_KEPT: usize = 256;

/// Keeps customTags short and free of the separators they are parsed by.
fn tag_part(s: &str) -> String {
    s.chars()
        .take(16)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The strategy a customTag of ours names (`<strategy>.<run>.<local>`, bracket children add
/// `-SL`/`-TP`), for orders placed by an earlier run.
pub fn strategy_of_tag(tag: &str) -> Option<&str> {
    let base = tag
        .strip_suffix("-SL")
        .or_else(|| tag.strip_suffix("-TP"))
        .unwrap_or(tag);
    let mut parts = base.rsplitn(3, '.');
    let local = parts.next()?;
    let run = parts.next()?;
    let strategy = parts.next()?;
    (local.chars().all(|c| c.is_ascii_digit()) && run.starts_with("mt")).then_some(strategy)
}

impl Book {
    /// `run_id` makes this run's customTags differ from every earlier run's.
    pub fn new(run_id: impl Into<String>) -> Self {
        Self {
            run_id: format!("mt{}", run_id.into()),
            next_local: 1,
            orders: HashMap::new(),
            by_broker: HashMap::new(),
            by_tag: HashMap::new(),
            child_of: HashMap::new(),
            foreign: HashMap::new(),
            positions: HashMap::new(),
            strategy_positions: HashMap::new(),
            seen_trades: HashSet::new(),
            unattributed: Vec::new(),
        }
    }

    /// Records an approved order about to be sent and returns it.
    pub fn insert(
        &mut self,
        strategy: &str,
        contract: Arc<ContractInfo>,
        intent: OrderIntent,
    ) -> &LocalOrder {
        let local_id = self.next_local;
        self.next_local += 1;
        let custom_tag = format!("{}.{}.{local_id}", tag_part(strategy), self.run_id);
        let bracket = (intent.stop_loss_ticks.is_some() || intent.take_profit_ticks.is_some())
            .then(Bracket::default);
        self.by_tag.insert(custom_tag.clone(), local_id);
        self.orders.entry(local_id).or_insert(LocalOrder {
            local_id,
            strategy: strategy.to_string(),
            contract,
            intent,
            custom_tag,
            broker_id: None,
            state: OrderState::Sending,
            filled: 0,
            bracket,
            sent_at: Utc::now(),
            reason: None,
            cancel_pending: false,
            legs_unwanted: false,
            unknown_since: None,
        })
    }

    pub fn get(&self, local_id: u64) -> Option<&LocalOrder> {
        self.orders.get(&local_id)
    }

    pub fn get_mut(&mut self, local_id: u64) -> Option<&mut LocalOrder> {
        self.orders.get_mut(&local_id)
    }

    pub fn orders(&self) -> impl Iterator<Item = &LocalOrder> {
        self.orders.values()
    }

    /// The gateway accepted the place call.
    pub fn placed(&mut self, local_id: u64, broker_id: i64) {
        if let Some(o) = self.orders.get_mut(&local_id) {
            o.broker_id = Some(broker_id);
            if matches!(o.state, OrderState::Sending | OrderState::Unknown) {
                o.state = OrderState::Broker(OrderStatus::Pending);
            }
            self.by_broker.insert(broker_id, local_id);
        }
    }

    /// The order will never exist (rejected, or not found after an unknown outcome).
    pub fn failed(&mut self, local_id: u64, reason: String) {
        if let Some(o) = self.orders.get_mut(&local_id) {
            o.state = OrderState::Broker(OrderStatus::Rejected);
            o.reason = Some(reason);
        }
    }

    /// Applies an order update from the user hub or a REST search. Returns which of our orders
    /// it changed, or `None` for an order not ours or an update that changed nothing.
    pub fn apply_order(&mut self, order: &Order) -> Option<Changed> {
        let tag = order.custom_tag.as_deref().unwrap_or("");
        if let Some(&parent_id) = self.child_of.get(&order.id) {
            return self.apply_child(parent_id, order);
        }
        let local = self
            .by_broker
            .get(&order.id)
            .or_else(|| self.by_tag.get(tag))
            .copied();
        if let Some(local_id) = local {
            let o = self.orders.get_mut(&local_id)?;
            if o.broker_id.is_none() {
                o.broker_id = Some(order.id);
                self.by_broker.insert(order.id, local_id);
            }
            let changed =
                o.state != OrderState::Broker(order.status) || o.filled != order.fill_volume;
            o.state = OrderState::Broker(order.status);
            o.filled = order.fill_volume;
            return changed.then_some(Changed::Order(local_id));
        }
        let parent = order
            .parent_order_id
            .and_then(|p| self.by_broker.get(&p).copied())
            .or_else(|| {
                let base = tag
                    .strip_suffix("-SL")
                    .or_else(|| tag.strip_suffix("-TP"))?;
                self.by_tag.get(base).copied()
            });
        if let Some(parent_id) = parent {
            self.child_of.insert(order.id, parent_id);
            return self.apply_child(parent_id, order);
        }
        if order.status.is_terminal() {
            self.foreign.remove(&order.id);
        } else {
            self.foreign.insert(order.id, order.clone());
        }
        None
    }

    /// Applies a position update (size 0 or type Undefined means flat).
    pub fn apply_position(&mut self, position: &Position) -> bool {
        let key: Arc<str> = position.contract_id.as_str().into();
        let flat = position.net_size() == 0;
        let before = self
            .positions
            .get(&key)
            .map(|p| (p.net_size(), p.average_price));
        if flat {
            self.positions.remove(&key);
        } else {
            self.positions.insert(key, position.clone());
        }
        before != (!flat).then(|| (position.net_size(), position.average_price))
    }

    /// Replaces every account position with a REST snapshot; returns the contracts that changed.
    pub fn replace_positions(&mut self, positions: &[Position]) -> Vec<String> {
        let mut changed: Vec<String> = Vec::new();
        let fresh: HashSet<&str> = positions.iter().map(|p| p.contract_id.as_str()).collect();
        let gone: Vec<Arc<str>> = self
            .positions
            .keys()
            .filter(|k| !fresh.contains(&***k))
            .cloned()
            .collect();
        for k in gone {
            self.positions.remove(&k);
            changed.push(k.to_string());
        }
        for p in positions {
            if self.apply_position(p) {
                changed.push(p.contract_id.clone());
            }
        }
        changed
    }

    /// Signed account position and average price on a contract.
    pub fn position(&self, contract: &str) -> (i32, f64) {
        self.positions
            .get(contract)
            .map_or((0, 0.0), |p| (p.net_size(), p.average_price))
    }

    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.positions.values()
    }

    pub fn strategy_position(&self, strategy: &str, contract: &str) -> StrategyPosition {
        self.strategy_positions
            .iter()
            .find(|((s, c), _)| s == strategy && &**c == contract)
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }

    /// True the first time a (non-voided) fill is seen: the hub and the REST snapshots after a
    /// reconnect may both report it, and it must count once.
    pub fn first_sight(&mut self, trade: &Trade) -> bool {
        !trade.voided && self.seen_trades.insert(trade.id)
    }

    /// Attributes a fill (seen for the first time) to the strategy whose order it filled and
    /// updates that strategy's position. `None` for a fill of an order that is not ours.
    pub fn attribute_trade(&mut self, trade: &Trade) -> Option<AttributedFill> {
        let known = self
            .by_broker
            .get(&trade.order_id)
            .map(|&id| (id, false))
            .or_else(|| self.child_of.get(&trade.order_id).map(|&id| (id, true)));
        let Some((local_id, is_child)) = known else {
            if self.unattributed.len() >= UNATTRIBUTED_KEPT {
                self.unattributed.remove(0);
            }
            self.unattributed.push(trade.clone());
            return None;
        };
        let o = self.orders.get(&local_id)?;
        let leg = if is_child {
            let b = o.bracket.as_ref()?;
            b.legs()
                .find(|(_, l)| l.broker_id == trade.order_id)
                .map(|(k, _)| k)
        } else {
            None
        };
        let key = (o.strategy.clone(), o.contract.id.clone());
        let position = self.strategy_positions.entry(key).or_default();
        let before = position.size;
        position.apply(trade.side.sign() * trade.size, trade.price);
        Some(AttributedFill {
            strategy: o.strategy.clone(),
            local_id,
            leg,
            contract: o.contract.clone(),
            trade: trade.clone(),
            before,
            after: position.size,
        })
    }

    /// Attributes the kept fills whose orders are now known to be ours (call after an order's
    /// broker id became known).
    pub fn attribute_late_fills(&mut self) -> Vec<AttributedFill> {
        if self.unattributed.is_empty() {
            return Vec::new();
        }
        let kept = std::mem::take(&mut self.unattributed);
        let (ours, others): (Vec<Trade>, Vec<Trade>) = kept.into_iter().partition(|t| {
            self.by_broker.contains_key(&t.order_id) || self.child_of.contains_key(&t.order_id)
        });
        self.unattributed = others;
        ours.iter()
            .filter_map(|t| self.attribute_trade(t))
            .collect()
    }

    /// Marks fills as counted without attributing them (the day's trades seen at start-up).
    pub fn mark_trades_seen(&mut self, trades: &[Trade]) {
        self.seen_trades.extend(trades.iter().map(|t| t.id));
    }

    /// Contracts held or committed on one contract, for the risk guard.
    pub fn exposure(&self, strategy: &str, contract: &str) -> Exposure {
        let mut e = Exposure {
            account_position: self.position(contract).0,
            ..Exposure::default()
        };
        e.strategy_position = self.strategy_position(strategy, contract).size;
        for o in self
            .orders
            .values()
            .filter(|o| &*o.contract.id == contract && !o.state.is_terminal())
        {
            let open = (o.intent.size as i32 - o.filled).max(0) as u32;
            let buy = o.intent.side == Side::Buy;
            if buy {
                e.account_working_buy += open
            } else {
                e.account_working_sell += open
            }
            if o.strategy == strategy {
                if buy {
                    e.strategy_working_buy += open
                } else {
                    e.strategy_working_sell += open
                }
            }
        }
        for o in self.foreign.values().filter(|o| o.contract_id == contract) {
            let open = (o.size - o.fill_volume).max(0) as u32;
            if o.side.sign() > 0 {
                e.account_working_buy += open
            } else {
                e.account_working_sell += open
            }
        }
        e
    }

    /// Broker ids of every working order on the account (ours, bracket children, foreign).
    pub fn working_broker_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.foreign.keys().copied().collect();
        for o in self.orders.values() {
            if let (Some(id), false) = (o.broker_id, o.state.is_terminal()) {
                ids.push(id);
            }
            for (_, leg) in o.bracket.iter().flat_map(Bracket::legs) {
                if leg.is_working() {
                    ids.push(leg.broker_id);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Local ids of a strategy's orders that can still fill.
    pub fn working_for(&self, strategy: &str, contract: Option<&str>) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .orders
            .values()
            .filter(|o| o.strategy == strategy && !o.state.is_terminal())
            .filter(|o| contract.is_none_or(|c| &*o.contract.id == c))
            .map(|o| o.local_id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Strategies that have orders, legs or a position in the book.
    pub fn strategies(&self) -> Vec<String> {
        let mut names: Vec<String> = self.orders.values().map(|o| o.strategy.clone()).collect();
        names.extend(self.strategy_positions.keys().map(|(s, _)| s.clone()));
        names.sort();
        names.dedup();
        names
    }

    /// Whether a strategy still has anything working or held.
    pub fn has_exposure(&self, strategy: &str) -> bool {
        !self.working_for(strategy, None).is_empty()
            || !self.strategy_contracts(strategy).is_empty()
            || self
                .legs()
                .any(|(o, _, l)| o.strategy == strategy && l.is_working() && !l.cancel_sent)
    }

    /// Each strategy's non-zero position on a contract, by name.
    pub fn holders(&self, contract: &str) -> Vec<(&str, StrategyPosition)> {
        let mut out: Vec<(&str, StrategyPosition)> = self
            .strategy_positions
            .iter()
            .filter(|((_, c), p)| &**c == contract && p.size != 0)
            .map(|((s, _), p)| (s.as_str(), *p))
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// Every strategy's position on every contract it traded (flat ones included).
    pub fn strategy_positions(&self) -> impl Iterator<Item = (&str, &Arc<str>, StrategyPosition)> {
        self.strategy_positions
            .iter()
            .map(|((s, c), p)| (s.as_str(), c, *p))
    }

    /// Contracts a strategy holds a position in.
    pub fn strategy_contracts(&self, strategy: &str) -> Vec<Arc<str>> {
        self.strategy_positions
            .iter()
            .filter(|((s, _), p)| s == strategy && p.size != 0)
            .map(|((_, c), _)| c.clone())
            .collect()
    }
}

#[path = "book_close.rs"]
mod close;
#[path = "book_legs.rs"]
mod legs;
pub use super::bracket::{Bracket, Leg, LegKind};

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
