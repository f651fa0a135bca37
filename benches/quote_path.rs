//! The quote path from the simulator's market hub into one Lua strategy, measured end to end:
//!
//! - `every`: the highest rate at which the strategy gets every quote the hub sent (0 conflated
//!   in the feed queue, 0 coalesced in its mailbox, Lua's count equal to the hub's), with the
//!   simulator in this process (`every`) or in a `moontick sim` process (`every_ext`);
//! - `cpu`: CPU per quote at 1,000 quotes/s, every thread of this process (the engine; the
//!   simulator runs in a `moontick sim` process);
//! - `rss`: this process's resident set, sampled each second, while a `moontick sim` process
//!   offers 400,000 quotes/s;
//! - `floor`: what `cpu` cannot go below on this machine with this design: a bare tokio runtime
//!   reading one 200-byte message per ms from a loopback socket (another process writes it),
//!   alone and then waking a thread through a mutex and condvar per message, as the engine
//!   wakes a strategy. No decoding, no engine, no Lua.
//!
//! `cargo bench --bench quote_path` (env `PARTS`, default `every,every_ext,cpu,floor,rss`; `RATES`,
//! total quotes/s over four contracts, default `100000,200000,300000`; `SECS` per rate, default
//! 5; `CPU_SECS`, default 10; `FLOOD_RATE`, default 400000; `FLOOD_SECS`, default 60;
//! `RUNTIME=current_thread` for a one-thread runtime instead of `moontick run`'s).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{SimProcess, Target, engine, env_num, rss_kib, saved_number, self_cpu_ns};
use moontick::metrics::Metrics;
use moontick::sim::{SimConfig, Simulator};

const COUNTING: &str = r#"
local M = { symbols = { "MNQ", "MES", "NQ", "ES" } }
function M.on_start() state.quotes = 0 end
function M.on_quote(q) state.quotes = state.quotes + 1 end
return M
"#;

const COUNTING_MNQ: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_start() state.quotes = 0 end
function M.on_quote(q) state.quotes = state.quotes + 1 end
return M
"#;

/// The simulator under test: in this process or a child.
enum Sim {
    Here(Simulator),
    Child(SimProcess),
}

impl Sim {
    async fn start(external: bool, per_contract: f64) -> Sim {
        if external {
            Sim::Child(SimProcess::start(per_contract))
        } else {
            let sim = Simulator::start(SimConfig {
                quote_rate: per_contract,
                rate_limits: false,
                ..SimConfig::default()
            })
            .await
            .unwrap();
            Sim::Here(sim)
        }
    }

    fn target(&self) -> Target {
        match self {
            Sim::Here(s) => Target::of(s),
            Sim::Child(p) => p.target(),
        }
    }

    async fn quotes_sent(&self) -> u64 {
        match self {
            Sim::Here(s) => s.quotes_sent(),
            Sim::Child(p) => p.quotes_sent().await,
        }
    }

    async fn stop_quotes(&self) {
        match self {
            Sim::Here(s) => s.freeze_quotes(true),
            Sim::Child(p) => p.quotes_off().await,
        }
    }

    async fn shutdown(self) {
        if let Sim::Here(s) = self {
            s.shutdown().await;
        }
    }
}

