//! Tick-to-order over loopback: the simulator publishes a quote, its market hub sends it, the
//! engine hands it to a Lua strategy, `bot.buy` passes the risk guard, and the place request
//! arrives back at the simulator. One quote at a time, so each order belongs to one quote; the
//! simulator stamps the quote when it is published and the order when its request arrives.
//! Then sustained quotes per second into one strategy at a high quote rate.
//!
//! Last, the CPU our side spends per quote at 1,000 quotes/s, across all its threads (the
//! simulator runs on a runtime of its own, whose threads are not counted).
//!
//! `cargo bench --bench tick_to_order` (env `TICKS`, default 500; `FLOOD_SECS`, default 5;
//! `CPU_SECS`, default 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Target, env_num, thread_cpu_ns};
use hdrhistogram::Histogram;
use moontick::metrics::Metrics;
use moontick::sim::{SimConfig, Simulator};

mod common;

async fn engine(
    sim: &Simulator,
    dir: &std::path::Path,
    script: &str,
    metrics: Arc<Metrics>,
) -> moontick::engine::Engine {
    common::engine(&Target::of(sim), dir, script, metrics).await
}

const ORDERING: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q)
  -- A limit far below the market: it never fills, and is cancelled once open.
  bot.buy{ symbol = "MNQ", type = "limit", price = q.bid - 500, size = 1 }
end
function M.on_order(o)
  if o.status == "open" then bot.cancel(o.id) end
end
return M
"#;

const COUNTING_MNQ: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_start() state.quotes = 0 end
function M.on_quote(q) state.quotes = state.quotes + 1 end
return M
"#;

const COUNTING: &str = r#"
local M = { symbols = { "MNQ", "MES", "NQ", "ES" } }
function M.on_start() state.quotes = 0 end
function M.on_quote(q) state.quotes = state.quotes + 1 end
return M
"#;

async fn tick_to_order(ticks: u64) {
    let sim = Simulator::start(SimConfig {
        quote_rate: 0.0,
        rate_limits: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&sim, dir.path(), ORDERING, Arc::new(Metrics::new())).await;
    let mnq = sim.contract_id("MNQ").unwrap();
    let base = sim.touch(&mnq).unwrap().bid;
    // The subscription snapshot may already have produced an order: let it settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut missed = 0;
    let mut arrivals = sim.place_arrivals();
    for i in 0..ticks {
        let price = base + if i % 2 == 0 { 0.25 } else { 0.0 };
        arrivals.borrow_and_update();
        let sent = Instant::now();
        sim.set_price(&mnq, price);
        let arrived = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if arrivals.changed().await.is_err() {
                    return None;
                }
                if let Some(t) = *arrivals.borrow_and_update()
                    && t >= sent
                {
                    return Some(t);
                }
            }
        })
        .await
        .ok()
        .flatten();
        match arrived {
            Some(t) => hist
                .record(t.duration_since(sent).as_micros().max(1) as u64)
                .unwrap(),
            None => missed += 1,
        }
        // Let the cancel go out before the next tick so the two requests do not queue up.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "tick-to-order over loopback ({} orders, {missed} missed): p50 {} µs, p99 {} µs, max {} µs",
        hist.len(),
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.max()
    );
    engine.shutdown().await;
    sim.shutdown().await;
}

async fn flood(secs: u64) {
    // 25,000 quotes/s for each of the four contracts: 100,000/s offered to one strategy.
    let sim = Simulator::start(SimConfig {
        quote_rate: 25_000.0,
        rate_limits: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let engine = engine(&sim, dir.path(), COUNTING, Arc::clone(&metrics)).await;
    let received_before = metrics.quotes_received.get();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = started.elapsed();
    let received = metrics.quotes_received.get() - received_before;
    let conflated = metrics.feed_quotes_conflated.get();
    engine.shutdown().await;
    sim.shutdown().await;
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/bench.json")).unwrap(),
    )
    .unwrap();
    let handled = state["quotes"].as_f64().unwrap_or(0.0);
    println!(
        "sustained over {:.1} s, 100,000 quotes/s offered by the simulator on the same 2 cores: \
         {:.0}/s reached the engine loop ({conflated} conflated in the feed queue), {:.0}/s run \
         through one strategy's on_quote (the rest coalesced, latest per contract)",
        elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64(),
        handled / elapsed.as_secs_f64()
    );
}

/// CPU per quote at 1,000 quotes/s, socket to `on_quote`: every thread of ours (hub connection
/// and engine on the `client` runtime, the strategy's thread), none of the simulator's.
fn cpu_per_quote(secs: u64) {
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sim")
        .enable_all()
        .build()
        .unwrap();
    let workers = env_num("CLIENT_WORKERS", 2) as usize;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("client")
        .enable_all()
        .build()
        .unwrap();
    let sim = sim_rt
        .block_on(Simulator::start(SimConfig {
            quote_rate: 1_000.0,
            rate_limits: false,
            ..SimConfig::default()
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let ours = ["client", "strategy-"];
    let (cpu_ns, strategy_ns, quotes, elapsed) = client_rt.block_on(async {
        let engine = engine(&sim, dir.path(), COUNTING_MNQ, Arc::clone(&metrics)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (cpu0, lua0, q0, t0) = (
            thread_cpu_ns(&ours),
            thread_cpu_ns(&["strategy-"]),
            metrics.quotes_delivered.get(),
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let out = (
            thread_cpu_ns(&ours) - cpu0,
            thread_cpu_ns(&["strategy-"]) - lua0,
            metrics.quotes_delivered.get() - q0,
            t0.elapsed(),
        );
        engine.shutdown().await;
        out
    });
    sim_rt.block_on(sim.shutdown());
    let us = |ns: u64| ns as f64 / 1_000.0 / quotes.max(1) as f64;
    println!(
        "CPU per quote at 1,000 quotes/s offered (socket to on_quote, all our threads, over \
         {:.1} s): {:.1} µs per quote ({:.1} µs hub connection + engine, {:.1} µs strategy \
         thread), {:.2} % of one core ({quotes} quotes)",
        elapsed.as_secs_f64(),
        us(cpu_ns),
        us(cpu_ns - strategy_ns),
        us(strategy_ns),
        cpu_ns as f64 / elapsed.as_nanos() as f64 * 100.0
    );
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    );
    runtime.block_on(tick_to_order(env_num("TICKS", 500)));
    runtime.block_on(flood(env_num("FLOOD_SECS", 5)));
    drop(runtime);
    cpu_per_quote(env_num("CPU_SECS", 10));
}
