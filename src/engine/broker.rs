//! The strategies' side of the engine: every `bot.*` call becomes a request to the engine loop
//! and waits for its answer, so the loop stays the one owner of the trading state and the risk
//! guard answers each order synchronously.

use tokio::sync::{mpsc, oneshot};

use super::Input;
use crate::script::{
    AccountView, Broker, OrderChange, OrderHandle, OrderIntent, OrderView, PositionView, Quote,
    Refusal,
};

/// A `bot.*` call, as the engine loop receives it.
#[derive(Debug)]
pub enum Request {
    Submit {
        strategy: String,
        intent: OrderIntent,
    },
    Cancel {
        strategy: String,
        id: u64,
    },
    Modify {
        strategy: String,
        id: u64,
        change: OrderChange,
    },
    Flatten {
        strategy: String,
        symbol: Option<String>,
    },
    FlattenAll {
        strategy: String,
    },
    Halt {
        strategy: String,
        reason: String,
    },
    Position {
        strategy: String,
        symbol: String,
    },
    Orders {
        strategy: String,
        symbol: Option<String>,
    },
    Quote {
        symbol: String,
    },
    Account,
}

/// The engine loop's answer.
#[derive(Debug)]
pub enum Reply {
    Handle(Result<OrderHandle, Refusal>),
    Done(Result<(), Refusal>),
    Position(PositionView),
    Orders(Vec<OrderView>),
    Quote(Option<Quote>),
    Account(Option<AccountView>),
}

/// The [`Broker`] the strategy host calls. Strategy threads are plain OS threads, so blocking
/// on the answer is safe there (and never happens on a runtime thread).
#[derive(Debug, Clone)]
pub struct EngineBroker {
    tx: mpsc::UnboundedSender<Input>,
}

impl EngineBroker {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Input>) -> Self {
        Self { tx }
    }

    fn ask(&self, request: Request) -> Option<Reply> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Input::Request(request, reply)).ok()?;
        answer.blocking_recv().ok()
    }
}

fn stopped() -> Refusal {
    Refusal::new("the engine is stopping")
}

impl Broker for EngineBroker {
    fn submit(&self, strategy: &str, intent: OrderIntent) -> Result<OrderHandle, Refusal> {
        match self.ask(Request::Submit {
            strategy: strategy.into(),
            intent,
        }) {
            Some(Reply::Handle(r)) => r,
            _ => Err(stopped()),
        }
    }

    fn cancel(&self, strategy: &str, id: u64) -> Result<(), Refusal> {
        match self.ask(Request::Cancel {
            strategy: strategy.into(),
            id,
        }) {
            Some(Reply::Done(r)) => r,
            _ => Err(stopped()),
        }
    }

    fn modify(&self, strategy: &str, id: u64, change: OrderChange) -> Result<(), Refusal> {
        match self.ask(Request::Modify {
            strategy: strategy.into(),
            id,
            change,
        }) {
            Some(Reply::Done(r)) => r,
            _ => Err(stopped()),
        }
    }

    fn flatten(&self, strategy: &str, symbol: Option<&str>) -> Result<(), Refusal> {
        let request = Request::Flatten {
            strategy: strategy.into(),
            symbol: symbol.map(str::to_string),
        };
        match self.ask(request) {
            Some(Reply::Done(r)) => r,
            _ => Err(stopped()),
        }
    }

    fn flatten_all(&self, strategy: &str) -> Result<(), Refusal> {
        match self.ask(Request::FlattenAll {
            strategy: strategy.into(),
        }) {
            Some(Reply::Done(r)) => r,
            _ => Err(stopped()),
        }
    }

    fn halt(&self, strategy: &str, reason: &str) {
        let _ = self.ask(Request::Halt {
            strategy: strategy.into(),
            reason: reason.into(),
        });
    }

    fn position(&self, strategy: &str, symbol: &str) -> PositionView {
        match self.ask(Request::Position {
            strategy: strategy.into(),
            symbol: symbol.into(),
        }) {
            Some(Reply::Position(p)) => p,
            _ => PositionView::default(),
        }
    }

    fn orders(&self, strategy: &str, symbol: Option<&str>) -> Vec<OrderView> {
        match self.ask(Request::Orders {
            strategy: strategy.into(),
            symbol: symbol.map(str::to_string),
        }) {
            Some(Reply::Orders(o)) => o,
            _ => Vec::new(),
        }
    }

    fn quote(&self, symbol: &str) -> Option<Quote> {
        match self.ask(Request::Quote {
            symbol: symbol.into(),
        }) {
            Some(Reply::Quote(q)) => q,
            _ => None,
        }
    }

    fn account(&self) -> Option<AccountView> {
        match self.ask(Request::Account) {
            Some(Reply::Account(a)) => a,
            _ => None,
        }
    }
}