/// One run at `total` quotes/s over four contracts: `true` when every quote the hub sent
/// reached `on_quote`.
async fn every(external: bool, total: u64, secs: u64) -> bool {
    let sim = Sim::start(external, total as f64 / 4.0).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let engine = engine(&sim.target(), dir.path(), COUNTING, Arc::clone(&metrics)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (sent0, t0) = (sim.quotes_sent().await, Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (sent1, elapsed) = (sim.quotes_sent().await, t0.elapsed());
    sim.stop_quotes().await;
    // What the hub already wrote drains through; nothing new is written.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = sim.quotes_sent().await;
    let statuses = engine.shutdown().await;
    sim.shutdown().await;
    let lua = saved_number(dir.path(), "quotes") as u64;
    let conflated = metrics.feed_quotes_conflated.get();
    let coalesced: u64 = statuses.iter().map(|s| s.quotes_coalesced).sum();
    let all = lua == sent && conflated == 0 && coalesced == 0;
    println!(
        "  {} {total}/s offered: hub sent {:.0}/s over {:.1} s; {sent} sent in all, {lua} \
         counted in Lua, {conflated} conflated in the feed queue, {coalesced} coalesced in the \
         mailbox: {}",
        if external {
            "sim process,"
        } else {
            "in-process, "
        },
        (sent1 - sent0) as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        if all { "EVERY quote" } else { "quotes LOST" }
    );
    all
}

/// CPU per quote at 1,000 quotes/s (one contract), the simulator in its own process.
async fn cpu(secs: u64) {
    let sim = SimProcess::start(1_000.0);
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let engine = engine(
        &sim.target(),
        dir.path(),
        COUNTING_MNQ,
        Arc::clone(&metrics),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let threads0 = common::cpu_by_thread();
    let (cpu0, sim0, q0, t0) = (
        self_cpu_ns(),
        sim.cpu_secs(),
        metrics.quotes_delivered.get(),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu_ns = self_cpu_ns() - cpu0;
    let threads = common::cpu_by_thread();
    let quotes = metrics.quotes_delivered.get() - q0;
    let elapsed = t0.elapsed();
    let sim_secs = sim.cpu_secs() - sim0;
    engine.shutdown().await;
    let us = |ns: u64| ns as f64 / 1_000.0 / quotes.max(1) as f64;
    let by_thread: Vec<String> = threads
        .iter()
        .map(|(name, ns)| (name, ns - threads0.get(name).copied().unwrap_or(0)))
        .filter(|(_, ns)| us(*ns) >= 0.05)
        .map(|(name, ns)| format!("{name} {:.1}", us(ns)))
        .collect();
    println!(
        "  CPU per quote at 1,000 quotes/s over {:.1} s ({quotes} quotes into on_quote): \
         {:.1} µs, every thread of the engine process (getrusage), {:.2} % of one core; by \
         thread (µs): {}; the simulator process: {:.1} µs per quote",
        elapsed.as_secs_f64(),
        us(cpu_ns),
        cpu_ns as f64 / elapsed.as_nanos() as f64 * 100.0,
        by_thread.join(", "),
        sim_secs * 1e6 / quotes.max(1) as f64
    );
}

/// RSS of this process (the engine) each second while a simulator process floods it.
async fn rss(total: u64, secs: u64) {
    let sim = SimProcess::start(total as f64 / 4.0);
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let engine = engine(&sim.target(), dir.path(), COUNTING, Arc::clone(&metrics)).await;
    let (sent0, t0) = (sim.quotes_sent().await, Instant::now());
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for _ in 0..=secs {
        tick.tick().await;
        samples.push(rss_kib());
    }
    let sent = sim.quotes_sent().await - sent0;
    let elapsed = t0.elapsed();
    let received = metrics.quotes_received.get();
    let conflated = metrics.feed_quotes_conflated.get();
    let statuses = engine.shutdown().await;
    let coalesced: u64 = statuses.iter().map(|s| s.quotes_coalesced).sum();
    let lua = saved_number(dir.path(), "quotes");
    let mib = |k: u64| k as f64 / 1024.0;
    let every10: Vec<String> = samples
        .iter()
        .step_by(10)
        .map(|k| format!("{:.1}", mib(*k)))
        .collect();
    println!(
        "  RSS of the engine process, {total} quotes/s offered for {secs} s: min {:.1} MiB, \
         max {:.1} MiB, last {:.1} MiB (every 10 s: {}); hub sent {:.0}/s, engine took {:.0}/s \
         ({conflated} conflated), Lua ran on_quote {:.0}/s ({coalesced} coalesced)",
        mib(*samples[1..].iter().min().unwrap_or(&0)),
        mib(*samples.iter().max().unwrap()),
        mib(*samples.last().unwrap()),
        every10.join(", "),
        sent as f64 / elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64(),
        lua / elapsed.as_secs_f64(),
    );
}

/// The `floor` part's writer, in a process of its own (this binary again): one 200-byte message
/// per ms to `addr`, until the reader goes away.
fn floor_writer(addr: &str) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let start = Instant::now();
    for i in 1u64.. {
        let due = start + Duration::from_millis(i);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if s.write_all(&[b'x'; 200]).is_err() {
            return;
        }
    }
}

/// CPU per message of the bare read (and read + thread wake-up) at 1,000 messages/s.
async fn floor(secs: u64, wake: bool) {
    use std::sync::{Condvar, Mutex};
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut writer = std::process::Command::new(std::env::current_exe().unwrap())
        .env("FLOOR_WRITE_TO", listener.local_addr().unwrap().to_string())
        .spawn()
        .unwrap();
    let (mut socket, _) = listener.accept().await.unwrap();
    // (messages waiting, the thread is asleep)
    let shared = Arc::new((Mutex::new((0u64, false)), Condvar::new()));
    let theirs = Arc::clone(&shared);
    std::thread::spawn(move || {
        let (lock, cv) = &*theirs;
        let mut g = lock.lock().unwrap();
        loop {
            while g.0 == 0 {
                g.1 = true;
                g = cv.wait(g).unwrap();
                g.1 = false;
            }
            g.0 = 0;
        }
    });
    let mut buf = vec![0u8; 16 * 1024];
    let (mut reads, mut start) = (0u64, None);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs + 1) {
        if socket.read(&mut buf).await.unwrap() == 0 {
            break;
        }
        reads += 1;
        if wake {
            let (lock, cv) = &*shared;
            let mut g = lock.lock().unwrap();
            g.0 += 1;
            if g.1 {
                cv.notify_one();
            }
        }
        // The first second warms up.
        if start.is_none() && t0.elapsed() >= Duration::from_secs(1) {
            start = Some((self_cpu_ns(), reads));
        }
    }
    let (cpu0, reads0) = start.unwrap_or((self_cpu_ns(), reads));
    let (cpu, n) = (self_cpu_ns() - cpu0, (reads - reads0).max(1));
    writer.kill().unwrap();
    let _ = writer.wait();
    println!(
        "  floor at 1,000 messages/s over {secs} s: {:.1} µs CPU per message, {} ({n} reads)",
        cpu as f64 / 1_000.0 / n as f64,
        if wake {
            "socket read + one thread woken by a condvar"
        } else {
            "socket read only"
        }
    );
}

fn main() {
    if let Ok(addr) = std::env::var("FLOOR_WRITE_TO") {
        return floor_writer(&addr);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let parts = std::env::var("PARTS").unwrap_or_else(|_| "every,every_ext,cpu,floor,rss".into());
    let rates: Vec<u64> = std::env::var("RATES")
        .unwrap_or_else(|_| "100000,200000,300000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let secs = env_num("SECS", 5);
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    );
    // The runtime `moontick run` uses, unless `RUNTIME` says otherwise.
    let runtime = common::runtime();
    for part in parts.split(',') {
        match part.trim() {
            p @ ("every" | "every_ext") => {
                println!("every quote into one strategy ({p}):");
                for &r in &rates {
                    runtime.block_on(every(p == "every_ext", r, secs));
                }
            }
            "cpu" => runtime.block_on(cpu(env_num("CPU_SECS", 10))),
            "floor" => {
                runtime.block_on(floor(env_num("CPU_SECS", 10), false));
                runtime.block_on(floor(env_num("CPU_SECS", 10), true));
            }
            "rss" => runtime.block_on(rss(
                env_num("FLOOD_RATE", 400_000),
                env_num("FLOOD_SECS", 60),
            )),
            other => eprintln!("unknown part {other:?}"),
        }
    }
}
