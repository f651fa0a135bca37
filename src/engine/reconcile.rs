//! Applying REST outcomes: a place accepted, rejected or of unknown outcome (looked up by its
//! customTag until the gateway answers, never resent), and the account snapshots read after a
//! reconnect.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::book::OrderState;
use super::core::Core;
use super::gateway_calls as calls;
use super::input::Input;
use super::reconcile_rules::{LOOKUP_BACKOFF, Lookup, RECONCILE_SPACING, Verdict, verdict};
use crate::gateway::wire::{Order, Position, Timestamp, Trade};
use crate::gateway::{GatewayClient, GatewayError};

/// Looks for the order tagged `custom_tag` after `delay`, and reports to the loop.
fn spawn_lookup(
    client: GatewayClient,
    tx: mpsc::Sender<Input>,
    account_id: i32,
    (local_id, attempt): (u64, u32),
    custom_tag: String,
    sent_at: chrono::DateTime<Utc>,
    delay: Duration,
) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let since = Timestamp::from(sent_at - chrono::Duration::minutes(2));
        let asked_at = Instant::now();
        let result = client
            .search_orders(account_id, since, None)
            .await
            .map(|orders| {
                orders
                    .into_iter()
                    .find(|o| o.custom_tag.as_deref() == Some(custom_tag.as_str()))
            });
        let _ = tx
            .send(Input::PlaceLookedUp(Lookup {
                local_id,
                attempt,
                asked_at,
                result,
            }))
            .await;
    });
}

impl Core {
    pub(super) fn on_placed(&mut self, local_id: u64, result: Result<i64, GatewayError>) {
        match result {
            Ok(broker_id) => {
                self.book.placed(local_id, broker_id);
                self.emit_order(local_id);
                self.cancel_if_unwanted(local_id, broker_id);
                self.attribute_late_fills();
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
                    o.unknown_since = Some(Instant::now());
                }
                tracing::warn!(
                    "order {} {}: {e}; outcome unknown, looking for it at the broker",
                    o.local_id,
                    o.custom_tag
                );
                self.emit_order(local_id);
                self.look_up_unknown(local_id, 0);
            }
            Err(e) => {
                self.book.failed(local_id, e.to_string());
                self.emit_order(local_id);
            }
        }
    }

    /// Schedules lookup number `attempt` of an unknown-outcome order.
    fn look_up_unknown(&self, local_id: u64, attempt: u32) {
        let Some(o) = self.book.get(local_id) else {
            return;
        };
        let delay = if attempt == 0 {
            Duration::ZERO
        } else {
            LOOKUP_BACKOFF.delay_jittered(attempt - 1)
        };
        // A simulated exchange answers every place at once: only a gateway leaves it unknown.
        let Some(client) = self.client.clone() else {
            tracing::error!("order {local_id}: outcome unknown and no gateway to look it up");
            return;
        };
        spawn_lookup(
            client,
            self.tx.clone(),
            self.account.id,
            (local_id, attempt),
            o.custom_tag.clone(),
            o.sent_at,
            delay,
        );
    }

    /// An order stays `unknown` until a lookup finds it, the user hub reports it, or a search
    /// that succeeded after [`NOT_PLACED_GRACE`](super::NOT_PLACED_GRACE) does not find it. A failed lookup never
    /// settles anything.
    pub(super) fn on_place_looked_up(&mut self, lookup: Lookup) {
        let (local_id, attempt) = (lookup.local_id, lookup.attempt);
        let Some(since) = self
            .book
            .get(local_id)
            .filter(|o| o.state == OrderState::Unknown)
            .map(|o| o.unknown_since.unwrap_or(lookup.asked_at))
        else {
            // Settled meanwhile (the user hub reported it, or an earlier lookup found it).
            return;
        };
        if let Err(e) = &lookup.result {
            tracing::warn!("order {local_id}: lookup {attempt} failed ({e}); still unknown");
        }
        match verdict(lookup, since, self.not_placed_grace) {
            Verdict::Found(o) => {
                self.book.placed(local_id, o.id);
                self.book.apply_order(&o);
                self.emit_order(local_id);
                self.attribute_late_fills();
                if !o.status.is_terminal() {
                    self.cancel_if_unwanted(local_id, o.id);
                }
                if o.fill_volume > 0 {
                    // Its fills may have gone by while the gateway was unreachable: read them
                    // so they are attributed to the strategy now that the order's id is known.
                    self.reconcile();
                }
            }
            Verdict::NotPlaced => {
                self.book.failed(
                    local_id,
                    "not placed: the gateway answered and has no such order".into(),
                );
                self.emit_order(local_id);
            }
            Verdict::Retry => self.look_up_unknown(local_id, attempt.saturating_add(1)),
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
        self.resend_leg_cancels(true);
    }

    /// Reads the account's orders, positions and fills. Asked for by every reconnect and every
    /// unknown outcome, so after an outage the asks are coalesced: at most one snapshot per
    /// [`RECONCILE_SPACING`], the rest folded into the next (on the loop's tick).
    pub(super) fn reconcile(&mut self) {
        self.reconcile_throttle.due = true;
        self.reconcile_if_due();
    }

    pub(super) fn reconcile_if_due(&mut self) {
        let now = Instant::now();
        let t = &mut self.reconcile_throttle;
        if !t.due || t.last.is_some_and(|last| now < last + RECONCILE_SPACING) {
            return;
        }
        t.due = false;
        t.last = Some(now);
        let since = self.started - chrono::Duration::minutes(5);
        calls::spawn_snapshot(
            self.exchange.clone(),
            self.tx.clone(),
            self.account.id,
            since,
        );
    }

    /// Fills the hub reported before their order was known as ours, now attributed.
    pub(super) fn attribute_late_fills(&mut self) {
        for fill in self.book.attribute_late_fills() {
            self.day.attributed_late(&fill.trade, &fill.strategy);
            self.record_fill(&fill);
            self.emit_fill(&fill);
            self.after_fill(&fill);
        }
    }
}
