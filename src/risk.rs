//! The risk guard: global and per-strategy limits, the order-rate budget, the daily loss limit
//! (persisted, so a restart does not reset it) and the kill switch. Approval is a type: only a
//! [`RiskApproved`] order can be handed to the gateway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::cme::trading_day;
use crate::market::Side;
use crate::money::Money;
use crate::rate::SlidingWindow;

/// The global risk limits; a strategy's own `limits` may only tighten them.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskLimits {
    /// Largest size of one order, in contracts.
    pub max_order_size: u32,
    /// Largest net position per contract, in contracts.
    pub max_position: u32,
    /// Realised plus open loss for the day, in dollars, at which trading halts and flattens.
    pub daily_loss_limit: f64,
    /// Orders sent per rolling minute, across all strategies.
    pub max_orders_per_minute: u32,
}

/// A strategy's own `limits`: each can only tighten the global one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StrategyLimits {
    pub max_order_size: Option<u32>,
    pub max_position: Option<u32>,
}

/// An order the risk guard is asked about: the fields it checks, and what is sent once it is
/// approved. For a modify, `size` is the growth (0 for a new price or a smaller size).
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedOrder<T> {
    pub strategy: String,
    pub contract_id: String,
    pub side: Side,
    pub size: u32,
    /// What is sent once approved: the details the guard does not judge (order type, prices,
    /// tag, brackets), or the engine's own order record until it has them.
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

/// An order (or a change to one) that passed every check. It cannot be built outside this
/// module, and the gateway client places and modifies nothing else.
///
/// The checked fields (strategy, contract, side, size) are fixed once approved; only the
/// payload can be turned into what the wire needs ([`RiskApproved::map`]).
#[derive(Debug)]
pub struct RiskApproved<T>(ProposedOrder<T>);

impl<T> RiskApproved<T> {
    pub fn order(&self) -> &ProposedOrder<T> {
        &self.0
    }

    pub fn contract_id(&self) -> &str {
        &self.0.contract_id
    }

    pub fn side(&self) -> Side {
        self.0.side
    }

    /// The approved size (for a modify: the approved growth).
    pub fn size(&self) -> u32 {
        self.0.size
    }

    pub fn payload(&self) -> &T {
        &self.0.payload
    }

    /// The same approval over a new payload (e.g. the engine's order record turned into the
    /// gateway's request once the order has a local id and tag). The checked fields stay.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> RiskApproved<U> {
        let ProposedOrder {
            strategy,
            contract_id,
            side,
            size,
            payload,
        } = self.0;
        RiskApproved(ProposedOrder {
            strategy,
            contract_id,
            side,
            size,
            payload: f(payload),
        })
    }
}

/// Which rule refused an order, for counting by rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    Halted,
    OrderSize,
    Position,
    DailyLoss,
    OrderRate,
}

/// A refused order. Its text is what the strategy gets back as `nil, reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RiskRefused {
    #[error("trading is halted: {0}")]
    Halted(String),
    #[error("order size {size} is outside 1..={max} (max order size)")]
    OrderSize { size: u32, max: u32 },
    #[error("would allow a position of {worst} in {contract_id} (max position {max})")]
    AccountPosition {
        contract_id: String,
        worst: i32,
        max: u32,
    },
    #[error(
        "would allow {strategy} a position of {worst} in {contract_id} (its max position {max})"
    )]
    StrategyPosition {
        strategy: String,
        contract_id: String,
        worst: i32,
        max: u32,
    },
    #[error("daily loss {} has reached the limit {}", Money(*.loss), Money(*.limit))]
    DailyLoss { loss: f64, limit: f64 },
    #[error(
        "order rate limit: {per_minute} orders per minute (next slot in {:.1}s)",
        .wait.as_secs_f64()
    )]
    OrderRate { per_minute: u32, wait: Duration },
    #[error("an exit of {size} against a position of {position} would not reduce it")]
    NotAnExit { size: u32, position: i32 },
}

impl RiskRefused {
    pub fn kind(&self) -> RefusalKind {
        match self {
            RiskRefused::Halted(_) => RefusalKind::Halted,
            RiskRefused::OrderSize { .. } => RefusalKind::OrderSize,
            RiskRefused::AccountPosition { .. }
            | RiskRefused::StrategyPosition { .. }
            | RiskRefused::NotAnExit { .. } => RefusalKind::Position,
            RiskRefused::DailyLoss { .. } => RefusalKind::DailyLoss,
            RiskRefused::OrderRate { .. } => RefusalKind::OrderRate,
        }
    }
}

