//! The user hub's side of the engine loop: orders, fills and positions applied to the book
//! (fills attributed to their strategy and journaled), and the events strategies and the
//! dashboard get of them; the hub's connection state, with a reconcile when it comes back.

use super::book::{AttributedFill, Changed, OrderState};
use super::core::Core;
use super::events::EngineEvent;
use super::gateway_calls as calls;
use crate::feed::{ConnectionState, UserEvent};
use crate::gateway::wire::{Order, Position, Trade};
use crate::market::Side;
use crate::script::{Event, Fill, OrderEvent, PositionEvent};

impl Core {
    pub(super) fn on_user_state(&mut self, state: &ConnectionState) {
        let was_live = self.user_state.is_live();
        self.user_state = state.clone();
        match (was_live, state.is_live()) {
            (false, true) => {
                tracing::info!("user hub live: reconciling orders and positions");
                self.events.send(EngineEvent::FeedUp { hub: "user" });
                // Events sent while we were away are lost: the REST view is the truth.
                self.reconcile();
            }
            (true, false) => {
                self.metrics.reconnect("user");
                tracing::warn!("user hub {}", state.label());
                self.events.send(EngineEvent::FeedDown {
                    hub: "user",
                    state: state.label().to_string(),
                });
            }
            _ => {}
        }
    }

    pub(super) fn on_user(&mut self, event: UserEvent) {
        match event {
            UserEvent::Order { order, .. } if order.account_id == self.account.id => {
                self.on_order(&order)
            }
            UserEvent::Trade { trade, .. } if trade.account_id == self.account.id => {
                self.on_trade(&trade)
            }
            UserEvent::Position { position, .. } if position.account_id == self.account.id => {
                self.on_position(&position)
            }
            UserEvent::Account { account, .. } if account.id == self.account.id => {
                self.account = account;
            }
            _ => {}
        }
    }

    pub(super) fn on_order(&mut self, order: &Order) {
        match self.book.apply_order(order) {
            Some(Changed::Order(local_id)) => {
                self.emit_order(local_id);
                self.attribute_late_fills();
            }
            Some(Changed::Bracket(local_id)) => {
                let Some(o) = self.book.get(local_id) else {
                    return;
                };
                let Some(b) = &o.bracket else { return };
                let leg = |l: Option<super::book::Leg>| {
                    l.map_or("not yet", |l| OrderState::Broker(l.status).label())
                };
                tracing::info!(
                    strategy = %o.strategy,
                    "order {} bracket: stop loss {}, take profit {}{}",
                    o.local_id,
                    leg(b.stop_loss),
                    leg(b.take_profit),
                    if b.protects() { " (position protected)" } else { "" }
                );
                self.on_leg_update(local_id);
            }
            None => {}
        }
    }

    pub(super) fn on_trade(&mut self, trade: &Trade) {
        if !self.book.first_sight(trade) {
            return;
        }
        let cost = trade.fees + trade.commissions.unwrap_or(0.0);
        let net = trade.profit_and_loss.unwrap_or(0.0) - cost;
        if let Err(e) = self.guard.record_realized(net, self.now_utc()) {
            tracing::error!("saving the daily P&L: {e}");
        }
        let fill = self.book.attribute_trade(trade);
        let symbol = fill.as_ref().map_or_else(
            || self.symbol_of(&trade.contract_id),
            |f| f.contract.symbol.to_string(),
        );
        let strategy = fill.as_ref().map(|f| f.strategy.as_str());
        self.day.fill(trade, strategy, symbol);
        self.day.sample(
            self.now_utc(),
            self.guard.realized_pnl() + self.open_pnl(),
            true,
        );
        match fill {
            Some(fill) => {
                self.record_fill(&fill);
                self.emit_fill(&fill);
                self.after_fill(&fill);
            }
            None => {
                tracing::info!("fill on order {} (not a moontick order)", trade.order_id);
                // The journal keeps the account's fill as it happened (no strategy placed it).
                self.hold_unattributed(trade);
                if self.closing.contains(trade.contract_id.as_str()) {
                    self.on_close_fill(trade);
                }
            }
        }
    }

    pub(super) fn on_position(&mut self, position: &Position) {
        if self.book.apply_position(position) {
            self.ensure_contract(&position.contract_id);
            self.emit_position(&position.contract_id);
            // A fill of an order that was in flight when the kill switch fired.
            if self.guard.halted().is_some() && position.net_size() != 0 {
                self.close_account_position(position.contract_id.clone());
            }
        }
    }

    /// An order whose id arrives after the kill switch fired, or after its strategy asked to
    /// cancel it, is cancelled at once.
    pub(super) fn cancel_if_unwanted(&mut self, local_id: u64, broker_id: i64) {
        let asked = self.book.get_mut(local_id).is_some_and(|o| {
            let asked = o.cancel_pending && !o.state.is_terminal();
            o.cancel_pending = false;
            asked
        });
        if asked || self.guard.halted().is_some() {
            calls::spawn_cancel(
                self.exchange.clone(),
                self.tx.clone(),
                self.account.id,
                broker_id,
            );
        }
    }

    pub(super) fn emit_order(&self, local_id: u64) {
        let Some(o) = self.book.get(local_id) else {
            return;
        };
        tracing::info!(
            strategy = %o.strategy,
            "order {} {}: {}{}",
            o.local_id,
            o.custom_tag,
            o.state.label(),
            o.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        );
        self.send(
            &o.strategy,
            Event::Order(OrderEvent {
                id: o.local_id,
                contract: o.contract.id.clone(),
                symbol: o.contract.symbol.clone(),
                side: o.intent.side,
                size: o.intent.size,
                filled: i64::from(o.filled),
                status: o.state.label().to_string(),
                price: o.intent.price,
                stop_price: o.intent.stop_price,
                tag: o.intent.tag.clone(),
                reason: o.reason.clone(),
                time_ms: self.now_utc().timestamp_millis(),
            }),
        );
    }

    pub(super) fn emit_fill(&self, fill: &AttributedFill) {
        let t = &fill.trade;
        let side = Side::from(t.side);
        self.log_fill(fill);
        self.send(
            &fill.strategy,
            Event::Fill(Fill {
                order_id: fill.local_id,
                contract: fill.contract.id.clone(),
                symbol: fill.contract.symbol.clone(),
                side,
                size: i64::from(t.size),
                price: t.price,
                fee: t.fees,
                time_ms: t.creation_timestamp.0.timestamp_millis(),
            }),
        );
    }

    pub(super) fn emit_position(&self, contract_id: &str) {
        let (size, avg) = self.book.position(contract_id);
        let Some(c) = self.contracts.get(contract_id) else {
            return;
        };
        self.log_position(contract_id);
        self.dispatch(Event::Position(PositionEvent {
            contract: c.id.clone(),
            symbol: c.symbol.clone(),
            size: i64::from(size),
            avg_price: avg,
        }));
    }
}
