//! The loop's input queue: everything it receives besides hub events (strategies' calls, REST
//! outcomes, commands), its bound, and how synchronous code sends into it.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::book::ContractInfo;
use super::reconcile_rules::Lookup;
use crate::gateway::GatewayError;
use crate::gateway::wire::{Order, Position, Trade};
use crate::script::{BotCall, BotReply, Host, StrategyStatus};

/// Everything the loop receives besides hub events.
pub(crate) enum Input {
    /// A strategy's `bot.*` call, answered on `reply`.
    Bot {
        strategy: String,
        call: BotCall,
        reply: oneshot::Sender<BotReply>,
    },
    HostReady(Arc<Host>),
    Resolved(Vec<ContractInfo>),
    ResolveFailed(String),
    Placed {
        local_id: u64,
        result: Result<i64, GatewayError>,
    },
    /// An unknown-outcome place was looked for at the broker (see [`reconcile`](super::reconcile)).
    PlaceLookedUp(Lookup),
    /// A cancel/modify/close came back; an unknown outcome triggers a reconcile.
    Mutated {
        what: Mutation,
        result: Result<(), GatewayError>,
    },
    Snapshot {
        orders: Vec<Order>,
        positions: Vec<Position>,
        trades: Vec<Trade>,
    },
    /// A bar series' history came back (see [`bars`](super::bars)).
    Backfilled {
        contract: Arc<str>,
        timeframe: crate::bars::Timeframe,
        /// Which wait of the series asked for it.
        epoch: u64,
        result: Result<Vec<crate::bars::Bar>, String>,
    },
    Halt(String),
    Resume,
    /// The operator's "flatten all": every working order cancelled, every position closed,
    /// without halting.
    FlattenAll,
    Shutdown(oneshot::Sender<Vec<StrategyStatus>>),
    HostStopped(Vec<StrategyStatus>, oneshot::Sender<Vec<StrategyStatus>>),
}

/// How many inputs may wait for the loop. Every sender waits for room instead of growing the
/// queue: strategy threads block (each has at most one call outstanding anyway), REST tasks
/// await, and the loop itself never sends to its own queue, so waiting cannot deadlock.
pub(super) const INPUT_CAPACITY: usize = 1024;

/// Sends from synchronous code that may run on the runtime (the HTTP server's halt): at once
/// when there is room, else from a task, so a full queue delays a halt but never drops it.
pub(super) fn send_from_sync(tx: &mpsc::Sender<Input>, input: Input) -> Result<(), String> {
    let stopped = || "the engine has stopped".to_string();
    match tx.try_send(input) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(stopped()),
        Err(mpsc::error::TrySendError::Full(input)) => {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let tx = tx.clone();
                    runtime.spawn(async move {
                        let _ = tx.send(input).await;
                    });
                    Ok(())
                }
                Err(_) => tx.blocking_send(input).map_err(|_| stopped()),
            }
        }
    }
}

/// A cancel, modify or close sent to the exchange, named in its outcome.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mutation {
    /// A cancel of the order with this broker id.
    Cancel(i64),
    /// A modify of the order with this broker id.
    Modify(i64),
    /// A close of the position on this contract.
    Close(String),
}

impl std::fmt::Display for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cancel(id) => write!(f, "cancel of order {id}"),
            Self::Modify(id) => write!(f, "modify of order {id}"),
            Self::Close(contract) => write!(f, "close of {contract}"),
        }
    }
}
