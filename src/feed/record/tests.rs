//! Recording unit tests: the format round trip, torn tails, version refusal, the cap, appends,
//! the recorder thread's files and counters, the tap's drops, and the merge.

use std::path::Path;
use std::sync::Arc;

use super::file::{Flushed, RecordFile};
use super::format::{self, Recorded, RecordedEvent};
use super::recorder::{Writer, file_name};
use super::*;
use crate::feed::events::MarketEvent;
use crate::market::{Depth, DepthLevel, Quote, Side, Trade};

const C: &str = "CON.F.US.MNQ.Z25";

fn quote(contract: &str, bid: f64, time_ms: i64) -> Quote {
    Quote {
        bid: Some(bid),
        ask: Some(bid + 0.25),
        last: (bid > 100.0).then_some(bid),
        volume: Some(42),
        change: Some(0.0),
        time_ms,
        ..Quote::empty(contract.into(), "MNQ".into())
    }
}

fn trades(contract: &str) -> Vec<Trade> {
    vec![
        Trade {
            contract: contract.into(),
            symbol: "MNQ".into(),
            price: 100.5,
            size: 2.0,
            side: Some(Side::Buy),
            time_ms: 7,
        },
        Trade {
            contract: contract.into(),
            symbol: "MNQ".into(),
            price: 100.25,
            size: 1.0,
            side: None,
            time_ms: 8,
        },
    ]
}

fn depth(contract: &str) -> Depth {
    Depth {
        contract: contract.into(),
        symbol: "MNQ".into(),
        levels: vec![
            DepthLevel {
                side: Side::Buy,
                price: 100.0,
                size: 5.0,
            },
            DepthLevel {
                side: Side::Sell,
                price: 100.25,
                size: 3.0,
            },
        ],
        time_ms: 9,
    }
}

fn events(contract: &str, n: usize, from_us: i64) -> Vec<RecordedEvent> {
    (0..n)
        .map(|i| {
            let recv_us = from_us + i as i64 * 1000;
            let event = match i % 5 {
                3 => Recorded::Trades(trades(contract)),
                4 => Recorded::Depth(depth(contract)),
                _ => Recorded::Quote(quote(contract, 100.0 + i as f64 * 0.25, i as i64)),
            };
            RecordedEvent { recv_us, event }
        })
        .collect()
}

/// Writes each batch as one frame; returns the file length after each.
fn write(path: &Path, batches: &[&[RecordedEvent]], cap: u64) -> Vec<u64> {
    let (mut f, _) = RecordFile::open(path, cap, 1, C, "MNQ").unwrap();
    batches
        .iter()
        .map(|batch| {
            for e in *batch {
                assert!(f.push(e.recv_us, &e.event));
            }
            assert!(matches!(f.flush(), Flushed::Written { .. }));
            f.len()
        })
        .collect()
}

fn read_all(path: &Path) -> (Vec<RecordedEvent>, bool) {
    let mut r = Recording::open(path).unwrap();
    let got: Vec<RecordedEvent> = r.by_ref().map(Result::unwrap).collect();
    (got, r.truncated())
}

#[test]
fn quotes_trades_and_depth_read_back_as_written_with_both_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mtr.zst");
    let evs = events(C, 25, 1_700_000_000_000_000);
    write(&path, &[&evs[..10], &evs[10..]], u64::MAX);
    let r = Recording::open(&path).unwrap();
    let h = r.header().unwrap();
    assert_eq!((h.version, &*h.contract, &*h.symbol), (VERSION, C, "MNQ"));
    let (got, truncated) = read_all(&path);
    assert_eq!(got, evs);
    assert!(!truncated);
    assert_eq!(got[0].recv_ms(), 1_700_000_000_000);
    assert_eq!(got[3].exchange_ms(), 7);
}

#[test]
fn a_file_cut_mid_frame_reads_up_to_the_last_complete_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mtr.zst");
    let evs = events(C, 30, 0);
    let lens = write(&path, &[&evs[..10], &evs[10..20], &evs[20..]], u64::MAX);
    // Cut the third frame in half: a crash while writing it.
    let cut = lens[1] + (lens[2] - lens[1]) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let (got, truncated) = read_all(&path);
    assert!(truncated);
    assert_eq!(
        got,
        evs[..20],
        "every event of the complete frames, none after"
    );

    // Cut inside the first frame: nothing complete, still no error.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(lens[0] / 2)
        .unwrap();
    let (got, truncated) = read_all(&path);
    assert!(got.is_empty() && truncated);
}

