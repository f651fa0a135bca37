//! Quote delivery into a Lua strategy: latency from `Host::dispatch` to `bot.buy` being refused
//! inside `on_quote` (cross-thread, as in the engine), quotes per second through one strategy
//! with none coalesced, and `on_quote` calls per second under a producer that never waits.
//!
//! Run: `cargo bench --bench script_quote`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use moontick::script::{
    BotCall, BotReply, Broker, Event, Host, HostConfig, Quote, Refusal, SystemClock,
};

/// Refuses every order and notes when the last refusal happened.
struct Refuser {
    base: Instant,
    count: AtomicU64,
    last_ns: AtomicU64,
}

impl Broker for Refuser {
    fn answer(&self, _: &str, call: BotCall) -> BotReply {
        match call {
            BotCall::Submit(_) => {
                self.last_ns
                    .store(self.base.elapsed().as_nanos() as u64, Ordering::Release);
                self.count.fetch_add(1, Ordering::Release);
                BotReply::Refused(Refusal::new("max position reached"))
            }
            BotCall::Position { .. } => BotReply::Position(Default::default()),
            BotCall::Orders { .. } => BotReply::Orders(Vec::new()),
            BotCall::Quote { .. } => BotReply::Quote(None),
            BotCall::Account => BotReply::Account(None),
            _ => BotReply::Done,
        }
    }
}

const STRATEGY: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q)
  if q.bid < 0 then
    -- Busy for a while so that the benchmark can queue a backlog behind this quote.
    local until_t = bot.now() + 1.0
    while bot.now() < until_t do end
  elseif q.ask > q.bid then
    local handle, reason = bot.buy{ size = 1, type = "limit", price = q.bid, tag = "bench" }
    if handle then error("expected a refusal") end
  end
end
return M
"#;

fn quote(contract: &Arc<str>, symbol: &Arc<str>, i: u64) -> Event {
    let bid = 20_000.0 + (i % 100) as f64 * 0.25;
    Event::Quote(Quote {
        contract: contract.clone(),
        symbol: symbol.clone(),
        bid: Some(bid),
        ask: Some(bid + 0.25),
        last: Some(bid),
        volume: Some(i as i64),
        open: None,
        high: None,
        low: None,
        change: None,
        time_ms: 1_700_000_000_000 + i as i64,
    })
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bench.lua"), STRATEGY).unwrap();
    let broker = Arc::new(Refuser {
        base: Instant::now(),
        count: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
    });
    // Bounds no run reaches: every quote must reach `on_quote`, so the backlog measures the
    // delivery path itself.
    let mut cfg = HostConfig::new(tmp.path());
    cfg.quote_backlog = usize::MAX;
    cfg.quote_backlog_age = Duration::from_secs(3600);
    let host = Host::start(cfg, broker.clone(), Arc::new(SystemClock)).unwrap();
    let contract: Arc<str> = "CON.F.US.MNQ.Z25".into();
    let symbol: Arc<str> = "MNQ".into();

    // Latency: one quote at a time, waiting for its refusal before sending the next.
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    // SCRIPT_BENCH_SCALE=10 runs a tenth of the work, for profiling under callgrind.
    let scale: u64 = std::env::var("SCRIPT_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let (warmup, samples) = (20_000u64 / scale, 200_000u64 / scale);
    for i in 0..warmup + samples {
        let before = broker.count.load(Ordering::Acquire);
        let t0 = broker.base.elapsed().as_nanos() as u64;
        host.dispatch(quote(&contract, &symbol, i));
        while broker.count.load(Ordering::Acquire) == before {
            std::hint::spin_loop();
        }
        if i >= warmup {
            let t1 = broker.last_ns.load(Ordering::Acquire);
            hist.record(t1.saturating_sub(t0).max(1)).unwrap();
        }
    }
    println!("dispatch -> on_quote -> bot.buy refused (cross-thread), {samples} samples:");
    for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
        println!(
            "  {label:>6}: {:>8.2} us",
            hist.value_at_quantile(q) as f64 / 1000.0
        );
    }
    println!("  {:>6}: {:>8.2} us", "max", hist.max() as f64 / 1000.0);

    // Throughput: a backlog of quotes on one contract queued while the strategy is busy, then
    // timed from its first refusal to its last; none may coalesce.
    let backlog = 200_000u64 / scale;
    let base = broker.count.load(Ordering::Acquire);
    let busy = Event::Quote(Quote {
        bid: Some(-1.0),
        ..match quote(&contract, &symbol, 0) {
            Event::Quote(q) => q,
            _ => unreachable!(),
        }
    });
    host.dispatch(busy);
    for i in 0..backlog {
        host.dispatch(quote(&contract, &symbol, i));
    }
    let queued_at = Instant::now();
    while broker.count.load(Ordering::Acquire) == base {
        std::thread::sleep(Duration::from_micros(200));
    }
    let t0 = Instant::now();
    assert!(
        t0 - queued_at > Duration::from_millis(10),
        "backlog was not queued while busy; raise the busy time"
    );
    while broker.count.load(Ordering::Acquire) < base + backlog {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let coalesced = host.status()[0].quotes_coalesced;
    assert_eq!(coalesced, 0, "every quote must reach on_quote");
    println!(
        "backlog of {backlog} quotes on one contract through one strategy, none coalesced \
         (on_quote + refused bot.buy each):"
    );
    println!(
        "  {:>12.0} quotes/s ({:.2} us per quote)",
        backlog as f64 / elapsed,
        elapsed * 1e6 / backlog as f64
    );

    let last = host.shutdown();
    assert_eq!(last[0].quotes_coalesced, 0);

    // Flood, with the default bounds: the producer never waits; the strategy runs flat out and
    // quotes coalesce once its backlog passes the bound.
    let host = Host::start(
        HostConfig::new(tmp.path()),
        broker.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let start_count = broker.count.load(Ordering::Acquire);
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < Duration::from_secs(3) / scale as u32 {
        for _ in 0..1000 {
            host.dispatch(quote(&contract, &symbol, sent));
            sent += 1;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let handled = broker.count.load(Ordering::Acquire) - start_count;
    println!(
        "flooding producer for {elapsed:.1} s on one contract (both threads compete for 2 cores):"
    );
    println!("  sent      {:>12.0} quotes/s", sent as f64 / elapsed);
    println!("  on_quote  {:>12.0} calls/s", handled as f64 / elapsed);
    let last = host.shutdown();
    println!(
        "  coalesced {:>12} quotes (past the default bound, latest per contract)",
        last[0].quotes_coalesced
    );
}
