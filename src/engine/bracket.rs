//! A bracket's children as the gateway last reported them: which leg is which, each leg's
//! state, and whether the pair protects its position.

use crate::gateway::wire::{OrderSide, OrderStatus};

/// Which bracket child a leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegKind {
    StopLoss,
    TakeProfit,
}

impl LegKind {
    /// The `kind` strategies and `/status` see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StopLoss => "stop_loss",
            Self::TakeProfit => "take_profit",
        }
    }
}

/// One bracket child as the gateway last reported it. The gateway creates it with the entry;
/// it is the strategy's order as much as the entry is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leg {
    /// A local id of its own, so `bot.orders()` and `/status` can list it.
    pub local_id: u64,
    pub broker_id: i64,
    pub status: OrderStatus,
    pub side: OrderSide,
    pub size: i32,
    /// The stop price of a stop loss, the limit price of a take profit.
    pub price: Option<f64>,
    /// A cancel was sent: it is not sent again (unless it fails while the leg still works).
    pub cancel_sent: bool,
    /// A cancel that failed while the leg was still working, to be sent again.
    pub cancel_retry: Option<CancelRetry>,
    /// Cancels of this leg that failed in a row.
    pub cancel_failures: u32,
}

/// When a failed leg cancel is sent again ([`super::leg_cancels`]): not before `at_ms` (engine
/// clock), and, after an unknown outcome, not before a reconcile has shown the leg still
/// working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelRetry {
    pub at_ms: i64,
    pub awaiting_snapshot: bool,
}

impl Leg {
    pub fn is_working(&self) -> bool {
        !self.status.is_terminal()
    }
}

/// A bracket's children, known once the user hub reports them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bracket {
    pub stop_loss: Option<Leg>,
    pub take_profit: Option<Leg>,
}

impl Bracket {
    /// A position counts as protected only once both children are confirmed working.
    pub fn protects(&self) -> bool {
        let open = |l: Option<Leg>| l.is_some_and(|l| l.status == OrderStatus::Open);
        open(self.stop_loss) && open(self.take_profit)
    }

    /// Both legs, with their kind.
    pub fn legs(&self) -> impl Iterator<Item = (LegKind, &Leg)> {
        let sl = self.stop_loss.as_ref().map(|l| (LegKind::StopLoss, l));
        let tp = self.take_profit.as_ref().map(|l| (LegKind::TakeProfit, l));
        sl.into_iter().chain(tp)
    }
}
