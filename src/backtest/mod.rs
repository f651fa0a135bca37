//! `moontick backtest`: strategies, unchanged, through the same engine core, risk guard and
//! `bot` API (`SteppedEngine`) on a simulated clock, over a recording made by `moontick
//! run`/`record`; orders fill in the simulator's matching engine against the recorded quotes
//! (`exchange`). One event at a time, each settled (every strategy done with it, every
//! order call answered) before the next: the same inputs give the same bytes out ([`report`]).
//! A [`sweep`] runs a grid of the strategy's `params` in parallel.

mod bars_source;
mod config;
mod derived;
mod exchange;
mod history;
mod html;
mod pace;
pub mod params;
mod read_ahead;
pub mod report;
mod source;
pub mod sweep;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::engine::SteppedEngine;
use crate::feed::MarketEvent;
use crate::feed::record::Recorded;
use crate::gateway::wire::Account;
use crate::risk::RiskGuard;
use crate::script::{Clock, HostConfig, ManualClock};
pub use bars_source::BarsRange;
pub use config::BacktestConfig;
pub(crate) use exchange::ACCOUNT_ID;
use exchange::{Outcome, SimExchange};
pub(crate) use pace::{Pace, Pump};
pub use params::{ParamAxis, ParamError};
pub use report::Report;

/// Copies the strategies into `work_dir` (the host runs every file of one directory), with a
/// link to the `lib/` beside the first one for `require`; `first` replaces the first one's
/// text (a sweep's combination).
fn stage(strategies: &[PathBuf], work_dir: &Path, first: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(!strategies.is_empty(), "no strategy file given");
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let mut seen = std::collections::HashMap::new();
    for (i, s) in strategies.iter().enumerate() {
        let name = s
            .file_name()
            .filter(|n| n.to_string_lossy().ends_with(".lua"))
            .with_context(|| format!("{}: not a .lua file", s.display()))?;
        // A strategy is named by its file: two files of one name would be one strategy.
        if let Some(other) = seen.insert(name.to_owned(), s) {
            anyhow::bail!(
                "{} and {} have the same name: a strategy is named by its file, rename one",
                other.display(),
                s.display()
            );
        }
        match first.filter(|_| i == 0) {
            Some(text) => std::fs::write(work_dir.join(name), text)
                .with_context(|| format!("writing {}", work_dir.display()))?,
            None => {
                std::fs::copy(s, work_dir.join(name))
                    .with_context(|| format!("reading {}", s.display()))?;
            }
        }
    }
    let lib = strategies[0].parent().unwrap_or(Path::new(".")).join("lib");
    #[cfg(unix)]
    if lib.is_dir() {
        let lib = std::fs::canonicalize(&lib)?;
        std::os::unix::fs::symlink(lib, work_dir.join("lib"))?;
    }
    Ok(())
}

/// Runs the backtest (see the module documentation).
///
/// # Errors
/// Unreadable or empty data, an unknown contract, strategies that cannot be read.
pub fn run(cfg: &BacktestConfig) -> anyhow::Result<Report> {
    run_inner(cfg, None, &mut pace::Unpaced, Reading::Ahead)
}

/// [`run`] with `pace` between the steps (a replay waits there; see [`Pace`]).
pub(crate) fn run_paced(cfg: &BacktestConfig, pace: &mut dyn Pace) -> anyhow::Result<Report> {
    run_inner(cfg, None, pace, Reading::Ahead)
}

/// [`run`], the first strategy's text replaced by `first` (a sweep's combination).
fn run_with(cfg: &BacktestConfig, first: Option<&str>, reading: Reading) -> anyhow::Result<Report> {
    run_inner(cfg, first, &mut pace::Unpaced, reading)
}

/// Where a recording is decoded: on a thread of its own, ahead of the strategies (one backtest
/// gets a second core's help), or on the backtest's own thread (a sweep running one backtest
/// per core has no core to spare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Ahead,
    Inline,
}

