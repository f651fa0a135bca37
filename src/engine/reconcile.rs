//! Applying REST outcomes: a place accepted, rejected or of unknown outcome (looked up by its
//! customTag, never resent), and the account snapshots read after a reconnect.

use super::book::OrderState;
use super::core::Core;
use super::gateway_calls as calls;
use crate::gateway::GatewayError;
use crate::gateway::wire::{Order, Position, Trade};

impl Core {
    pub(super) fn on_placed(&mut self, local_id: u64, result: Result<i64, GatewayError>) {
        match result {
            Ok(broker_id) => {
                self.book.placed(local_id, broker_id);
                self.emit_order(local_id);
                self.cancel_if_unwanted(local_id, broker_id);
            }
            Err(GatewayError::Rejected {
                code_name,
                message,
                order_id,
                ..
            }) => {
                if let Some(o) = self.book.get(local_id) {
                    self.metrics.order_rejected(&o.strategy);
                }
                if let Some(id) = order_id {
                    self.book.placed(local_id, id);
                }
                let reason = format!("{code_name}: {}", message.unwrap_or_default());
                self.book
                    .failed(local_id, reason.trim_end_matches(": ").to_string());
                self.emit_order(local_id);
            }
            Err(e) if e.is_outcome_unknown() => {
                let Some(o) = self.book.get_mut(local_id) else {
                    return;
                };
                if matches!(o.state, OrderState::Sending) {
                    o.state = OrderState::Unknown;
                }
                tracing::warn!(
                    "order {} {}: {e}; looking for it at the broker",
                    o.local_id,
                    o.custom_tag
                );
                let (tag, sent_at) = (o.custom_tag.clone(), o.sent_at);
                calls::spawn_find_unknown(
                    self.client.clone(),
                    self.tx.clone(),
                    self.account.id,
                    local_id,
                    tag,
                    sent_at,
                );
            }
            Err(e) => {
                self.book.failed(local_id, e.to_string());
                self.emit_order(local_id);
            }
        }
    }

    pub(super) fn on_place_reconciled(&mut self, local_id: u64, order: Option<Order>) {
        match order {
            Some(o) => {
                self.book.placed(local_id, o.id);
                self.book.apply_order(&o);
                self.emit_order(local_id);
                if !o.status.is_terminal() {
                    self.cancel_if_unwanted(local_id, o.id);
                }
            }
            None => {
                let still_unknown = self
                    .book
                    .get(local_id)
                    .is_some_and(|o| o.state == OrderState::Unknown);
                if still_unknown {
                    self.book.failed(
                        local_id,
                        "not placed: outcome unknown and not found at the broker".into(),
                    );
                    self.emit_order(local_id);
                }
            }
        }
    }

    pub(super) fn on_snapshot(
        &mut self,
        orders: Vec<Order>,
        positions: Vec<Position>,
        trades: Vec<Trade>,
    ) {
        for o in &orders {
            self.on_order(o);
        }
        for t in &trades {
            self.on_trade(t);
        }
        for contract in self.book.replace_positions(&positions) {
            self.ensure_contract(&contract);
            self.emit_position(&contract);
        }
    }

    pub(super) fn reconcile(&self) {
        let since = self.started - chrono::Duration::minutes(5);
        calls::spawn_snapshot(self.client.clone(), self.tx.clone(), self.account.id, since);
    }
}
