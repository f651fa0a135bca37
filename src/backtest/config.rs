//! What a backtest runs ([`BacktestConfig`]), and the facts of the contracts it can run on.

use std::path::PathBuf;

use anyhow::Context;

use super::bars_source::BarsRange;
use crate::risk::RiskLimits;
use crate::sim::market::{ContractSpec, catalog};

/// How often (simulated) the engine's periodic work runs over a recording, as live (bars are
/// played on a coarser tick: `Source::tick_ms`).
pub(super) const TICK_MS: i64 = 250;

/// What a backtest runs.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    /// Strategy files (`*.lua`).
    pub strategies: Vec<PathBuf>,
    /// A recording file, a day's directory or a `RECORD_DIR` (not read when `bars` is set).
    pub data: PathBuf,
    /// Play bars fetched for a range of days instead of a recording.
    pub bars: Option<BarsRange>,
    /// Per contract per side, in dollars; `None` takes the product's usual exchange fee.
    pub commission: Option<f64>,
    /// Ticks a market order (or a triggered stop) pays beyond the touch.
    pub slippage_ticks: u32,
    pub limits: RiskLimits,
    /// The account's starting balance.
    pub balance: f64,
    /// Where the strategies are copied to run from (their `lib/` is linked); removed after.
    pub work_dir: PathBuf,
}

/// The facts of a recorded contract: the simulator's catalog knows the products' tick sizes.
pub(super) fn spec_of(contract: &str, commission: Option<f64>) -> anyhow::Result<ContractSpec> {
    // `CON.F.US.MNQ.Z25` is product `F.US.MNQ`.
    let product = contract
        .strip_prefix("CON.")
        .and_then(|rest| rest.rsplit_once('.'))
        .map(|(p, _)| p)
        .unwrap_or(contract);
    let today = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date");
    let known = catalog(today);
    let base = known
        .iter()
        .find(|s| &*s.symbol_id == product)
        .with_context(|| {
            let mut names: Vec<&str> = known.iter().map(|s| s.ticker).collect();
            names.sort_unstable();
            names.dedup();
            format!(
                "contract {contract}: its tick size is not known (the backtest knows {})",
                names.join(", ")
            )
        })?;
    Ok(ContractSpec {
        id: contract.into(),
        active: true,
        fee_per_contract: commission.unwrap_or(base.fee_per_contract),
        ..base.clone()
    })
}
