//! What recording costs, on a synthetic MNQ-like quote stream (a random walk on the tick grid,
//! every field a real quote carries):
//!
//! - `paced`: nanoseconds the feed spends per quote handing it to a running recorder at a busy
//!   but real rate (20,000 quotes/s for a second): mean and p99 of each call;
//! - `flood`: the same, quotes offered as fast as the tap takes them: the cost when the recorder
//!   thread is busy on the other core, and how many it had to drop;
//! - `write`: quotes per second one file is encoded and compressed at, and bytes per quote on
//!   disk;
//! - `decompress`: zstd alone over the same file, for comparison;
//! - `read`: quotes per second a [`Recording`] yields (what a backtest reads at).
//!
//! `cargo bench --bench record` (env `N`, quotes, default 2,000,000).

use std::time::Instant;

use moontick::feed::MarketEvent;
use moontick::feed::record::{
    RecordCounters, RecordFile, Recorded, Recorder, RecorderConfig, Recording,
};
use moontick::market::Quote;

fn quotes(n: usize) -> Vec<Quote> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut mid = 84_000i64; // ticks of 0.25
    let mut volume = 100_000i64;
    let t0 = 1_796_054_400_000i64;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            mid += (state % 3) as i64 - 1;
            let traded = state.is_multiple_of(4);
            if traded {
                volume += 1 + (state >> 8) as i64 % 3;
            }
            Quote {
                bid: Some(mid as f64 * 0.25),
                ask: Some((mid + 1) as f64 * 0.25),
                last: Some((mid + (state >> 4) as i64 % 2) as f64 * 0.25),
                volume: Some(volume),
                open: Some(20_950.25),
                high: Some(21_100.0),
                low: Some(20_900.5),
                change: Some((mid - 83_800) as f64 * 0.25),
                time_ms: t0 + i as i64 * 20,
                ..Quote::empty("CON.F.US.MNQ.Z25".into(), "MNQ".into())
            }
        })
        .collect()
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let qs = quotes(n);
    let dir = tempfile::tempdir().unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // paced: one quote every 50 µs, each call timed.
    let counters = RecordCounters::default();
    let recorder = Recorder::start(
        RecorderConfig::new(dir.path().join("paced")),
        counters.clone(),
    )
    .unwrap();
    let tap = recorder.tap();
    let paced = 20_000.min(n);
    let mut took: Vec<u64> = Vec::with_capacity(paced);
    let start = Instant::now();
    for (i, q) in qs[..paced].iter().enumerate() {
        let due = start + std::time::Duration::from_micros(50 * i as u64);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let e = MarketEvent::Quote(q.clone());
        let t = Instant::now();
        tap.record(&e);
        took.push(t.elapsed().as_nanos() as u64);
    }
    runtime.block_on(recorder.finish());
    took.sort_unstable();
    println!(
        "paced: 20,000 quotes/s: {:.0} ns mean, {} ns p50, {} ns p99 per quote handed to the \
         recorder; {} written, {} dropped",
        took.iter().sum::<u64>() as f64 / paced as f64,
        took[paced / 2],
        took[paced * 99 / 100],
        counters.written.get(),
        tap.dropped(),
    );

    // flood: the feed's side, with the recorder thread writing behind it.
    let counters = RecordCounters::default();
    let recorder = Recorder::start(
        RecorderConfig::new(dir.path().join("tap")),
        counters.clone(),
    )
    .unwrap();
    let tap = recorder.tap();
    let events: Vec<MarketEvent> = qs.iter().cloned().map(MarketEvent::Quote).collect();
    let start = Instant::now();
    for e in &events {
        tap.record(e);
    }
    let tap_ns = start.elapsed().as_nanos() as f64 / n as f64;
    runtime.block_on(recorder.finish());
    println!(
        "flood: {tap_ns:.0} ns per quote handed to the recorder, offered at {:.1} M quotes/s: {} \
         written, {} dropped (the queue was full)",
        1e3 / tap_ns,
        counters.written.get(),
        tap.dropped(),
    );

    // write: one file, frames of at most 1 MB of records.
    let path = dir.path().join("w.mtr.zst");
    let (mut file, _) = RecordFile::open(&path, u64::MAX, 0, "CON.F.US.MNQ.Z25", "MNQ").unwrap();
    let start = Instant::now();
    for (i, q) in qs.iter().enumerate() {
        file.push(i as i64, &Recorded::Quote(q.clone()));
        if file.pending_bytes() >= 1 << 20 {
            file.flush();
        }
    }
    file.flush();
    let secs = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "write: {:.2} M quotes/s; {:.1} bytes per quote on disk ({:.1} MB for {n} quotes)",
        n as f64 / secs / 1e6,
        bytes as f64 / n as f64,
        bytes as f64 / 1e6
    );

    // read: decompression alone, then decoding into quotes.
    let start = Instant::now();
    let raw = std::io::copy(
        &mut zstd::stream::read::Decoder::new(std::fs::File::open(&path).unwrap()).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
    println!(
        "decompress: {:.0} MB/s of records ({:.1} bytes per quote before compression), {:.2} M \
         quotes/s",
        raw as f64 / start.elapsed().as_secs_f64() / 1e6,
        raw as f64 / n as f64,
        n as f64 / start.elapsed().as_secs_f64() / 1e6
    );
    let start = Instant::now();
    let mut count = 0usize;
    let mut sum = 0.0;
    for e in Recording::open(&path).unwrap() {
        if let Recorded::Quote(q) = e.unwrap().event {
            sum += q.bid.unwrap_or(0.0);
            count += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, n);
    println!(
        "read: {:.2} M quotes/s (checksum {sum:.0})",
        n as f64 / secs / 1e6
    );
}
