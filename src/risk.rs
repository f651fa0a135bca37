//! The risk guard: global and per-strategy limits, the order-rate budget, the daily loss limit
//! (persisted, so a restart does not reset it) and the kill switch. Approval is a type: only a
//! [`RiskApproved`] order can be handed to the gateway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::RiskLimits;
use crate::gateway::budget::SlidingWindow;

/// A strategy's own `limits`: each can only tighten the global one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StrategyLimits {
    pub max_order_size: Option<u32>,
    pub max_position: Option<u32>,
}

/// An order the risk guard is asked about. `side` is +1 for a buy, -1 for a sell.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedOrder<T> {
    pub strategy: String,
    pub contract_id: String,
    pub side: i32,
    pub size: u32,
    /// What is sent once approved (the gateway request, or the engine's own order record).
    pub payload: T,
}

/// Contracts already held or committed, as the engine's state knows them, for one contract.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Exposure {
    /// Signed net position of the account.
    pub account_position: i32,
    /// Contracts in the account's working buy and sell orders.
    pub account_working_buy: u32,
    pub account_working_sell: u32,
    /// The same for the asking strategy's own orders and fills.
    pub strategy_position: i32,
    pub strategy_working_buy: u32,
    pub strategy_working_sell: u32,
}

/// An order that passed every check. It cannot be built outside this module.
#[derive(Debug)]
pub struct RiskApproved<T>(ProposedOrder<T>);

impl<T> RiskApproved<T> {
    pub fn order(&self) -> &ProposedOrder<T> {
        &self.0
    }

    pub fn into_inner(self) -> ProposedOrder<T> {
        self.0
    }
}

/// Which rule refused an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    Halted,
    OrderSize,
    Position,
    DailyLoss,
    OrderRate,
}

/// A refused order, with the reason the strategy gets back as `nil, reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct RiskRefused {
    pub kind: RefusalKind,
    pub reason: String,
}

fn refuse(kind: RefusalKind, reason: String) -> RiskRefused {
    RiskRefused { kind, reason }
}

/// What the guard keeps on disk between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Persisted {
    trading_day: Option<NaiveDate>,
    realized_pnl: f64,
    halted: Option<String>,
}

/// The futures trading day: CME sessions (and prop-firm daily limits) roll at 17:00 Chicago.
pub fn trading_day(at: DateTime<Utc>) -> NaiveDate {
    let chicago = at.with_timezone(&chrono_tz::America::Chicago);
    let day = chicago.date_naive();
    if chicago.time() >= chrono::NaiveTime::from_hms_opt(17, 0, 0).expect("valid time") {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    }
}

/// When the trading day that `at` falls in began (17:00 Chicago the evening before).
pub fn trading_day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::TimeZone;
    let day = trading_day(at).pred_opt().expect("a day before");
    let five_pm = day.and_hms_opt(17, 0, 0).expect("valid time");
    chrono_tz::America::Chicago
        .from_local_datetime(&five_pm)
        .earliest()
        .map_or(at - chrono::Duration::days(1), |t| t.with_timezone(&Utc))
}

/// The guard. Owned by the engine; every order intent passes through [`RiskGuard::check`].
#[derive(Debug)]
pub struct RiskGuard {
    limits: RiskLimits,
    orders: SlidingWindow,
    state: Persisted,
    path: Option<PathBuf>,
}

