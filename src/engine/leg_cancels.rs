//! Bracket-leg cancels that failed. A leg must not outlive the position it protected (it could
//! fill and open a new one), so a cancel that failed while the leg still works is sent again,
//! after a backoff, and when the outcome was unknown only once a reconcile has shown the leg
//! still working (never blindly). A cancel refused because the leg had closed meanwhile
//! (filled, or cancelled by the gateway's OCO) is no alarm.

use super::bracket::CancelRetry;
use super::core::Core;
use super::input::Mutation;
use crate::gateway::GatewayError;

/// The first wait before a failed leg cancel is sent again; it doubles with every failure in
/// a row, up to [`MAX_RETRY_MS`].
const FIRST_RETRY_MS: i64 = 1_000;
const MAX_RETRY_MS: i64 = 30_000;
/// Failures in a row after which each one is logged as an error: the leg is still live at
/// the broker with nothing to protect.
const ALARM_AFTER: u32 = 3;

impl Core {
    /// A cancel, modify or close came back.
    pub(super) fn on_mutated(&mut self, what: Mutation, result: Result<(), GatewayError>) {
        let e = match result {
            Ok(()) => {
                tracing::info!("{what}: done");
                return;
            }
            Err(e) => e,
        };
        let unknown = e.is_outcome_unknown();
        let now = self.now_ms();
        let leg = match what {
            Mutation::Cancel(id) => self.book.leg_mut(id),
            _ => None,
        };
        match leg {
            Some(leg) if !leg.is_working() => {
                tracing::info!("{what}: the leg had already closed ({e})");
                return;
            }
            Some(leg) => {
                leg.cancel_failures += 1;
                leg.cancel_sent = false;
                let n = leg.cancel_failures;
                let wait = retry_wait_ms(n);
                leg.cancel_retry = Some(CancelRetry {
                    at_ms: now + wait,
                    awaiting_snapshot: unknown,
                });
                let when = format!(
                    "in {} s{}",
                    wait / 1000,
                    if unknown { ", once reconciled" } else { "" }
                );
                if n > ALARM_AFTER {
                    tracing::error!(
                        "{what}: {e}; failed {n} times in a row, the leg is still working at the \
                         broker: cancelling it again {when}"
                    );
                } else {
                    tracing::warn!(
                        "{what}: {e}; the leg is still working: cancelling it again {when}"
                    );
                }
            }
            None => tracing::warn!("{what}: {e}"),
        }
        // A refused cancel of an order we think is working, or an unknown outcome: our view
        // may be stale, and the snapshot settles it.
        if unknown || matches!(what, Mutation::Cancel(_)) {
            self.reconcile();
        }
    }

    /// Sends the leg cancels whose retry is due (on the tick, and after a snapshot:
    /// `reconciled`).
    pub(super) fn resend_leg_cancels(&mut self, reconciled: bool) {
        let now = self.now_ms();
        for id in self.book.take_leg_cancel_retries(now, reconciled) {
            tracing::info!("cancelling bracket leg {id} again");
            self.send_cancel(id);
        }
    }
}

/// The wait before the `failures`-th resend of a leg cancel.
fn retry_wait_ms(failures: u32) -> i64 {
    (FIRST_RETRY_MS << failures.saturating_sub(1).min(5)).min(MAX_RETRY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_a_second_up_to_thirty() {
        let waits: Vec<i64> = (1..=8).map(retry_wait_ms).collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
    }
}
