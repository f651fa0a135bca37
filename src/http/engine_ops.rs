//! [`Ops`] for the running engine: readiness and `/status` from the engine's published
//! snapshot and the session's token, the kill switch and "flatten all" as commands to the loop.

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
        let mut v = engine_status_json(&s, self.account_id);
        v["connections"] = json!({
            "gateway": if self.simulated { "simulator" } else { "live" },
            "market_hub": s.market_hub.label(),
            "user_hub": s.user_hub.label(),
            "token_expires": self.session.expires_at().map(|t| t.to_rfc3339()),
        });
        v["now_ms"] = json!(Utc::now().timestamp_millis());
        v
    }

    fn halt(&self, reason: &str) -> Result<(), String> {
        self.halter.halt(reason)
    }

    fn resume(&self) -> Result<(), String> {
        self.halter.resume()
    }

    fn flatten_all(&self) -> Result<(), String> {
        self.halter.flatten_all()
    }
}

/// The engine's part of `/status` (account, risk, positions, orders, fills, equity), without
/// the connections and the clock, which whoever runs the engine adds (a replay says so there).
pub fn engine_status_json(s: &EngineStatus, account_id: i32) -> Value {
    json!({
        "account": account_id,
        "account_balance": s.balance,
        "risk": {
            "halted": s.halted,
            "realized_pnl": s.realized_pnl,
            "open_pnl": s.open_pnl,
            "daily_loss_limit": s.daily_loss_limit,
            "loss_limit_used": loss_limit_used(s.realized_pnl + s.open_pnl, s.daily_loss_limit),
        },
        "symbols_pending": s.symbols_pending,
        "positions": s.positions,
        "open_orders": s.open_orders,
        "strategy_pnl": s.strategy_pnl,
        "quotes": s.quotes,
        "fills": s.fills,
        "equity": s.equity,
    })
}

/// The share of the daily loss limit the day's P&L has used: 0 when the day is not losing,
/// 1 at the limit (a limit of 0 or less counts as unlimited).
fn loss_limit_used(day_pnl: f64, limit: f64) -> f64 {
    if limit <= 0.0 || day_pnl >= 0.0 {
        return 0.0;
    }
    ((-day_pnl / limit) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn loss_limit_used_is_the_share_of_the_limit_lost() {
        assert_eq!(super::loss_limit_used(50.0, 500.0), 0.0);
        assert_eq!(super::loss_limit_used(-125.0, 500.0), 0.25);
        assert_eq!(super::loss_limit_used(-600.0, 500.0), 1.2);
        assert_eq!(super::loss_limit_used(-600.0, 0.0), 0.0);
    }
}
