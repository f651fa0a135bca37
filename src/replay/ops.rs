//! [`Ops`] for a replay: `/status` and the dashboard read the stepped engine's published status,
//! marked `"mode": "replay"` everywhere a trader looks (connections, a `replay` object, the
//! replay clock as `now_ms`); the kill switch, resume and flatten act on the replayed engine.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::shared::Shared;
use crate::engine::{EngineStatus, Halter};
use crate::http::{Ops, engine_status_json};

pub(super) struct ReplayOps {
    pub(super) status: watch::Receiver<EngineStatus>,
    pub(super) halter: Halter,
    pub(super) shared: Arc<Shared>,
}

impl ReplayOps {
    fn ended(&self) -> Result<(), String> {
        if self.shared.finished.load(Ordering::Relaxed) {
            Err("the replay has ended".into())
        } else {
            Ok(())
        }
    }
}

impl Ops for ReplayOps {
    fn readiness(&self) -> Result<(), String> {
        self.ended()?;
        if self.status.borrow().strategies_loaded {
            Ok(())
        } else {
            Err("strategies are still loading".into())
        }
    }

    fn status(&self) -> Value {
        let s = self.status.borrow().clone();
        let mut v = engine_status_json(&s, crate::backtest::ACCOUNT_ID);
        let clock = self.shared.clock_ms.load(Ordering::Relaxed);
        v["mode"] = json!("replay");
        v["replay"] = json!({
            "data": self.shared.data,
            "speed": self.shared.speed.to_string(),
            "clock_ms": clock,
            "finished": self.shared.finished.load(Ordering::Relaxed),
        });
        // Where live shows its gateway and hubs: nothing here talks to one.
        v["connections"] = json!({
            "gateway": "replay (simulated exchange)",
            "market_hub": "replay",
            "user_hub": "replay",
            "token_expires": null,
        });
        v["now_ms"] = json!(clock);
        v
    }

    fn halt(&self, reason: &str) -> Result<(), String> {
        self.ended()?;
        self.halter.halt(reason)
    }

    fn resume(&self) -> Result<(), String> {
        self.ended()?;
        self.halter.resume()
    }

    fn flatten_all(&self) -> Result<(), String> {
        self.ended()?;
        self.halter.flatten_all()
    }
}
