//! What a backtest plays: the recorded events under `--data`, or bars fetched for
//! `--bars/--from/--to` played as prints and quotes ([`derived`](super::derived)); with the
//! contracts they are of and the history their bar series start with ([`history`](super::history)).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::bars_source::{self, BarsRange};
use super::config::{BacktestConfig, TICK_MS, spec_of};
use super::derived;
use super::history::{self, History};
use super::read_ahead::ReadAhead;
use crate::engine::ContractInfo;
use crate::feed::record::{RecordError, Recorded, RecordedEvent, Recording};
use crate::sim::market::ContractSpec;

pub(crate) type EventIter = Box<dyn Iterator<Item = Result<RecordedEvent, RecordError>>>;

pub(crate) struct Source {
    pub contracts: Vec<ContractInfo>,
    pub specs: Vec<ContractSpec>,
    pub events: EventIter,
    pub history: History,
    /// How often (simulated) the engine's periodic work runs: as live over a recording; over
    /// bars, as often as derived events come (a quarter of a bar), since nothing moves between
    /// them (a day of minute bars is 5,760 ticks, not 345,600).
    pub tick_ms: i64,
    /// What was read, for messages.
    pub what: String,
}

/// The source `cfg` names.
///
/// # Errors
/// Unreadable or missing data, an unknown contract, a failed fetch.
/// `read_ahead`: decode recordings on a thread of their own ([`ReadAhead`]).
pub(crate) fn open(cfg: &BacktestConfig, read_ahead: bool) -> anyhow::Result<Source> {
    match &cfg.bars {
        Some(range) => from_bars(cfg, range),
        None => from_recordings(cfg, read_ahead),
    }
}

fn info(contract: &str, symbol: &str, spec: &ContractSpec) -> ContractInfo {
    ContractInfo {
        id: contract.into(),
        symbol: symbol.into(),
        name: spec.name.as_str().into(),
        description: spec.description.as_str().into(),
        tick_size: spec.tick_size,
        tick_value: spec.tick_value,
    }
}

/// The `RECORD_DIR` a `--data` path is in: a recording file's or a day directory's root, or
/// the directory itself.
fn record_root(data: &Path) -> PathBuf {
    let is_day = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| chrono::NaiveDate::parse_from_str(n, "%Y-%m-%d").is_ok())
    };
    let dir = if data.is_file() {
        data.parent().unwrap_or(Path::new("."))
    } else {
        data
    };
    match dir.parent() {
        Some(up) if is_day(dir) => up.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

fn from_recordings(cfg: &BacktestConfig, read_ahead: bool) -> anyhow::Result<Source> {
    let files = crate::feed::record::scan(&cfg.data).context("reading the recordings")?;
    anyhow::ensure!(
        !files.is_empty(),
        "no recordings under {} (see docs/recording.md)",
        cfg.data.display()
    );
    let mut contracts: BTreeMap<String, ContractInfo> = BTreeMap::new();
    let mut specs = Vec::new();
    for f in &files {
        // The header names the contract; the file name is only derived from it.
        let rec = Recording::open(&f.path)?;
        let (contract, symbol) = rec.header().map_or_else(
            || (f.contract.clone(), f.contract.clone()),
            |h| (h.contract.to_string(), h.symbol.to_string()),
        );
        if contracts.contains_key(&contract) {
            continue;
        }
        let spec = spec_of(&contract, cfg.commission)?;
        contracts.insert(contract.clone(), info(&contract, &symbol, &spec));
        specs.push(spec);
    }
    let root = record_root(&cfg.data);
    Ok(Source {
        contracts: contracts.into_values().collect(),
        specs,
        events: match read_ahead {
            true => Box::new(ReadAhead::new(crate::feed::record::events_from(files))?),
            false => Box::new(crate::feed::record::events_from(files)),
        },
        history: history::from_recordings(root),
        tick_ms: TICK_MS,
        what: format!("the recordings under {}", cfg.data.display()),
    })
}

/// The engine closes a bar this long after its end when no print does (its close grace).
const CLOSE_GRACE_MS: i64 = 250;

fn from_bars(cfg: &BacktestConfig, range: &BarsRange) -> anyhow::Result<Source> {
    let mut declared = Vec::new();
    for path in &cfg.strategies {
        let d = crate::script::check::declared(path)
            .map_err(|e| anyhow::anyhow!("strategy did not load: {e}"))?;
        declared.push((path.clone(), d));
    }
    let series = bars_source::load(range, &declared)?;
    let tf = range.timeframe;
    let (start, end) = tf.bucket(0);
    let tick_ms = ((end - start) / 4).max(TICK_MS);
    let mut contracts = Vec::new();
    let mut specs = Vec::new();
    let mut played = Vec::new();
    let mut prints = HashMap::new();
    let mut end_ms = i64::MIN;
    for s in series {
        let spec = spec_of(&s.contract, cfg.commission)?;
        contracts.push(info(&s.contract, &s.symbol, &spec));
        specs.push(spec);
        let mut all = derived::all_prints(&s.history, tf);
        all.extend(derived::all_prints(&s.range, tf));
        prints.insert(s.contract.to_string(), all);
        if let Some(last) = s.range.last() {
            end_ms = end_ms.max(tf.bucket(last.time_ms).1);
        }
        played.push((s.contract, s.symbol, s.range));
    }
    // An empty batch of prints reaches no strategy; the driver's clock runs to it, past the
    // tick that closes the last bar as live would.
    let last = RecordedEvent {
        recv_us: (end_ms + CLOSE_GRACE_MS + tick_ms) * 1000,
        event: Recorded::Trades(Vec::new()),
    };
    let what = format!("{tf} bars from {} to {}", range.from, range.to);
    Ok(Source {
        contracts,
        specs,
        events: Box::new(derived::Merged::new(played, tf, last).map(Ok)),
        history: history::from_prints(prints, what.clone()),
        tick_ms,
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_dir_of_a_file_a_day_or_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("2025-01-02");
        std::fs::create_dir_all(&day).unwrap();
        let file = day.join("C.mtr.zst");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(record_root(&file), dir.path());
        assert_eq!(record_root(&day), dir.path());
        assert_eq!(record_root(dir.path()), dir.path());
    }
}