#[test]
fn reopening_after_a_crash_cuts_the_torn_frame_and_appends_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mtr.zst");
    let evs = events(C, 20, 0);
    let lens = write(&path, &[&evs[..10], &evs[10..]], u64::MAX);
    let torn = lens[0] + 5;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(torn)
        .unwrap();

    let later = events(C, 5, 1_000_000);
    let (mut f, opened) = RecordFile::open(&path, u64::MAX, 2, C, "MNQ").unwrap();
    assert_eq!(opened.existing, lens[0]);
    assert_eq!(opened.cut, 5);
    for e in &later {
        f.push(e.recv_us, &e.event);
    }
    assert!(matches!(f.flush(), Flushed::Written { events: 5 }));
    let (got, truncated) = read_all(&path);
    assert!(!truncated);
    let want: Vec<RecordedEvent> = evs[..10].iter().chain(&later).cloned().collect();
    assert_eq!(got, want);
}

#[test]
fn a_file_we_did_not_write_is_never_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mtr.zst");
    std::fs::write(&path, b"somebody's notes, not a recording").unwrap();
    let err = RecordFile::open(&path, u64::MAX, 0, C, "MNQ").unwrap_err();
    assert!(err.to_string().contains("move the file away"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"somebody's notes, not a recording"
    );
    let err = Recording::open(&path).unwrap_err();
    assert!(matches!(
        err,
        RecordError::Io { .. } | RecordError::Corrupt { .. }
    ));
}

#[test]
fn an_unknown_version_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mtr.zst");
    let mut raw = Vec::new();
    format::write_header(&mut raw, 0, C, "MNQ");
    raw[8..10].copy_from_slice(&7u16.to_le_bytes());
    std::fs::write(&path, zstd::bulk::compress(&raw, 3).unwrap()).unwrap();
    let err = Recording::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::UnsupportedVersion {
                found: 7,
                supported: VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("version 7") && text.contains("reads version 1"),
        "{text}"
    );
}

#[test]
fn the_cap_refuses_the_frame_that_would_pass_it_and_everything_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mtr.zst");
    let evs = events(C, 40, 0);
    let first = write(&path, &[&evs[..20]], u64::MAX)[0];
    std::fs::remove_file(&path).unwrap();

    let cap = first + 10;
    let (mut f, _) = RecordFile::open(&path, cap, 1, C, "MNQ").unwrap();
    for e in &evs[..20] {
        assert!(f.push(e.recv_us, &e.event));
    }
    assert!(matches!(f.flush(), Flushed::Written { events: 20 }));
    for e in &evs[20..] {
        assert!(f.push(e.recv_us, &e.event));
    }
    assert!(matches!(f.flush(), Flushed::Capped { events: 20 }));
    assert!(f.is_full());
    assert!(!f.push(0, &evs[0].event), "a full file takes nothing more");
    assert!(std::fs::metadata(&path).unwrap().len() <= cap);
    let (got, truncated) = read_all(&path);
    assert_eq!(got, evs[..20]);
    assert!(!truncated);
}

fn counters() -> RecordCounters {
    RecordCounters::default()
}

/// 2026-11-30 10:00 Chicago and, a trading day later, 18:00 Chicago the same date.
const MORNING_US: i64 = 1_796_054_400_000_000;
const EVENING_US: i64 = MORNING_US + 8 * 3_600_000_000;

#[test]
fn the_writer_keeps_one_file_per_contract_per_trading_day() {
    let dir = tempfile::tempdir().unwrap();
    let config = RecorderConfig::new(dir.path());
    let counters = counters();
    let mut w = Writer::new(config, counters.clone());
    let es = "CON.F.US.EP.Z25";
    w.write(MORNING_US, Recorded::Quote(quote(C, 1.0, 1)));
    w.write(MORNING_US + 1, Recorded::Quote(quote(es, 2.0, 2)));
    w.write(EVENING_US, Recorded::Quote(quote(C, 3.0, 3)));
    w.flush_all();
    assert_eq!(counters.written.get(), 3);
    let files = scan(dir.path()).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| format!("{}/{}", f.day.unwrap(), f.contract))
        .collect();
    assert_eq!(
        names,
        [
            "2026-11-30/CON.F.US.EP.Z25",
            "2026-11-30/CON.F.US.MNQ.Z25",
            "2026-12-01/CON.F.US.MNQ.Z25"
        ]
    );
    let all: Vec<i64> = super::events(dir.path())
        .unwrap()
        .map(|e| e.unwrap().recv_us)
        .collect();
    assert_eq!(all, [MORNING_US, MORNING_US + 1, EVENING_US]);
    let mnq: Vec<i64> = super::events_from(files.into_iter().filter(|f| f.contract == C))
        .map(|e| e.unwrap().recv_us)
        .collect();
    assert_eq!(mnq, [MORNING_US, EVENING_US]);
}

