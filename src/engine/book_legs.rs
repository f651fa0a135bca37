//! Bracket legs in the book: the stop loss and take profit the gateway creates with an entry,
//! each given a local id of its own as the user hub reports it, and which of them are still to
//! be cancelled. The leg types themselves are in [`bracket`](super::super::bracket).

use super::super::bracket::{Bracket, Leg, LegKind};
use super::{Book, Changed, LocalOrder};
use crate::gateway::wire::{Order, OrderType as WireOrderType};

impl Book {
    pub(super) fn apply_child(&mut self, parent_id: u64, order: &Order) -> Option<Changed> {
        let tag = order.custom_tag.as_deref().unwrap_or("");
        let is_stop = tag.ends_with("-SL")
            || (!tag.ends_with("-TP")
                && matches!(
                    order.order_type,
                    WireOrderType::Stop | WireOrderType::TrailingStop
                ));
        let next_local = self.next_local;
        let p = self.orders.get_mut(&parent_id)?;
        let bracket = p.bracket.get_or_insert_with(Bracket::default);
        let slot = if is_stop {
            &mut bracket.stop_loss
        } else {
            &mut bracket.take_profit
        };
        let before = *slot;
        let (local_id, cancel_sent, cancel_retry, cancel_failures) = match before {
            Some(l) if l.broker_id == order.id => {
                (l.local_id, l.cancel_sent, l.cancel_retry, l.cancel_failures)
            }
            _ => (next_local, false, None, 0),
        };
        let price = if is_stop {
            order.stop_price.or(order.trail_price)
        } else {
            order.limit_price
        };
        *slot = Some(Leg {
            local_id,
            broker_id: order.id,
            status: order.status,
            side: order.side,
            size: order.size,
            price,
            cancel_sent,
            cancel_retry,
            cancel_failures,
        });
        if local_id == next_local {
            self.next_local += 1;
        }
        (before != *slot).then_some(Changed::Bracket(parent_id))
    }

    /// Every bracket leg the book knows, with its entry.
    pub fn legs(&self) -> impl Iterator<Item = (&LocalOrder, LegKind, &Leg)> {
        self.orders.values().flat_map(|o| {
            o.bracket
                .iter()
                .flat_map(Bracket::legs)
                .map(move |(k, l)| (o, k, l))
        })
    }

    /// Broker ids of a strategy's working bracket legs (on one contract or all; `None` for
    /// every strategy) not yet asked to cancel, leaving out the legs of the entry `keep`. Marks
    /// them as cancel sent: the caller sends the cancels.
    pub fn take_legs_to_cancel(
        &mut self,
        strategy: Option<&str>,
        contract: Option<&str>,
        keep: Option<u64>,
    ) -> Vec<i64> {
        let mut ids = Vec::new();
        for o in self.orders.values_mut() {
            if strategy.is_some_and(|s| s != o.strategy)
                || contract.is_some_and(|c| c != &*o.contract.id)
                || keep == Some(o.local_id)
            {
                continue;
            }
            let Some(b) = o.bracket.as_mut() else {
                continue;
            };
            for leg in [&mut b.stop_loss, &mut b.take_profit].into_iter().flatten() {
                if leg.is_working() && !leg.cancel_sent {
                    leg.cancel_sent = true;
                    ids.push(leg.broker_id);
                }
            }
        }
        ids.sort_unstable();
        ids
    }

    /// Broker ids of one entry's working legs not yet asked to cancel, marked as cancel sent.
    pub fn take_legs_of(&mut self, parent: u64) -> Vec<i64> {
        let Some(b) = self
            .orders
            .get_mut(&parent)
            .and_then(|o| o.bracket.as_mut())
        else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for leg in [&mut b.stop_loss, &mut b.take_profit].into_iter().flatten() {
            if leg.is_working() && !leg.cancel_sent {
                leg.cancel_sent = true;
                ids.push(leg.broker_id);
            }
        }
        ids
    }

    /// Marks a strategy's entries on a contract so that legs the gateway reports later are
    /// cancelled on sight (a flatten raced the bracket's creation).
    pub fn mark_legs_unwanted(&mut self, strategy: &str, contract: &str) {
        for o in self
            .orders
            .values_mut()
            .filter(|o| o.strategy == strategy && &*o.contract.id == contract)
        {
            if o.bracket.is_some() {
                o.legs_unwanted = true;
            }
        }
    }

    /// The working leg with this broker id.
    pub fn leg_mut(&mut self, broker_id: i64) -> Option<&mut Leg> {
        let parent = *self.child_of.get(&broker_id)?;
        let b = self.orders.get_mut(&parent)?.bracket.as_mut()?;
        [&mut b.stop_loss, &mut b.take_profit]
            .into_iter()
            .flatten()
            .find(|l| l.broker_id == broker_id)
    }

    /// Broker ids of the legs whose failed cancel is due to be sent again (see
    /// `CancelRetry`; `reconciled`: a snapshot was just applied). Marked as cancel sent; a
    /// leg that closed meanwhile is dropped from the retries.
    pub fn take_leg_cancel_retries(&mut self, now_ms: i64, reconciled: bool) -> Vec<i64> {
        let mut ids = Vec::new();
        for o in self.orders.values_mut() {
            let Some(b) = o.bracket.as_mut() else {
                continue;
            };
            for leg in [&mut b.stop_loss, &mut b.take_profit].into_iter().flatten() {
                let Some(retry) = leg.cancel_retry.as_mut() else {
                    continue;
                };
                if reconciled {
                    retry.awaiting_snapshot = false;
                }
                let due = !retry.awaiting_snapshot && retry.at_ms <= now_ms;
                if !leg.is_working() {
                    leg.cancel_retry = None;
                } else if due {
                    leg.cancel_retry = None;
                    leg.cancel_sent = true;
                    ids.push(leg.broker_id);
                }
            }
        }
        ids.sort_unstable();
        ids
    }
}
