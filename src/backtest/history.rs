//! The history a backtest's bar series start with, as live backfills them: the bars of every
//! trade before the series' cut (the partial bar included), built by the same
//! [`Aggregator`] from the data the backtest has — the trades recorded in the same
//! `RECORD_DIR` (earlier days, and the day's own before the cut), or the prints derived from
//! the bars fetched before `--from`. Fewer bars than `bars_history` asks for is said in the
//! log, never passed over.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::derived::Print;
use crate::bars::{Aggregator, Bar, Timeframe};
use crate::feed::record::{Recorded, Recording, RecordingFile};

/// The history function the engine calls (see [`crate::engine::SteppedEngine::set_bar_history`]).
pub(crate) type History = Arc<dyn Fn(&str, Timeframe, usize, i64) -> Vec<Bar> + Send + Sync>;

/// `prints` (oldest first) as `tf` bars: the closed ones, then the one the last print is in.
fn aggregate(prints: impl IntoIterator<Item = Print>, tf: Timeframe) -> Vec<Bar> {
    let mut agg = Aggregator::new(tf);
    let mut out = Vec::new();
    for (price, size, time) in prints {
        agg.trade(price, size, time, &mut out);
    }
    out.extend(agg.open_bar().copied());
    out
}

/// Keeps the last `history` closed bars and the partial one; says so when there are fewer.
fn trim(mut bars: Vec<Bar>, contract: &str, tf: Timeframe, history: usize, from: &str) -> Vec<Bar> {
    // The last bar is the partial one the cut falls in.
    let closed = bars.len().saturating_sub(1);
    if closed < history {
        tracing::warn!(
            "bars {contract} {tf}: {closed} of {history} bar(s) of history in {from}; the \
             series starts short (record or fetch earlier days for more)"
        );
    }
    let drop = closed.saturating_sub(history);
    bars.drain(..drop);
    bars
}

fn day_of(ms: i64) -> chrono::NaiveDate {
    crate::cme::trading_day(DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default())
}

/// The prints recorded in one file for `contract` before `cut`, in file order.
fn recorded_prints(path: &std::path::Path, contract: &str, cut: i64) -> Vec<Print> {
    let rec = match Recording::open(path) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("bar history: {}: {e}", path.display());
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for event in rec {
        match event {
            Ok(e) => {
                if let Recorded::Trades(ts) = e.event {
                    out.extend(
                        ts.iter()
                            .filter(|t| &*t.contract == contract && t.time_ms < cut)
                            .map(|t| (t.price, t.size.round() as i64, t.time_ms)),
                    );
                }
            }
            Err(e) => {
                tracing::warn!("bar history: {}: {e}", path.display());
                break;
            }
        }
    }
    out
}

/// History from the recordings under `root` (a `RECORD_DIR`): the contract's days up to the
/// cut's, newest first until there are enough bars, each aggregated on its own (no bar spans
/// two trading days: they start at 17:00 Chicago, a whole hour).
pub(crate) fn from_recordings(root: PathBuf) -> History {
    Arc::new(move |contract, tf, history, cut| {
        let files: Vec<RecordingFile> = match crate::feed::record::scan(&root) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("bar history: {e}");
                Vec::new()
            }
        };
        let cut_day = day_of(cut);
        let mut days: Vec<RecordingFile> = files
            .into_iter()
            .filter(|f| f.contract == contract && f.day.is_none_or(|d| d <= cut_day))
            .collect();
        days.sort_by_key(|f| std::cmp::Reverse(f.day));
        let mut newest_first: Vec<Vec<Bar>> = Vec::new();
        let mut count = 0;
        for f in days {
            if count > history {
                break;
            }
            let bars = aggregate(recorded_prints(&f.path, contract, cut), tf);
            count += bars.len();
            newest_first.push(bars);
        }
        let bars: Vec<Bar> = newest_first.into_iter().rev().flatten().collect();
        trim(bars, contract, tf, history, &root.display().to_string())
    })
}

/// History from derived prints per contract (oldest first): those before the cut.
pub(crate) fn from_prints(prints: HashMap<String, Vec<Print>>, what: String) -> History {
    Arc::new(move |contract, tf, history, cut| {
        let all = prints.get(contract).map_or(&[][..], Vec::as_slice);
        let before = &all[..all.partition_point(|p| p.2 < cut)];
        trim(
            aggregate(before.iter().copied(), tf),
            contract,
            tf,
            history,
            &what,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_the_bars_before_the_cut_with_the_partial_one_last_and_trimmed() {
        let tf = Timeframe::parse("1m").unwrap();
        // One print a minute plus one 10 s into the fifth minute; the cut is 20 s in.
        let mut prints: Vec<Print> = (0..5).map(|k| (100.0 + k as f64, 1, k * 60_000)).collect();
        prints.push((99.0, 3, 4 * 60_000 + 10_000));
        prints.push((1.0, 1, 4 * 60_000 + 20_000));
        let h = from_prints(HashMap::from([("C".to_string(), prints)]), "test".into());
        let bars = h("C", tf, 2, 4 * 60_000 + 20_000);
        let times: Vec<i64> = bars.iter().map(|b| b.time_ms).collect();
        assert_eq!(times, [2 * 60_000, 3 * 60_000, 4 * 60_000]);
        let partial = bars[2];
        assert_eq!(
            (partial.open, partial.low, partial.close, partial.volume),
            (104.0, 99.0, 99.0, 4),
            "the print at the cut is live, not history"
        );
        assert_eq!(
            h("C", tf, 500, 4 * 60_000 + 20_000).len(),
            5,
            "short: all there is"
        );
        assert!(h("other", tf, 5, i64::MAX).is_empty());
    }
}
