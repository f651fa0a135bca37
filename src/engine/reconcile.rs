//! Applying REST outcomes: a place accepted, rejected or of unknown outcome (looked up by its
//! customTag until the gateway answers, never resent), and the account snapshots read after a
//! reconnect.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Input;
use super::book::OrderState;
use super::core::Core;
use super::gateway_calls as calls;
use crate::backoff::Backoff;
use crate::gateway::wire::{Order, Position, Timestamp, Trade};
use crate::gateway::{GatewayClient, GatewayError};

/// How long after an unknown outcome a lookup that finds nothing may conclude "not placed".
///
/// Why a successful lookup alone is not enough: a frozen gateway may hold our `Order/place` in a
/// queue (a stalled worker, a proxy that buffered the request, a database lock) while a later
/// `Order/search` reaches a healthy worker and answers at once. When the gateway wakes it
/// executes the queued place. So "not found" proves the order was never placed only once no
/// queued copy can still run: we take only a search *sent* this long after the place call gave
/// up. This is an assumption, not a documented bound: HTTP front proxies commonly give up on a
/// request after about 100 s, and we assume a request queued behind one does not run later than
/// two minutes. Waiting costs little: until then the order counts as working for the risk guard,
/// which errs toward refusing an order, never toward a doubled position.
pub const NOT_PLACED_GRACE: Duration = Duration::from_secs(120);

/// Lookups of an unknown order: soon, then backing off to one every 15 s while the gateway does
/// not answer (each lookup also waits its turn in the REST budget).
const LOOKUP_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(15),
    jitter: 0.2,
};

/// The least time between two account snapshots (three REST calls each).
pub const RECONCILE_SPACING: Duration = Duration::from_secs(1);

/// Coalesces snapshot requests (see [`Core::reconcile`]).
#[derive(Debug, Default)]
pub struct ReconcileThrottle {
    last: Option<Instant>,
    due: bool,
}

/// One lookup of an order whose place outcome is unknown.
#[derive(Debug)]
pub struct Lookup {
    pub local_id: u64,
    pub attempt: u32,
    /// When the search was sent.
    pub asked_at: Instant,
    /// The order if the search found it; the error if the search itself failed.
    pub result: Result<Option<Order>, GatewayError>,
}

/// What one lookup settles.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Found(Box<Order>),
    /// A search that succeeded, sent after the grace period, did not find it.
    NotPlaced,
    /// Still unknown: look again later.
    Retry,
}

/// The verdict of a lookup of an order unknown since `unknown_since`.
pub fn verdict(lookup: Lookup, unknown_since: Instant, grace: Duration) -> Verdict {
    match lookup.result {
        Ok(Some(order)) => Verdict::Found(Box::new(order)),
        Ok(None) if lookup.asked_at >= unknown_since + grace => Verdict::NotPlaced,
        Ok(None) | Err(_) => Verdict::Retry,
    }
}

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
        spawn_lookup(
            self.client.clone(),
            self.tx.clone(),
            self.account.id,
            (local_id, attempt),
            o.custom_tag.clone(),
            o.sent_at,
            delay,
        );
    }

    /// An order stays `unknown` until a lookup finds it, the user hub reports it, or a search
    /// that succeeded after [`NOT_PLACED_GRACE`] does not find it. A failed lookup never
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
        calls::spawn_snapshot(self.client.clone(), self.tx.clone(), self.account.id, since);
    }

    /// Fills the hub reported before their order was known as ours, now attributed.
    pub(super) fn attribute_late_fills(&mut self) {
        for fill in self.book.attribute_late_fills() {
            self.emit_fill(&fill);
            self.after_fill(&fill);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(asked_at: Instant, result: Result<Option<Order>, GatewayError>) -> Lookup {
        Lookup {
            local_id: 1,
            attempt: 0,
            asked_at,
            result,
        }
    }

    #[test]
    fn only_a_successful_search_after_the_grace_period_says_not_placed() {
        let since = Instant::now();
        let grace = Duration::from_secs(60);
        let failed = || {
            Err(GatewayError::Transport {
                endpoint: crate::gateway::Endpoint::OrderSearch,
                reason: "timed out".into(),
            })
        };
        assert_eq!(
            verdict(lookup(since, failed()), since, grace),
            Verdict::Retry
        );
        assert_eq!(
            verdict(lookup(since + grace * 10, failed()), since, grace),
            Verdict::Retry,
            "a failed lookup never settles, however late"
        );
        assert_eq!(
            verdict(lookup(since + grace / 2, Ok(None)), since, grace),
            Verdict::Retry,
            "a queued place may still run"
        );
        assert_eq!(
            verdict(lookup(since + grace, Ok(None)), since, grace),
            Verdict::NotPlaced
        );
    }

    #[test]
    fn lookups_back_off_to_a_cap() {
        assert!(LOOKUP_BACKOFF.delay(0, 0.0) <= Duration::from_millis(500));
        assert_eq!(LOOKUP_BACKOFF.delay(30, 0.0), Duration::from_secs(15));
    }
}
