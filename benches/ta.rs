//! The cost of the `ta` indicators from Lua: one `:update` per indicator, an EMA-crossover step
//! (two EMAs and `ta.crossed_above`/`ta.crossed_below`), and for comparison the same EMA
//! written in Lua with the same argument checks, the alternative the Rust userdata was chosen
//! over. Each case is a Lua loop in a sandboxed strategy VM (instruction hook on, as in the
//! engine); the empty loop's cost is subtracted.
//!
//! Run: `cargo bench --bench ta` (prints the best of several reps, ns per call). Wall time on
//! a shared host is noisy; for instruction counts, run the bench binary under
//! `valgrind --tool=callgrind` once with `TA_BENCH_N=20000` and once with `TA_BENCH_N=120000`,
//! `TA_BENCH_CASE` naming one case (and once `TA_BENCH_CASE=none` for the empty loop), and
//! divide the difference in instructions by 100000.

use std::path::Path;
use std::time::Instant;

use moontick::script::sandbox::{self, Limits};

/// `x` walks like a price; `i` is the loop counter.
const CASES: &[(&str, &str, &str)] = &[
    ("ta.sma(20)", "local o = ta.sma(20)", "o:update(x)"),
    ("ta.ema(20)", "local o = ta.ema(20)", "o:update(x)"),
    ("ta.wma(20)", "local o = ta.wma(20)", "o:update(x)"),
    ("ta.rsi(14)", "local o = ta.rsi(14)", "o:update(x)"),
    (
        "ta.atr(14)",
        "local o = ta.atr(14)",
        "o:update(x + 1, x - 1, x)",
    ),
    (
        "ta.macd(12, 26, 9)",
        "local o = ta.macd(12, 26, 9)",
        "o:update(x)",
    ),
    (
        "ta.bbands(20, 2)",
        "local o = ta.bbands(20, 2)",
        "o:update(x)",
    ),
    ("ta.stdev(20)", "local o = ta.stdev(20)", "o:update(x)"),
    ("ta.highest(20)", "local o = ta.highest(20)", "o:update(x)"),
    ("ta.lowest(20)", "local o = ta.lowest(20)", "o:update(x)"),
    (
        "ta.vwap()",
        "local o = ta.vwap()",
        "o:update(x, 3, 1.7e9 + i)",
    ),
    (
        "ema:value()",
        "local o = ta.ema(20) o:update(1)",
        "o:value()",
    ),
    (
        "ta.crossed_above",
        "local f = ta.crossed_above",
        "f(x - 1, x, x - 0.5, x - 0.5)",
    ),
    (
        "EMA crossover step",
        "local fast, slow = ta.ema(9), ta.ema(21) local pf, ps",
        "local f, s = fast:update(x), slow:update(x) \
         if ta.crossed_above(pf, f, ps, s) then n = n + 1 elseif ta.crossed_below(pf, f, ps, s) then n = n - 1 end \
         pf, ps = f, s",
    ),
    ("EMA(20) in Lua, for comparison", LUA_EMA, "o:update(x)"),
];

/// The alternative to the userdata: a closure-based EMA with the same checks and messages.
const LUA_EMA: &str = r#"
local function ema(n)
  local k, seen, sum, v = 2 / (n + 1), 0, 0, nil
  local o = {}
  function o.update(_, x)
    if type(x) ~= "number" or x ~= x or x == math.huge or x == -math.huge then
      error("ta.ema:update: value must be a finite number (got " .. tostring(x) .. ")", 2)
    end
    if v then v = (x - v) * k + v return v end
    seen = seen + 1
    sum = sum + x
    if seen == n then v = sum / n end
    return v
  end
  function o.value() return v end
  return o
end
local o = ema(20)
"#;

fn main() {
    let n: u64 = std::env::var("TA_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let only = std::env::var("TA_BENCH_CASE").ok();
    let reps = if n >= 1_000_000 { 7 } else { 1 };
    // A budget no loop here reaches: the hook still counts, as in the engine.
    let limits = Limits {
        instructions_per_callback: 1 << 40,
        ..Limits::default()
    };
    let (lua, budget) = sandbox::new_vm(Path::new("/nonexistent"), limits).unwrap();
    moontick::script::ta::register(&lua).unwrap();
    lua.globals().set("N", n).unwrap();

    let time = |setup: &str, step: &str| -> f64 {
        let code = format!(
            "{setup}\nlocal x, n = 20000, 0\nfor i = 1, N do\n  x = x + ((i * 7919) % 13 - 6) * 0.25\n  {step}\nend\nreturn n"
        );
        let f = lua.load(code).into_function().unwrap();
        let mut best = f64::MAX;
        for _ in 0..reps {
            budget.reset();
            let t = Instant::now();
            f.call::<i64>(()).unwrap();
            best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
        best
    };
    let empty = time("", "");
    println!("{n} calls per case, best of {reps}; the empty loop ({empty:.1} ns) subtracted");
    println!("{:<32} {:>8}", "case", "ns/call");
    for (name, setup, step) in CASES {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let ns = time(setup, step) - empty;
        println!("{name:<32} {ns:>8.1}");
    }
}