#[test]
fn the_writer_counts_what_the_cap_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RecorderConfig::new(dir.path());
    config.max_bytes = 300;
    let counters = counters();
    let mut w = Writer::new(config, counters.clone());
    let next = |w: &mut Writer, from: usize, n: usize| {
        for i in from..from + n {
            w.write(
                MORNING_US + i as i64,
                Recorded::Quote(quote(C, i as f64, i as i64)),
            );
        }
        w.flush_all();
    };
    next(&mut w, 0, 2);
    assert_eq!(counters.written.get(), 2);
    next(&mut w, 2, 500);
    assert_eq!(counters.dropped_cap.get(), 500, "the frame past the cap");
    next(&mut w, 502, 3);
    assert_eq!(counters.dropped_cap.get(), 503, "and every event after it");
    assert_eq!(counters.written.get(), 2);
    let file = &scan(dir.path()).unwrap()[0];
    assert!(std::fs::metadata(&file.path).unwrap().len() <= 300);
}

#[test]
fn an_unwritable_directory_drops_and_counts_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let err = Recorder::start(RecorderConfig::new(&blocker), counters()).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");

    // The directory vanishes under a running recorder: events are dropped and counted.
    let counters = counters();
    let mut w = Writer::new(RecorderConfig::new(&blocker), counters.clone());
    w.write(MORNING_US, Recorded::Quote(quote(C, 1.0, 1)));
    w.write(MORNING_US + 1, Recorded::Quote(quote(C, 1.0, 1)));
    w.flush_all();
    assert_eq!(counters.dropped_io.get(), 2);
    assert_eq!(counters.written.get(), 0);
}

#[test]
fn the_tap_drops_and_counts_when_the_recorder_is_behind_and_never_blocks() {
    let (tap, rx) = RecordTap::detached(2);
    for i in 0..5 {
        tap.record(&MarketEvent::Quote(quote(C, i as f64, i)));
    }
    tap.record(&MarketEvent::Stale {
        contract_id: C.into(),
        silent_for: std::time::Duration::from_secs(1),
    });
    assert_eq!(tap.dropped(), 3);
    assert_eq!(rx.try_iter().count(), 2);
}