impl RiskGuard {
    /// A guard whose daily tally and halt live in `state_dir/risk.json` (created when needed).
    /// A tally or halt from an earlier trading day is discarded; today's are kept.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed: trading with a forgotten loss is
    /// worse than not starting.
    pub fn open(
        limits: RiskLimits,
        state_dir: Option<&Path>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let path = state_dir.map(|d| d.join("risk.json"));
        let state = match &path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("parsing {}: {e}", p.display()))?
            }
            _ => Persisted::default(),
        };
        let window = SlidingWindow::new(
            limits.max_orders_per_minute as usize,
            Duration::from_secs(60),
        );
        let mut guard = Self {
            limits,
            orders: window,
            state,
            path,
        };
        guard.roll(now);
        Ok(guard)
    }

    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    /// Why trading is halted, if it is.
    pub fn halted(&self) -> Option<&str> {
        self.state.halted.as_deref()
    }

    /// Realised P&L of the current trading day (after fees).
    pub fn realized_pnl(&self) -> f64 {
        self.state.realized_pnl
    }

    /// Checks one order against every rule, and counts it against the order rate when approved.
    ///
    /// # Errors
    /// The first rule the order breaks.
    pub fn check<T>(
        &mut self,
        order: ProposedOrder<T>,
        strategy: StrategyLimits,
        exposure: Exposure,
        open_pnl: f64,
        now: Instant,
    ) -> Result<RiskApproved<T>, RiskRefused> {
        if let Some(why) = &self.state.halted {
            return Err(refuse(
                RefusalKind::Halted,
                format!("trading is halted: {why}"),
            ));
        }
        let max_size = tighter(self.limits.max_order_size, strategy.max_order_size);
        if order.size == 0 || order.size > max_size {
            return Err(refuse(
                RefusalKind::OrderSize,
                format!(
                    "order size {} is outside 1..={max_size} (max order size)",
                    order.size
                ),
            ));
        }
        let size = order.size as i32;
        let worst = |position: i32, buys: u32, sells: u32| -> i32 {
            let (buys, sells) = (buys as i32, sells as i32);
            let long = position + buys + if order.side > 0 { size } else { 0 };
            let short = position - sells - if order.side < 0 { size } else { 0 };
            long.abs().max(short.abs())
        };
        let account_worst = worst(
            exposure.account_position,
            exposure.account_working_buy,
            exposure.account_working_sell,
        );
        if account_worst > self.limits.max_position as i32 {
            return Err(refuse(
                RefusalKind::Position,
                format!(
                    "would allow a position of {account_worst} in {} (max position {})",
                    order.contract_id, self.limits.max_position
                ),
            ));
        }
        if let Some(max) = strategy.max_position {
            let strategy_worst = worst(
                exposure.strategy_position,
                exposure.strategy_working_buy,
                exposure.strategy_working_sell,
            );
            if strategy_worst > max as i32 {
                return Err(refuse(
                    RefusalKind::Position,
                    format!(
                        "would allow {} a position of {strategy_worst} in {} (its max position {max})",
                        order.strategy, order.contract_id
                    ),
                ));
            }
        }
        let day_pnl = self.state.realized_pnl + open_pnl;
        if day_pnl <= -self.limits.daily_loss_limit {
            return Err(refuse(
                RefusalKind::DailyLoss,
                format!(
                    "daily loss {:.2} has reached the limit {:.2}",
                    -day_pnl, self.limits.daily_loss_limit
                ),
            ));
        }
        if let Err(wait) = self.orders.try_acquire(now) {
            return Err(refuse(
                RefusalKind::OrderRate,
                format!(
                    "order rate limit: {} orders per minute (next slot in {:.1}s)",
                    self.limits.max_orders_per_minute,
                    wait.as_secs_f64()
                ),
            ));
        }
        Ok(RiskApproved(order))
    }

    /// Approves an order that only brings a position towards flat (a flatten or a kill-switch
    /// exit): these must go through even when trading is halted or the loss limit is reached.
    ///
    /// # Errors
    /// When the order would open or grow a position instead.
    pub fn check_exit<T>(
        &self,
        order: ProposedOrder<T>,
        position: i32,
    ) -> Result<RiskApproved<T>, RiskRefused> {
        let reduces = position != 0
            && order.side == -position.signum()
            && order.size as i32 <= position.abs();
        if reduces {
            Ok(RiskApproved(order))
        } else {
            Err(refuse(
                RefusalKind::Position,
                format!(
                    "an exit of {} against a position of {position} would not reduce it",
                    order.size
                ),
            ))
        }
    }

    /// Adds a closing fill's P&L (fees already taken off) to the day, rolling the day over when
    /// a new one has begun.
    ///
    /// # Errors
    /// When the tally cannot be saved.
    pub fn record_realized(&mut self, pnl: f64, at: DateTime<Utc>) -> anyhow::Result<()> {
        self.roll(at);
        self.state.realized_pnl += pnl;
        self.save()
    }

    /// Replaces the day's tally with the gateway's own account of it (`Trade/search` since the
    /// start of the trading day), which is authoritative after a restart.
    ///
    /// # Errors
    /// When the tally cannot be saved.
    pub fn set_realized(&mut self, pnl: f64, at: DateTime<Utc>) -> anyhow::Result<()> {
        self.roll(at);
        self.state.realized_pnl = pnl;
        self.save()
    }

    /// True once realised plus open P&L has reached the daily loss limit: the engine must halt
    /// and flatten.
    pub fn loss_limit_reached(&self, open_pnl: f64) -> bool {
        self.state.realized_pnl + open_pnl <= -self.limits.daily_loss_limit
    }

    /// The kill switch: refuses every new order until [`RiskGuard::resume`].
    ///
    /// # Errors
    /// When the halt cannot be saved (it is in force regardless).
    pub fn halt(&mut self, reason: &str) -> anyhow::Result<()> {
        if self.state.halted.is_none() {
            tracing::error!("trading halted: {reason}");
            self.state.halted = Some(reason.to_string());
        }
        self.save()
    }

    /// Lifts a halt (an operator's decision, never a strategy's).
    ///
    /// # Errors
    /// When the state cannot be saved.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        self.state.halted = None;
        self.save()
    }

    /// A new trading day starts with a clean tally and no halt, as the firms' daily limits do.
    fn roll(&mut self, at: DateTime<Utc>) {
        let today = trading_day(at);
        if self.state.trading_day != Some(today) {
            if let Some(why) = self.state.halted.take() {
                tracing::warn!("new trading day {today}: lifting yesterday's halt ({why})");
            }
            self.state.trading_day = Some(today);
            self.state.realized_pnl = 0.0;
        }
    }

    fn save(&self) -> anyhow::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Write-then-rename, so a crash mid-write never leaves a torn file that blocks start-up.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.state)?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

fn tighter(global: u32, strategy: Option<u32>) -> u32 {
    strategy.map_or(global, |s| s.min(global))
}

#[cfg(test)]
#[path = "risk_tests.rs"]
mod tests;
