//! Bars: `bot.bars("MNQ", "1m", 100)` called from Lua (100 closed bars out of the shared store
//! into fresh Lua tables, on the strategy's own thread), and the aggregator's cost per trade.
//!
//! Run: `cargo bench --bench bars`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moontick::bars::{Aggregator, Bar, BarStore, Timeframe};
use moontick::script::{BotCall, BotReply, Broker, Host, HostConfig, SystemClock};

/// Notes the time of every `bot.position` call: the strategy brackets its loops with them.
#[derive(Default)]
struct Marks(Mutex<Vec<Instant>>);

impl Broker for Marks {
    fn answer(&self, _: &str, call: BotCall) -> BotReply {
        match call {
            BotCall::Position { .. } => {
                self.0.lock().unwrap().push(Instant::now());
                BotReply::Position(Default::default())
            }
            _ => BotReply::Done,
        }
    }
}

// Each round runs inside one callback, under the 50 M instruction budget (building 100 bar
// tables takes about 2,000 Lua instructions).
const CALLS: usize = 2_000;
const ROUNDS: usize = 7;

fn strategy() -> String {
    format!(
        r#"
local M = {{ symbols = {{ "MNQ" }}, bars = {{ "1m" }} }}
function M.on_start()
  for r = 1, {ROUNDS} do
    bot.position("MNQ")
    for i = 1, {CALLS} do
      local b = bot.bars("MNQ", "1m", 100)
      if #b ~= 100 then error("expected 100 bars, got " .. #b) end
    end
    bot.position("MNQ")
  end
end
return M
"#
    )
}

fn bot_bars() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bench.lua"), strategy()).unwrap();
    let store = BarStore::new();
    let contract: Arc<str> = "CON.F.US.MNQ.Z25".into();
    store.name("MNQ", &contract);
    let tf = Timeframe::parse("1m").unwrap();
    let series = store.ensure(&contract, tf, 500);
    for i in 0..500 {
        let p = 21_000.0 + (i % 17) as f64 * 0.25;
        series.push(Bar {
            time_ms: 1_764_600_000_000 + i * 60_000,
            open: p,
            high: p + 1.0,
            low: p - 1.0,
            close: p + 0.5,
            volume: 100 + i,
        });
    }
    let marks = Arc::new(Marks::default());
    let mut cfg = HostConfig::new(dir.path());
    cfg.bars = store;
    cfg.watchdog = Duration::from_secs(60);
    let host = Host::start(cfg, marks.clone(), Arc::new(SystemClock)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while marks.0.lock().unwrap().len() < 2 * ROUNDS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = host.strategy("bench").unwrap();
    host.shutdown();
    let t = marks.0.lock().unwrap().clone();
    assert_eq!(
        t.len(),
        2 * ROUNDS,
        "the strategy ran every round: {status:?}"
    );
    let mut per_call: Vec<f64> = t
        .chunks(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e6 / CALLS as f64)
        .collect();
    per_call.sort_by(f64::total_cmp);
    println!(
        "bot.bars(\"MNQ\", \"1m\", 100) from Lua: best {:.1} µs, median {:.1} µs per call ({ROUNDS} rounds of {CALLS}; target ≤ 20 µs)",
        per_call[0],
        per_call[ROUNDS / 2]
    );
}

fn aggregator() {
    const TRADES: i64 = 5_000_000;
    for tf in ["1s", "1m", "1d"] {
        let mut agg = Aggregator::new(Timeframe::parse(tf).unwrap());
        let mut closed = Vec::with_capacity(1024);
        let mut sum = 0.0;
        let start = Instant::now();
        for i in 0..TRADES {
            // A trade every 10 ms on a walk of quarter ticks.
            let price = 21_000.0 + ((i * 7919) % 41) as f64 * 0.25;
            agg.trade(price, 1 + i % 3, 1_764_600_000_000 + i * 10, &mut closed);
            if closed.len() >= 1000 {
                sum += closed.iter().map(|b| b.close).sum::<f64>();
                closed.clear();
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / TRADES as f64;
        std::hint::black_box(sum);
        println!("aggregator {tf}: {ns:.1} ns per trade ({TRADES} trades)");
    }
}

fn main() {
    aggregator();
    bot_bars();
}
