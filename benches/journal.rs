//! What a fill costs the engine loop beside trading: appending its line to the trade journal
//! (one `write` on an O_APPEND file) and putting its event on the broadcast (with a subscriber
//! that never reads, as a hung notifier would be).
//!
//! `cargo bench --bench journal` (env `FILLS`, default 20000).

use std::time::Instant;

use chrono::Utc;
use hdrhistogram::Histogram;
use moontick::engine::{EngineEvent, EventBus, FillRecord};
use moontick::journal::Journal;

fn fill(i: i64) -> FillRecord {
    FillRecord {
        time: Utc::now(),
        strategy: "breakout".into(),
        account_id: 10001,
        contract: "CON.F.US.MNQ.Z25".into(),
        symbol: "MNQ".into(),
        side: if i % 2 == 0 { "buy" } else { "sell" },
        size: 1,
        price: 21000.25 + (i % 8) as f64 * 0.25,
        tick_size: 0.25,
        pnl: (i % 2 == 1).then_some(12.5),
        fees: 0.37,
        commissions: 0.0,
        order_id: 1_000_000 + i,
        fill_id: 5_000_000 + i,
        tag: Some("breakout long, \"A\"".into()),
    }
}

fn report(what: &str, h: &Histogram<u64>) {
    println!(
        "{what}: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} samples)",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        h.len()
    );
}

fn main() {
    let fills: i64 = std::env::var("FILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let mut journal = Journal::new(tmp.path().join("journal"));
    let bus = EventBus::default();
    let _never_reads = bus.subscribe();
    let mut append = Histogram::<u64>::new(3).unwrap();
    let mut send = Histogram::<u64>::new(3).unwrap();
    for i in 0..fills {
        let f = fill(i);
        let t = Instant::now();
        journal.append(&f).expect("journal append");
        append.record(t.elapsed().as_nanos() as u64).unwrap();
        let t = Instant::now();
        bus.send(EngineEvent::Fill(f));
        send.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    report("journal append", &append);
    report("event broadcast (subscriber never reads)", &send);
}