#[tokio::test]
async fn the_recorder_thread_writes_everything_tapped_before_finish() {
    let dir = tempfile::tempdir().unwrap();
    let counters = counters();
    let recorder = Recorder::start(RecorderConfig::new(dir.path()), counters.clone()).unwrap();
    let tap = recorder.tap();
    let sent: Vec<Quote> = (0..100).map(|i| quote(C, i as f64, i)).collect();
    for q in &sent {
        tap.record(&MarketEvent::Quote(q.clone()));
    }
    tap.record(&MarketEvent::Trades(trades(C)));
    tap.record(&MarketEvent::Depth(depth(C)));
    recorder.finish().await;
    assert_eq!(counters.written.get(), 102);
    let got: Vec<RecordedEvent> = super::events(dir.path())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let quotes: Vec<Quote> = got
        .iter()
        .filter_map(|e| match &e.event {
            Recorded::Quote(q) => Some(q.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(quotes, sent);
    assert!(matches!(got[100].event, Recorded::Trades(ref t) if t.len() == 2));
    assert!(matches!(got[101].event, Recorded::Depth(_)));
    assert!(got.windows(2).all(|w| w[0].recv_us <= w[1].recv_us));
}

#[test]
fn merged_recordings_come_in_receive_order_each_keeping_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.mtr.zst");
    let b = dir.path().join("b.mtr.zst");
    let ev = |us: i64, bid: f64, c: &str| RecordedEvent {
        recv_us: us,
        event: Recorded::Quote(quote(c, bid, 0)),
    };
    // `a`'s clock stepped back between its second and third event: file order still wins.
    let in_a = [ev(10, 1.0, "A"), ev(30, 2.0, "A"), ev(20, 3.0, "A")];
    let in_b = [ev(10, 4.0, "B"), ev(25, 5.0, "B")];
    write(&a, &[&in_a], u64::MAX);
    write(&b, &[&in_b], u64::MAX);
    let merged = Merged::new(vec![
        Recording::open(&a).unwrap(),
        Recording::open(&b).unwrap(),
    ]);
    let bids: Vec<f64> = merged
        .map(|e| match e.unwrap().event {
            Recorded::Quote(q) => q.bid.unwrap(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(bids, [1.0, 4.0, 5.0, 2.0, 3.0]);
}

#[test]
fn a_contract_id_never_names_a_path_outside_the_day() {
    assert_eq!(file_name(C), "CON.F.US.MNQ.Z25.mtr.zst");
    assert_eq!(file_name("../../etc/x"), "_.._.._etc_x.mtr.zst");
    assert_eq!(file_name(".."), "_...mtr.zst");
    assert_eq!(file_name(""), "_.mtr.zst");
    let _: Arc<str> = C.into();
}

#[test]
fn record_dir_defaults_to_data_and_empty_disables_it() {
    use crate::config::Config;
    use std::collections::HashMap;
    let cfg = |pairs: &[(&str, &str)]| {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(&vars)
    };
    let c = cfg(&[]).unwrap();
    assert_eq!(c.record_dir.as_deref(), Some(Path::new("data")));
    assert_eq!(c.record_max_bytes, 1024 << 20);
    assert_eq!(cfg(&[("RECORD_DIR", "")]).unwrap().record_dir, None);
    let c = cfg(&[("RECORD_DIR", "/tmp/r"), ("RECORD_MAX_MB", "0.5")]).unwrap();
    assert_eq!(c.record_dir.as_deref(), Some(Path::new("/tmp/r")));
    assert_eq!(c.record_max_bytes, 512 << 10);
    let err = cfg(&[("RECORD_MAX_MB", "0")]).unwrap_err();
    assert!(err.to_string().contains("RECORD_MAX_MB"), "{err}");
}

#[test]
fn the_writers_cached_trading_day_agrees_with_the_calendar_across_dst() {
    let mut w = Writer::new(RecorderConfig::new("unused"), counters());
    // Around both 2026 DST changes in Chicago, and back in time once (a clock step).
    for start in [
        "2026-03-06T00:00:00Z",
        "2026-10-30T00:00:00Z",
        "2026-03-07T12:00:00Z",
    ] {
        let t0 = chrono::DateTime::parse_from_rfc3339(start)
            .unwrap()
            .timestamp_micros();
        for i in 0..(4 * 24 * 60 / 7) {
            let us = t0 + i * 7 * 60_000_000;
            let at = chrono::DateTime::from_timestamp_micros(us).unwrap();
            assert_eq!(w.day_of(us), crate::cme::trading_day(at), "{at}");
        }
    }
}

#[test]
fn a_file_another_writer_holds_is_refused_not_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mtr.zst");
    let (_first, _) = RecordFile::open(&path, u64::MAX, 0, C, "MNQ").unwrap();
    let err = RecordFile::open(&path, u64::MAX, 0, C, "MNQ").unwrap_err();
    assert!(matches!(err, RecordError::Busy { .. }), "{err:?}");
    assert!(err.to_string().contains("its own RECORD_DIR"), "{err}");
}

#[test]
fn a_later_segment_of_another_version_ends_the_read_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mtr.zst");
    let evs = events(C, 5, 0);
    write(&path, &[&evs], u64::MAX);
    // A newer writer appended to the file.
    let mut raw = Vec::new();
    format::write_header(&mut raw, 0, C, "MNQ");
    raw[8..10].copy_from_slice(&2u16.to_le_bytes());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(zstd::bulk::compress(&raw, 3).unwrap());
    std::fs::write(&path, bytes).unwrap();
    let items: Vec<Result<RecordedEvent, RecordError>> = Recording::open(&path).unwrap().collect();
    assert_eq!(items.len(), 6);
    assert!(items[..5].iter().all(Result::is_ok));
    assert!(matches!(
        items[5],
        Err(RecordError::UnsupportedVersion { found: 2, .. })
    ));
}