/// The guard's state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RiskStateError {
    #[error("cannot read the risk state {path}: {source} (check STATE_DIR and its permissions)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot parse the risk state {path}: {source} (fix or remove the file; it holds today's loss tally and any halt)"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot save the risk state {path}: {source} (check STATE_DIR and its permissions)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the guard keeps on disk between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Persisted {
    trading_day: Option<NaiveDate>,
    realized_pnl: f64,
    halted: Option<String>,
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
    ) -> Result<Self, RiskStateError> {
        let path = state_dir.map(|d| d.join("risk.json"));
        let state = match &path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p).map_err(|source| RiskStateError::Read {
                    path: p.clone(),
                    source,
                })?;
                serde_json::from_str(&text).map_err(|source| RiskStateError::Parse {
                    path: p.clone(),
                    source,
                })?
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
            return Err(RiskRefused::Halted(why.clone()));
        }
        let max = tighter(self.limits.max_order_size, strategy.max_order_size);
        if order.size == 0 || order.size > max {
            return Err(RiskRefused::OrderSize {
                size: order.size,
                max,
            });
        }
        self.check_exposure(&order, strategy, exposure)?;
        self.check_loss(open_pnl)?;
        self.orders
            .try_acquire(now)
            .map_err(|wait| RiskRefused::OrderRate {
                per_minute: self.limits.max_orders_per_minute,
                wait,
            })?;
        Ok(RiskApproved(order))
    }

    /// Checks a change to a working order. One that adds contracts (`order.size` is the
    /// growth) passes every rule of [`RiskGuard::check`], as a new order of that size would;
    /// one that adds none (a new price, a smaller size) is refused only while trading is
    /// halted, and does not count against the order rate.
    ///
    /// # Errors
    /// The first rule the change breaks.
    pub fn check_modify<T>(
        &mut self,
        order: ProposedOrder<T>,
        strategy: StrategyLimits,
        exposure: Exposure,
        open_pnl: f64,
        now: Instant,
    ) -> Result<RiskApproved<T>, RiskRefused> {
        if order.size > 0 {
            return self.check(order, strategy, exposure, open_pnl, now);
        }
        match &self.state.halted {
            Some(why) => Err(RiskRefused::Halted(why.clone())),
            None => Ok(RiskApproved(order)),
        }
    }

    /// The worst position the order could leave, with every working order filled, against the
    /// account's and the strategy's limits.
    fn check_exposure<T>(
        &self,
        order: &ProposedOrder<T>,
        strategy: StrategyLimits,
        exposure: Exposure,
    ) -> Result<(), RiskRefused> {
        let size = i32::try_from(order.size).unwrap_or(i32::MAX);
        let worst = |position: i32, buys: u32, sells: u32| -> i32 {
            let (buys, sells) = (buys as i32, sells as i32);
            let (add_long, add_short) = match order.side {
                Side::Buy => (size, 0),
                Side::Sell => (0, size),
            };
            let long = position.saturating_add(buys).saturating_add(add_long);
            let short = position.saturating_sub(sells).saturating_sub(add_short);
            long.saturating_abs().max(short.saturating_abs())
        };
        let account_worst = worst(
            exposure.account_position,
            exposure.account_working_buy,
            exposure.account_working_sell,
        );
        if account_worst > self.limits.max_position as i32 {
            return Err(RiskRefused::AccountPosition {
                contract_id: order.contract_id.clone(),
                worst: account_worst,
                max: self.limits.max_position,
            });
        }
        if let Some(max) = strategy.max_position {
            let strategy_worst = worst(
                exposure.strategy_position,
                exposure.strategy_working_buy,
                exposure.strategy_working_sell,
            );
            if strategy_worst > max as i32 {
                return Err(RiskRefused::StrategyPosition {
                    strategy: order.strategy.clone(),
                    contract_id: order.contract_id.clone(),
                    worst: strategy_worst,
                    max,
                });
            }
        }
        Ok(())
    }

    fn check_loss(&self, open_pnl: f64) -> Result<(), RiskRefused> {
        let day_pnl = self.state.realized_pnl + open_pnl;
        if day_pnl <= -self.limits.daily_loss_limit {
            return Err(RiskRefused::DailyLoss {
                loss: -day_pnl,
                limit: self.limits.daily_loss_limit,
            });
        }
        Ok(())
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
        let reduces = Side::closing(position) == Some(order.side)
            && i64::from(order.size) <= i64::from(position).abs();
        if reduces {
            Ok(RiskApproved(order))
        } else {
            Err(RiskRefused::NotAnExit {
                size: order.size,
                position,
            })
        }
    }

    /// Adds a closing fill's P&L (fees already taken off) to the day, rolling the day over when
    /// a new one has begun.
    ///
    /// # Errors
    /// When the tally cannot be saved.
    pub fn record_realized(&mut self, pnl: f64, at: DateTime<Utc>) -> Result<(), RiskStateError> {
        self.roll(at);
        self.state.realized_pnl += pnl;
        self.save()
    }

    /// Replaces the day's tally with the gateway's own account of it (`Trade/search` since the
    /// start of the trading day), which is authoritative after a restart.
    ///
    /// # Errors
    /// When the tally cannot be saved.
    pub fn set_realized(&mut self, pnl: f64, at: DateTime<Utc>) -> Result<(), RiskStateError> {
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
    pub fn halt(&mut self, reason: &str) -> Result<(), RiskStateError> {
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
    pub fn resume(&mut self) -> Result<(), RiskStateError> {
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

    fn save(&self) -> Result<(), RiskStateError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let write = |source| RiskStateError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        // Write-then-rename, so a crash mid-write never leaves a torn file that blocks start-up.
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(&self.state).map_err(std::io::Error::other);
        std::fs::write(&tmp, json.map_err(write)?).map_err(write)?;
        std::fs::rename(&tmp, path).map_err(write)?;
        Ok(())
    }
}

fn tighter(global: u32, strategy: Option<u32>) -> u32 {
    strategy.map_or(global, |s| s.min(global))
}

#[cfg(test)]
#[path = "risk_tests.rs"]
mod tests;
