//! Tick-to-order over loopback: the simulator publishes a quote, its market hub sends it, the
//! engine hands it to a Lua strategy, `bot.buy` passes the risk guard, and the place request
//! arrives back at the simulator. One quote at a time, so each order belongs to one quote; the
//! simulator stamps the quote when it is published and the order when its request arrives.
//! Quote rates and CPU per quote are `benches/quote_path.rs`.
//!
//! `cargo bench --bench tick_to_order` (env `TICKS`, default 500; `RUNTIME=current_thread`
//! runs engine and simulator on one thread instead of `moontick run`'s worker per core).

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Target, env_num};
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

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = common::runtime();
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    );
    runtime.block_on(tick_to_order(env_num("TICKS", 500)));
}
