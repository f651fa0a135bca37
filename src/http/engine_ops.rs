//! [`Ops`] for the running engine: readiness and `/status` from the engine's published
//! snapshot and the session's token, the kill switch as a command to the loop.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::ops::Ops;
use crate::engine::{Engine, EngineStatus, Halter};
use crate::gateway::Session;

/// Answers from snapshots only, so a slow engine never stalls `/readyz`.
pub struct EngineOps {
    status: watch::Receiver<EngineStatus>,
    halter: Halter,
    session: Arc<Session>,
    account_id: i32,
    simulated: bool,
}

impl EngineOps {
    pub fn new(engine: &Engine, session: Arc<Session>, account_id: i32, simulated: bool) -> Self {
        Self {
            status: engine.status(),
            halter: engine.halter(),
            session,
            account_id,
            simulated,
        }
    }
}

impl Ops for EngineOps {
    fn readiness(&self) -> Result<(), String> {
        match self.session.expires_at() {
            Some(t) if t > Utc::now() => {}
            Some(_) => return Err("the session token has expired".into()),
            None => return Err("no session token yet".into()),
        }
        self.status.borrow().readiness()
    }

    fn status(&self) -> Value {
        let s = self.status.borrow().clone();
        json!({
            "connections": {
                "gateway": if self.simulated { "simulator" } else { "live" },
                "market_hub": s.market_hub.label(),
                "user_hub": s.user_hub.label(),
                "token_expires": self.session.expires_at().map(|t| t.to_rfc3339()),
            },
            "account": self.account_id,
            "risk": {
                "halted": s.halted,
                "realized_pnl": s.realized_pnl,
                "open_pnl": s.open_pnl,
            },
            "symbols_pending": s.symbols_pending,
            "positions": s.positions,
            "open_orders": s.open_orders,
        })
    }

    fn halt(&self, reason: &str) -> Result<(), String> {
        self.halter.halt(reason)
    }

    fn resume(&self) -> Result<(), String> {
        self.halter.resume()
    }
}
