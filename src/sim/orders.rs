//! The simulator's matching engine: accounts, orders, positions, fills and brackets. Pure state —
//! no I/O, clock or locks: callers pass in the time and a [`MarketView`] and publish the
//! [`UserEvent`]s it appends.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::events::UserEvent;
use super::ledger::Ledger;
use super::market::{ContractSpec, MarketView};
use super::rules::{apply_modify, fill_price, round_cents, set_trail, validate_place};
use crate::gateway::requests::{BracketLeg, ModifyOrderRequest, PlaceOrderRequest};
use crate::gateway::wire::{
    Account, Order, OrderSide, OrderStatus, OrderType, Position, Timestamp, Trade,
};

/// A refused call: the endpoint's error-code name (mapped to its number by
/// [`Endpoint::error_code`](crate::gateway::Endpoint::error_code)), a message, and for a rejected
/// place the id of the order record it still created.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub name: &'static str,
    pub message: Option<String>,
    pub order_id: Option<i64>,
}

impl Refusal {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            message: None,
            order_id: None,
        }
    }

    fn with(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            message: Some(message.into()),
            order_id: None,
        }
    }
}

/// Engine-side facts about an order that the wire model does not carry.
#[derive(Debug, Clone)]
struct Slot {
    order: Order,
    /// On an entry with brackets: the children's signed tick offsets and ids.
    children: Vec<(i64, i64)>,
    /// On a bracket child: the other child, cancelled when this one fills.
    oco: Option<i64>,
    trail_ticks: Option<i64>,
}

impl Slot {
    fn new(order: Order, trail_ticks: Option<i64>) -> Self {
        Self {
            order,
            children: Vec::new(),
            oco: None,
            trail_ticks,
        }
    }
}

pub struct Engine {
    accounts: Vec<Account>,
    /// Every order ever placed; an id is `FIRST_ORDER_ID + index`.
    orders: Vec<Slot>,
    /// Ids of orders that can fill (status Open), checked on every quote.
    working: Vec<i64>,
    ledger: Ledger,
    tags: HashSet<(i32, String)>,
    auto_oco: bool,
}

const FIRST_ORDER_ID: i64 = 1_000_001;

