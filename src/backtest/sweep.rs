//! Parameter sweeps: one backtest per combination of `--param` values (the grid), in parallel
//! on every core, each with its own engine and VM, the strategy file's declared `params`
//! replaced ([`params`](super::params)); one row per combination, sorted by a chosen metric.
//! The rows depend on the inputs only, never on which thread ran what.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;

use super::config::BacktestConfig;
use super::params::{Declared, ParamAxis, Value};
use super::report::{Report, RoundTrip};
use super::{Reading, run_with};

/// The metric a sweep's rows are sorted by, best first (`max_drawdown`: smallest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    NetPnl,
    Sharpe,
    ProfitFactor,
    MaxDrawdown,
    WinRate,
}

impl std::str::FromStr for SortBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "net_pnl" => SortBy::NetPnl,
            "sharpe" => SortBy::Sharpe,
            "profit_factor" => SortBy::ProfitFactor,
            "max_drawdown" => SortBy::MaxDrawdown,
            "win_rate" => SortBy::WinRate,
            _ => {
                return Err(format!(
                    "`{s}`: sort by net_pnl, sharpe, profit_factor, max_drawdown or win_rate"
                ));
            }
        })
    }
}

/// A run's summary, as one row of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub net_pnl: f64,
    pub gross_pnl: f64,
    pub commissions: f64,
    pub trades: usize,
    /// Share of winning trades; `None` without trades.
    pub win_rate: Option<f64>,
    /// Won over lost; infinite when nothing was lost, `None` when nothing was won either.
    pub profit_factor: Option<f64>,
    pub max_drawdown: f64,
    pub sharpe: Option<f64>,
    pub time_in_market: f64,
}

impl Metrics {
    pub fn of(report: &Report) -> Self {
        let nets: Vec<f64> = report.trips.iter().map(RoundTrip::net).collect();
        let won: f64 = nets.iter().filter(|n| **n > 0.0).sum();
        let lost: f64 = -nets.iter().filter(|n| **n <= 0.0).sum::<f64>();
        let wins = nets.iter().filter(|n| **n > 0.0).count();
        Metrics {
            net_pnl: report.gross() - report.commissions(),
            gross_pnl: report.gross(),
            commissions: report.commissions(),
            trades: nets.len(),
            win_rate: (!nets.is_empty()).then(|| wins as f64 / nets.len() as f64),
            profit_factor: if lost > 0.0 {
                Some(won / lost)
            } else if won > 0.0 {
                Some(f64::INFINITY)
            } else {
                None
            },
            max_drawdown: report.equity.max_drawdown,
            sharpe: report.equity.sharpe(),
            time_in_market: report.equity.time_in_market(),
        }
    }

    /// Higher is better; `None` sorts last.
    fn score(&self, by: SortBy) -> Option<f64> {
        match by {
            SortBy::NetPnl => Some(self.net_pnl),
            SortBy::Sharpe => self.sharpe,
            SortBy::ProfitFactor => self.profit_factor,
            SortBy::MaxDrawdown => Some(-self.max_drawdown),
            SortBy::WinRate => self.win_rate,
        }
    }

    /// The metrics' cells, as `COLUMNS` names them.
    fn cells(&self) -> [String; 9] {
        let money = |v: f64| format!("{:.2}", crate::money::cents(v));
        let ratio = |v: Option<f64>| match v {
            Some(x) if x.is_infinite() => "inf".into(),
            Some(x) => format!("{:.2}", crate::money::cents(x)),
            None => String::new(),
        };
        [
            money(self.net_pnl),
            money(self.gross_pnl),
            money(self.commissions),
            self.trades.to_string(),
            self.win_rate
                .map_or(String::new(), |w| format!("{:.1}", w * 100.0)),
            ratio(self.profit_factor),
            money(self.max_drawdown),
            ratio(self.sharpe),
            format!("{:.1}", self.time_in_market * 100.0),
        ]
    }
}

const COLUMNS: [&str; 9] = [
    "net_pnl",
    "gross_pnl",
    "commissions",
    "trades",
    "win_rate_pct",
    "profit_factor",
    "max_drawdown",
    "sharpe",
    "time_in_market_pct",
];

/// One combination's parameter values (in `--param` order) and its results.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub params: Vec<(String, String)>,
    pub metrics: Metrics,
}

/// A sweep's rows, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub names: Vec<String>,
    pub rows: Vec<Row>,
}