fn run_inner(
    cfg: &BacktestConfig,
    first: Option<&str>,
    pace: &mut dyn Pace,
    reading: Reading,
) -> anyhow::Result<Report> {
    let source = source::open(cfg, reading == Reading::Ahead)?;
    let (contracts, specs) = (source.contracts, source.specs);
    let mut events = source.events.peekable();
    let first_ms = match events.peek() {
        Some(Ok(e)) => e.recv_ms(),
        Some(Err(_)) => events.next().expect("peeked").map(|_| 0)?,
        None => anyhow::bail!("{} are empty", source.what),
    };
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();

    let _ = std::fs::remove_dir_all(&cfg.work_dir);
    stage(&cfg.strategies, &cfg.work_dir, first)?;
    let result = (|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let _entered = runtime.enter();
        let exchange = Arc::new(SimExchange::new(specs, cfg.slippage_ticks, cfg.balance));
        exchange.set_now(first_ms);
        let clock = Arc::new(ManualClock::new(first_ms));
        let guard = RiskGuard::open(cfg.limits.clone(), None, at(first_ms))?;
        let mut host = HostConfig::new(&cfg.work_dir);
        // Every quote is delivered: the driver steps the strategies itself.
        (host.quote_backlog, host.quote_backlog_age) = (usize::MAX, std::time::Duration::MAX);
        let account: Account = exchange.account();
        let ex = exchange.clone();
        let mut pump = move |engine: &mut SteppedEngine| {
            let mut any = false;
            while let Some(o) = ex.pop() {
                any = true;
                match o {
                    Outcome::Input(i) => engine.input(i),
                    Outcome::User(u) => engine.user(user_event(u)),
                }
            }
            any
        };
        let mut engine = SteppedEngine::start(
            exchange.clone(),
            account,
            guard,
            host,
            contracts,
            clock.clone(),
            &mut pump,
        )?;
        engine.set_bar_history(source.history.clone());
        if let Some(s) = engine.status().into_iter().find(|s| s.load_error.is_some()) {
            let why = s.load_error.unwrap_or_default();
            let _ = engine.shutdown(&mut pump);
            anyhow::bail!("strategy {} did not load: {why}", s.name);
        }
        let mut equity = report::Equity::default();
        let mut prices = BTreeMap::new();
        let (mut count, mut quotes) = (0u64, 0u64);
        let tick_ms = source.tick_ms;
        let mut next_tick = first_ms + tick_ms;
        pace.started(&engine, first_ms);
        'events: for event in events {
            let event = event?;
            let ms = event.recv_ms();
            // The engine's ticks and the strategies' timers up to this event, in time order.
            let mut fired = None;
            loop {
                let timer = engine.next_timer_ms().filter(|&t| Some(t) != fired);
                let next = timer.map_or(next_tick, |t| t.min(next_tick));
                if next > ms {
                    break;
                }
                let next = next.max(clock.now_ms());
                if !pace.until(next, &mut engine, &mut pump) {
                    break 'events;
                }
                clock.set_ms(next);
                exchange.set_now(next);
                if next >= next_tick {
                    engine.tick();
                    next_tick += tick_ms;
                }
                if timer.is_some_and(|t| t <= next) {
                    // Settling fires it; one that fires nothing (paused, say) must not hold
                    // the clock here.
                    fired = timer;
                }
                engine.settle(&mut pump);
            }
            if !pace.until(ms, &mut engine, &mut pump) {
                break;
            }
            clock.set_ms(ms);
            exchange.set_now(ms);
            count += 1;
            if let Recorded::Quote(q) = &event.event {
                quotes += 1;
                exchange.quote(q);
                if let (Some(b), Some(a)) = (q.bid, q.ask) {
                    report::sample_price(&mut prices, &q.contract, ms, (a + b) / 2.0);
                }
            }
            engine.market(MarketEvent::from(event.event));
            engine.settle(&mut pump);
            let (value, in_market) = exchange.equity();
            equity.mark(ms, value, in_market);
        }
        pace.done(&mut engine, &mut pump);
        engine.shutdown(&mut pump);
        let fills = exchange.trades();
        Ok(Report {
            trips: report::round_trips(&fills),
            fills: fills.len(),
            equity,
            open_pnl: exchange.open_pnl(),
            events: count,
            quotes,
            prices,
        })
    })();
    let _ = std::fs::remove_dir_all(&cfg.work_dir);
    result
}

/// A simulator user event as the user feed would have decoded it.
fn user_event(e: crate::sim::events::UserEvent) -> crate::feed::UserEvent {
    use crate::feed::UserEvent as F;
    use crate::sim::events::UserEvent as S;
    match e {
        S::Account(account) => F::Account {
            action: None,
            account,
        },
        S::Order(order) => F::Order {
            action: None,
            order,
        },
        S::Position(position) => F::Position {
            action: None,
            position,
        },
        S::Trade(trade) => F::Trade {
            action: None,
            trade,
        },
    }
}

/// Writes `trades.csv`, `equity.csv` and `report.html` into `out`.
///
/// # Errors
/// When `out` cannot be created or written.
pub fn write_outputs(report: &Report, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in [
        ("trades.csv", report.trades_csv()),
        ("equity.csv", report.equity_csv()),
        ("report.html", html::report_html(report)),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