impl Engine {
    /// `auto_oco` false reproduces the default "Position Brackets" account mode, where any
    /// bracket on place is refused.
    pub fn new(accounts: Vec<Account>, auto_oco: bool) -> Self {
        Self {
            accounts,
            orders: Vec::new(),
            working: Vec::new(),
            ledger: Ledger::default(),
            tags: HashSet::new(),
            auto_oco,
        }
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn has_account(&self, id: i32) -> bool {
        self.accounts.iter().any(|a| a.id == id)
    }

    /// Orders of an account in id (creation) order.
    pub fn orders(&self, account_id: i32) -> impl Iterator<Item = &Order> {
        self.orders
            .iter()
            .map(|s| &s.order)
            .filter(move |o| o.account_id == account_id)
    }

    pub fn order(&self, account_id: i32, id: i64) -> Option<&Order> {
        self.slot(id)
            .map(|s| &s.order)
            .filter(|o| o.account_id == account_id)
    }

    /// Open positions of an account, one row per contract.
    pub fn positions(&self, account_id: i32) -> Vec<Position> {
        self.ledger.positions(account_id)
    }

    pub fn trades(&self, account_id: i32) -> impl Iterator<Item = &Trade> {
        self.ledger.trades(account_id)
    }

    fn slot(&self, id: i64) -> Option<&Slot> {
        usize::try_from(id - FIRST_ORDER_ID)
            .ok()
            .and_then(|i| self.orders.get(i))
    }

    fn slot_mut(&mut self, id: i64) -> &mut Slot {
        &mut self.orders[(id - FIRST_ORDER_ID) as usize]
    }

    fn check_account(&self, id: i32) -> Result<(), Refusal> {
        match self.accounts.iter().find(|a| a.id == id) {
            None => Err(Refusal::new("AccountNotFound")),
            Some(a) if !a.can_trade => Err(Refusal::with(
                "AccountRejected",
                "Account is not allowed to trade",
            )),
            Some(_) => Ok(()),
        }
    }

    /// `Order/place`.
    ///
    /// # Errors
    /// A [`Refusal`] named after `PlaceOrderErrorCode`. Validation failures (`OrderRejected`)
    /// still create a `Rejected` order record and carry its id, as the gateway does; a duplicate
    /// `customTag` does not.
    pub fn place(
        &mut self,
        req: &PlaceOrderRequest,
        market: &impl MarketView,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) -> Result<i64, Refusal> {
        self.check_account(req.account_id)?;
        let spec = market
            .spec(&req.contract_id)
            .ok_or(Refusal::new("ContractNotFound"))?;
        if !spec.active {
            return Err(Refusal::with("ContractNotActive", "Contract is not active"));
        }
        if let Some(tag) = &req.custom_tag
            && self.tags.contains(&(req.account_id, tag.clone()))
        {
            return Err(Refusal::with(
                "OrderRejected",
                "An order with this custom tag already exists for this account.",
            ));
        }
        let touch = market.touch(&req.contract_id);
        let ts = Timestamp(now);
        let id = FIRST_ORDER_ID + self.orders.len() as i64;
        let mut order = Order {
            id,
            account_id: req.account_id,
            contract_id: req.contract_id.clone(),
            symbol_id: Some(spec.symbol_id.to_string()),
            creation_timestamp: ts,
            update_timestamp: Some(ts),
            status: OrderStatus::Open,
            order_type: req.order_type,
            side: req.side,
            size: req.size,
            limit_price: None,
            stop_price: None,
            fill_volume: 0,
            filled_price: None,
            custom_tag: req.custom_tag.clone(),
            trail_distance: None,
            trail_price: None,
            parent_order_id: None,
            linked_order_id: None,
        };
        if let Some(tag) = &req.custom_tag {
            self.tags.insert((req.account_id, tag.clone()));
        }
        let validated = validate_place(req, spec, touch, self.auto_oco, &mut order);
        let trail_ticks = match validated {
            Ok(t) => t,
            Err(message) => {
                order.status = OrderStatus::Rejected;
                out.push(UserEvent::Order(order.clone()));
                self.orders.push(Slot::new(order, None));
                return Err(Refusal {
                    name: "OrderRejected",
                    message: Some(message),
                    order_id: Some(id),
                });
            }
        };
        // The entry goes first; its children (if any) are suspended until it fills.
        let legs = [
            (req.stop_loss_bracket, "-SL"),
            (req.take_profit_bracket, "-TP"),
        ];
        let mut children = Vec::new();
        out.push(UserEvent::Order(order.clone()));
        self.orders.push(Slot::new(order, trail_ticks));
        let mut sl_id = None;
        for (leg, suffix) in legs {
            let Some(BracketLeg { ticks, order_type }) = leg else {
                continue;
            };
            let child_id = FIRST_ORDER_ID + self.orders.len() as i64;
            let tag = req.custom_tag.as_ref().map(|t| format!("{t}{suffix}"));
            if let Some(tag) = &tag {
                self.tags.insert((req.account_id, tag.clone()));
            }
            let child = Order {
                id: child_id,
                status: OrderStatus::Suspended,
                order_type,
                side: req.side.opposite(),
                custom_tag: tag,
                parent_order_id: Some(id),
                // Seen live: the take profit points at the stop loss.
                linked_order_id: if suffix == "-TP" { sl_id } else { None },
                limit_price: None,
                stop_price: None,
                trail_price: None,
                trail_distance: None,
                ..self.slot(id).expect("just pushed").order.clone()
            };
            if suffix == "-SL" {
                sl_id = Some(child_id);
            }
            out.push(UserEvent::Order(child.clone()));
            self.orders.push(Slot::new(child, None));
            children.push((i64::from(ticks), child_id));
        }
        if children.len() == 2 {
            let (a, b) = (id + 1, id + 2);
            self.slot_mut(a).oco = Some(b);
            self.slot_mut(b).oco = Some(a);
        }
        self.slot_mut(id).children = children;
        self.working.push(id);
        self.try_fill(id, market, now, out);
        Ok(id)
    }

    /// `Order/cancel`; cancelling an entry also cancels its suspended children.
    ///
    /// # Errors
    /// `AccountNotFound`, `OrderNotFound`, or `Rejected` for an order that is already final.
    pub fn cancel(
        &mut self,
        account_id: i32,
        order_id: i64,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) -> Result<(), Refusal> {
        if !self.has_account(account_id) {
            return Err(Refusal::new("AccountNotFound"));
        }
        let Some(status) = self.order(account_id, order_id).map(|o| o.status) else {
            return Err(Refusal::with("OrderNotFound", "Order not found"));
        };
        if status.is_terminal() {
            return Err(Refusal::with("Rejected", "Order is not open"));
        }
        self.finish(order_id, OrderStatus::Cancelled, now, out);
        let children: Vec<i64> = self
            .slot(order_id)
            .map(|s| s.children.iter().map(|c| c.1).collect())
            .unwrap_or_default();
        for child in children {
            self.finish(child, OrderStatus::Cancelled, now, out);
        }
        Ok(())
    }

    /// `Order/modify`: size, limit, stop or trail of a working order.
    ///
    /// # Errors
    /// `AccountNotFound`, `OrderNotFound`, `ContractNotFound`, or `Rejected` with a message for a
    /// final order or a change that does not fit the order's type.
    pub fn modify(
        &mut self,
        req: &ModifyOrderRequest,
        market: &impl MarketView,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) -> Result<(), Refusal> {
        if !self.has_account(req.account_id) {
            return Err(Refusal::new("AccountNotFound"));
        }
        let Some(order) = self.order(req.account_id, req.order_id).cloned() else {
            return Err(Refusal::with("OrderNotFound", "Order not found"));
        };
        let spec = market
            .spec(&order.contract_id)
            .ok_or(Refusal::new("ContractNotFound"))?;
        let reject = |m: String| Refusal::with("Rejected", m);
        if order.status != OrderStatus::Open {
            return Err(reject("Only open orders can be modified".into()));
        }
        let trail = self.slot(order.id).and_then(|s| s.trail_ticks);
        let touch = market.touch(&order.contract_id);
        let (mut next, trail) = apply_modify(req, &order, trail, spec, touch).map_err(reject)?;
        next.update_timestamp = Some(Timestamp(now));
        let slot = self.slot_mut(order.id);
        slot.order = next.clone();
        slot.trail_ticks = trail;
        out.push(UserEvent::Order(next));
        self.try_fill(order.id, market, now, out);
        Ok(())
    }

    /// `Position/closeContract` (`size: None`) and `Position/partialCloseContract`: a market
    /// order against the position. A full close also cancels the position's working bracket
    /// children, so no orphaned stop can reopen it (our reading of Auto OCO; not documented).
    ///
    /// # Errors
    /// `AccountNotFound`, `ContractNotFound`, `ContractNotActive`, `PositionNotFound`, or
    /// `InvalidCloseSize` (partial only); the caller maps the names to each endpoint's codes.
    pub fn close(
        &mut self,
        account_id: i32,
        contract_id: &str,
        size: Option<i32>,
        market: &impl MarketView,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) -> Result<(), Refusal> {
        self.check_account(account_id)?;
        let spec = market
            .spec(contract_id)
            .ok_or(Refusal::new("ContractNotFound"))?;
        if !spec.active {
            return Err(Refusal::new("ContractNotActive"));
        }
        let net = self.ledger.net(account_id, contract_id);
        if net == 0 {
            return Err(Refusal::with("PositionNotFound", "Position not found"));
        }
        let qty = match size {
            None => net.abs(),
            Some(s) if s <= 0 || s > net.abs() => {
                return Err(Refusal::with("InvalidCloseSize", "Invalid close size"));
            }
            Some(s) => s,
        };
        let side = if net > 0 {
            OrderSide::Ask
        } else {
            OrderSide::Bid
        };
        let req = PlaceOrderRequest {
            account_id,
            contract_id: contract_id.to_string(),
            order_type: OrderType::Market,
            side,
            size: qty,
            limit_price: None,
            stop_price: None,
            trail_price: None,
            custom_tag: None,
            stop_loss_bracket: None,
            take_profit_bracket: None,
        };
        self.place(&req, market, now, out).map_err(|r| Refusal {
            name: "OrderRejected",
            ..r
        })?;
        if size.is_none() {
            let orphans: Vec<i64> = self
                .working
                .iter()
                .copied()
                .filter(|&id| {
                    let o = &self.slot(id).expect("working orders exist").order;
                    o.account_id == account_id
                        && o.contract_id == contract_id
                        && o.parent_order_id.is_some()
                })
                .collect();
            for id in orphans {
                self.finish(id, OrderStatus::Cancelled, now, out);
            }
        }
        Ok(())
    }

    /// Whether any order is working (a quote can fill nothing otherwise).
    pub fn has_working(&self) -> bool {
        !self.working.is_empty()
    }

    /// Re-checks the working orders of a contract after its quote moved: trailing stops follow,
    /// then whatever became marketable fills.
    pub fn on_quote(
        &mut self,
        contract_id: &str,
        market: &impl MarketView,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) {
        if self.working.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.working.len() {
            let id = self.working[i];
            if self
                .slot(id)
                .is_some_and(|s| s.order.contract_id == contract_id)
            {
                self.follow_trail(id, market, now, out);
                if self.try_fill(id, market, now, out) {
                    // The list changed under us (this order left, maybe children joined): rescan.
                    i = 0;
                    continue;
                }
            }
            i += 1;
        }
    }

    fn follow_trail(
        &mut self,
        id: i64,
        market: &impl MarketView,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) {
        let slot = self.slot_mut(id);
        let (Some(ticks), Some(stop)) = (slot.trail_ticks, slot.order.stop_price) else {
            return;
        };
        let Some((spec, touch)) = market
            .spec(&slot.order.contract_id)
            .zip(market.touch(&slot.order.contract_id))
        else {
            return;
        };
        let level = if slot.order.side == OrderSide::Ask {
            spec.ticks(touch.bid) - ticks
        } else {
            spec.ticks(touch.ask) + ticks
        };
        let better = if slot.order.side == OrderSide::Ask {
            level > spec.ticks(stop)
        } else {
            level < spec.ticks(stop)
        };
        if better {
            slot.order.stop_price = Some(spec.price(level));
            slot.order.update_timestamp = Some(Timestamp(now));
            out.push(UserEvent::Order(slot.order.clone()));
        }
    }

    /// Fills a working order if the touch allows; returns whether it filled.
    fn try_fill(
        &mut self,
        id: i64,
        market: &impl MarketView,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) -> bool {
        let order = &self.slot(id).expect("order exists").order;
        if order.status != OrderStatus::Open {
            return false;
        }
        let Some((spec, touch)) = market
            .spec(&order.contract_id)
            .zip(market.touch(&order.contract_id))
        else {
            return false;
        };
        let Some(price) = fill_price(order, touch) else {
            return false;
        };
        let spec = spec.clone();
        self.fill(id, price, &spec, market, now, out);
        true
    }

    fn fill(
        &mut self,
        id: i64,
        price: f64,
        spec: &ContractSpec,
        market: &impl MarketView,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) {
        let ts = Timestamp(now);
        self.working.retain(|&w| w != id);
        let slot = self.slot_mut(id);
        slot.order.status = OrderStatus::Filled;
        slot.order.fill_volume = slot.order.size;
        slot.order.filled_price = Some(price);
        slot.order.update_timestamp = Some(ts);
        let order = slot.order.clone();
        let (children, oco) = (slot.children.clone(), slot.oco);
        out.push(UserEvent::Order(order.clone()));
        self.apply_fill(&order, price, spec, now, out);
        if let Some(other) = oco {
            self.finish(other, OrderStatus::Cancelled, now, out);
        }
        // The entry filled: its children leave suspension at prices relative to the fill.
        for &(ticks, child) in &children {
            let slot = self.slot_mut(child);
            if slot.order.status != OrderStatus::Suspended {
                continue;
            }
            let level = spec.price(spec.ticks(price) + ticks);
            slot.order.status = OrderStatus::Open;
            slot.order.update_timestamp = Some(ts);
            match slot.order.order_type {
                OrderType::Limit => slot.order.limit_price = Some(level),
                OrderType::TrailingStop => {
                    slot.trail_ticks = Some(ticks.abs());
                    set_trail(&mut slot.order, spec, price, ticks.abs());
                }
                _ => slot.order.stop_price = Some(level),
            }
            out.push(UserEvent::Order(slot.order.clone()));
            self.working.push(child);
        }
        // A child may be marketable the moment it opens.
        for &(_, child) in &children {
            self.try_fill(child, market, now, out);
        }
    }

    /// Books a fill into the position, the trade log and the balance.
    fn apply_fill(
        &mut self,
        order: &Order,
        price: f64,
        spec: &ContractSpec,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) {
        let (trade, position) = self.ledger.book(order, price, spec, Timestamp(now));
        let pnl = trade.profit_and_loss.unwrap_or(0.0);
        let account = self
            .accounts
            .iter_mut()
            .find(|a| a.id == order.account_id)
            .expect("checked on place");
        account.balance = round_cents(account.balance + pnl - trade.fees);
        out.push(UserEvent::Trade(trade));
        out.push(UserEvent::Position(position));
        out.push(UserEvent::Account(account.clone()));
    }

    /// Moves a non-final order to a final status and stops matching it.
    fn finish(
        &mut self,
        id: i64,
        status: OrderStatus,
        now: DateTime<Utc>,
        out: &mut Vec<UserEvent>,
    ) {
        let slot = self.slot_mut(id);
        if slot.order.status.is_terminal() {
            return;
        }
        slot.order.status = status;
        slot.order.update_timestamp = Some(Timestamp(now));
        out.push(UserEvent::Order(slot.order.clone()));
        self.working.retain(|&w| w != id);
    }
}

#[cfg(test)]
#[path = "orders_tests.rs"]
mod tests;
