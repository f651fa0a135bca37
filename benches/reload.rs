//! Hot reload: time from an editor-style save (write a temporary file, rename it over the
//! strategy) to the new version running, with quotes flowing every millisecond throughout; and
//! whether any quote was lost across the swap (`state.n` counts every `on_quote` in both
//! versions, and the host's coalescing counter says how many were merged).
//!
//! `cargo bench --bench reload` (env `RELOADS`, default 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use moontick::script::{Event, Host, HostConfig, MemoryBroker, Quote, SystemClock};

fn version(v: u32) -> String {
    format!(
        "local M = {{ symbols = {{ 'MNQ' }} }}\n\
         function M.on_start() state.n = state.n or 0 end\n\
         function M.on_quote(q) state.n = state.n + 1; state.version = {v} end\n\
         return M\n"
    )
}

fn quote(i: u64) -> Event {
    Event::Quote(Quote {
        contract: "CON.F.US.MNQ.Z26".into(),
        symbol: "MNQ".into(),
        bid: Some(20000.0 + (i % 8) as f64 * 0.25),
        ask: Some(20000.25 + (i % 8) as f64 * 0.25),
        last: Some(20000.0),
        volume: Some(i as i64),
        open: None,
        high: None,
        low: None,
        change: None,
        time_ms: 0,
    })
}

fn main() {
    let reloads: u32 = std::env::var("RELOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let strategies = dir.path().join("strategies");
    std::fs::create_dir_all(strategies.join("lib")).unwrap();
    let file = strategies.join("reload.lua");
    std::fs::write(&file, version(1)).unwrap();
    let mut config = HostConfig::new(&strategies);
    config.state_dir = Some(dir.path().join("state"));
    let host = Arc::new(
        Host::start(config, Arc::new(MemoryBroker::new()), Arc::new(SystemClock)).unwrap(),
    );
    host.watch().unwrap();

    // Quotes every millisecond from another thread, for the whole run.
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let (host, sent, stop) = (host.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                host.dispatch(quote(i));
                i += 1;
                sent.store(i, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000, 3).unwrap();
    for v in 2..(2 + reloads) {
        std::thread::sleep(Duration::from_millis(300));
        let before = host.strategy("reload").unwrap().generation;
        let tmp = strategies.join(".reload.lua.tmp");
        std::fs::write(&tmp, version(v)).unwrap();
        let saved = Instant::now();
        std::fs::rename(&tmp, &file).unwrap();
        while host.strategy("reload").unwrap().generation == before {
            assert!(
                saved.elapsed() < Duration::from_secs(10),
                "no reload within 10 s"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        hist.record(saved.elapsed().as_millis().max(1) as u64)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let status = host.strategy("reload").unwrap();
    let dropped = status.quotes_coalesced;
    let loads = status.generation;
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    host.shutdown();
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/reload.json")).unwrap(),
    )
    .unwrap();
    let handled = state["n"].as_u64().unwrap_or(0);
    println!(
        "save → new version running ({} reloads, 200 ms debounce included): p50 {} ms, max {} ms",
        hist.len(),
        hist.value_at_quantile(0.5),
        hist.max()
    );
    println!(
        "loads: {loads} for {} saves (the first load included)",
        reloads + 1
    );
    println!(
        "quotes: {sent} sent, {handled} handled across every version, {dropped} coalesced, {} lost",
        sent.saturating_sub(handled + dropped)
    );
}