/// Runs every combination of `axes` over `cfg` (one strategy file) on `threads` threads
/// (`None`: every core), sorted by `sort` (ties in grid order).
///
/// # Errors
/// Before anything runs: not exactly one strategy file, no `params` table, an unknown param,
/// a value of the wrong type. After: the first combination (in grid order) that failed.
pub fn sweep(
    cfg: &BacktestConfig,
    axes: &[ParamAxis],
    sort: SortBy,
    threads: Option<usize>,
) -> anyhow::Result<Sweep> {
    let [file] = cfg.strategies.as_slice() else {
        anyhow::bail!(
            "a sweep runs one strategy file (got {})",
            cfg.strategies.len()
        );
    };
    let source =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let declared = Declared::of(&file.display().to_string(), &source)?;
    let values = declared.check(axes)?;
    let grid = grid(&values);
    let threads = threads
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1)
        .clamp(1, grid.len().max(1));

    // One backtest per core leaves no core to decode ahead on.
    let reading = match threads {
        1 => Reading::Ahead,
        _ => Reading::Inline,
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<Metrics>>>> =
        Mutex::new((0..grid.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(combo) = grid.get(i) else { break };
                    let set: Vec<(&str, &Value)> = axes
                        .iter()
                        .zip(combo)
                        .map(|(a, v)| (a.name.as_str(), *v))
                        .collect();
                    let text = declared.rewrite(&source, &set);
                    let mut one = cfg.clone();
                    one.work_dir = cfg.work_dir.join(i.to_string());
                    let got = run_with(&one, Some(&text), reading).map(|r| Metrics::of(&r));
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(got);
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&cfg.work_dir);
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut rows = Vec::with_capacity(grid.len());
    for (combo, got) in grid.iter().zip(results) {
        let params: Vec<(String, String)> = axes
            .iter()
            .zip(combo)
            .map(|(a, v)| (a.name.clone(), v.shown.clone()))
            .collect();
        let metrics = got
            .unwrap_or_else(|| Err(anyhow::anyhow!("not run")))
            .with_context(|| {
                let set: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("combination {}", set.join(" "))
            })?;
        rows.push(Row { params, metrics });
    }
    // Stable: equal scores keep grid order.
    rows.sort_by(|a, b| {
        let (x, y) = (a.metrics.score(sort), b.metrics.score(sort));
        match (x, y) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
    Ok(Sweep {
        names: axes.iter().map(|a| a.name.clone()).collect(),
        rows,
    })
}

/// Every combination, the last axis varying fastest.
fn grid(values: &[Vec<Value>]) -> Vec<Vec<&Value>> {
    values.iter().fold(vec![Vec::new()], |acc, axis| {
        acc.iter()
            .flat_map(|prefix| {
                axis.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v);
                    next
                })
            })
            .collect()
    })
}

/// A CSV cell: quoted when it must be.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl Sweep {
    fn header(&self) -> Vec<String> {
        self.names
            .iter()
            .cloned()
            .chain(COLUMNS.iter().map(|c| (*c).to_owned()))
            .collect()
    }

    fn cells(row: &Row) -> Vec<String> {
        row.params
            .iter()
            .map(|(_, v)| v.clone())
            .chain(row.metrics.cells())
            .collect()
    }

    /// `sweep.csv`: the parameters, then the metrics, one row per combination, best first.
    pub fn csv(&self) -> String {
        let mut s = String::new();
        for line in std::iter::once(self.header()).chain(self.rows.iter().map(Self::cells)) {
            let cells: Vec<String> = line.iter().map(|c| csv_cell(c)).collect();
            let _ = writeln!(s, "{}", cells.join(","));
        }
        s
    }

    /// The same as an aligned table for the terminal.
    pub fn table(&self) -> String {
        let lines: Vec<Vec<String>> = std::iter::once(self.header())
            .chain(self.rows.iter().map(Self::cells))
            .collect();
        let widths: Vec<usize> = (0..lines[0].len())
            .map(|c| {
                lines
                    .iter()
                    .map(|l| l[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = String::new();
        for l in &lines {
            let cells: Vec<String> = l
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:>w$}"))
                .collect();
            let _ = writeln!(s, "{}", cells.join("  ").trim_end());
        }
        s
    }

    /// Writes `sweep.csv` into `out`.
    ///
    /// # Errors
    /// When `out` cannot be created or written.
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join("sweep.csv");
        std::fs::write(&path, self.csv()).with_context(|| format!("writing {}", path.display()))
    }
}
