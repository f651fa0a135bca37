//! The strategies' side of the engine: every `bot.*` call becomes an [`Input::Bot`] to the
//! engine loop and waits for its answer, so the loop stays the one owner of the trading state
//! and the risk guard answers each order synchronously.

use tokio::sync::{mpsc, oneshot};

use super::input::Input;
use crate::script::{BotCall, BotReply, Broker, Refusal};

/// The [`Broker`] the strategy host calls. Strategy threads are plain OS threads, so blocking
/// on the answer is safe there (and never happens on a runtime thread).
#[derive(Debug, Clone)]
pub struct EngineBroker {
    tx: mpsc::Sender<Input>,
}

impl EngineBroker {
    pub(crate) fn new(tx: mpsc::Sender<Input>) -> Self {
        Self { tx }
    }
}

impl Broker for EngineBroker {
    fn answer(&self, strategy: &str, call: BotCall) -> BotReply {
        let (reply, answer) = oneshot::channel();
        // A strategy thread is a plain OS thread, so it may block: on a full queue it waits for
        // room (backpressure on a strategy that calls faster than the loop answers).
        let sent = self.tx.blocking_send(Input::Bot {
            strategy: strategy.to_owned(),
            call,
            reply,
        });
        match sent.ok().and_then(|()| answer.blocking_recv().ok()) {
            Some(r) => r,
            None => BotReply::Refused(Refusal::new("the engine is stopping")),
        }
    }
}
