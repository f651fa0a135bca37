//! `bot.bars(symbol, timeframe, n)`: the last `n` closed bars of a declared series, oldest
//! first, read straight from the engine's [`BarStore`](crate::bars::BarStore) on the strategy's
//! own thread (no trip through the engine loop).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use mlua::{Lua, Table, Value};

use super::args::{arg_error, int_in_range, text};
use super::ctx::Ctx;
use crate::bars::Timeframe;
use crate::script::bars_decl::MAX_HISTORY;

/// The Lua side of `bot.bars`: a per-VM cache of bar tables per series, so each closed bar
/// becomes a Lua table once, not on every call (fresh tables cost about 0.3 µs each, which
/// made 100 bars 30-60 µs). Cached bars are shared between calls, so they are read-only
/// proxies: reading a field or `pairs` works as on a plain table, writing one is an error that
/// says to copy the bar. Rust decides what the cache holds (see [`Mirror`]); this only appends
/// the new bars it is given, trims the oldest, and returns the newest `m` in a fresh list.
const CACHE: &str = r#"
local move, setmetatable, next, error = table.move, setmetatable, next, error
local caches = {}
local function read_only()
  error("a bar from bot.bars is read-only (shared between calls): copy the fields you change", 2)
end
return function(key, reset, trim, m, ...)
  local c = caches[key]
  if reset or not c then c = {}; caches[key] = c end
  local a, n = { ... }, #c
  for k = 1, #a, 6 do
    local d = { time = a[k], open = a[k + 1], high = a[k + 2], low = a[k + 3], close = a[k + 4], volume = a[k + 5] }
    n = n + 1
    c[n] = setmetatable({}, { __index = d, __newindex = read_only, __pairs = function() return next, d, nil end })
  end
  if trim > 0 then
    move(c, trim + 1, n, 1)
    for i = n - trim + 1, n do c[i] = nil end
    n = n - trim
  end
  return move(c, n - m + 1, n, 1, {})
end
"#;

/// What the Lua cache of one series holds: the open times of its bars, in order, and the
/// most bars a call asked for (the cache keeps twice that at most).
#[derive(Default)]
struct Mirror {
    id: i64,
    times: VecDeque<i64>,
    keep: usize,
}

pub(super) fn register(lua: &Lua, bot: &Table, ctx: &Arc<Ctx>) -> mlua::Result<()> {
    const NAME: &str = "bot.bars";
    let c = ctx.clone();
    let cached: mlua::Function = lua
        .load(CACHE)
        .set_name("=bot.bars")
        .set_mode(mlua::chunk::ChunkMode::Text)
        .eval()?;
    let mirrors: Mutex<HashMap<(String, Timeframe), Mirror>> = Mutex::default();
    bot.raw_set(
        "bars",
        lua.create_function(move |lua, (symbol, tf, n): (Value, Value, Value)| {
            let symbol = text(&symbol)
                .ok_or_else(|| arg_error(lua, NAME, "symbol must be a non-empty string"))?;
            let tf_name = text(&tf)
                .ok_or_else(|| arg_error(lua, NAME, "timeframe must be a string like \"5m\""))?;
            let tf = Timeframe::parse(&tf_name).map_err(|e| arg_error(lua, NAME, e))?;
            let n = match n {
                Value::Nil => MAX_HISTORY,
                v => int_in_range(&v, MAX_HISTORY as i64).ok_or_else(|| {
                    arg_error(
                        lua,
                        NAME,
                        format!("n must be a whole number from 1 to {MAX_HISTORY}"),
                    )
                })? as usize,
            };
            let declared = c
                .bar_series
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|(s, t)| *t == tf && s.eq_ignore_ascii_case(&symbol));
            if !declared {
                return Err(arg_error(
                    lua,
                    NAME,
                    format!(
                        "{symbol} {tf} is not declared in bars (add it to the strategy's bars)"
                    ),
                ));
            }
            let mut found = Vec::new();
            c.bars.last(&symbol, tf, n, &mut found);
            let Some(oldest) = found.first().map(|b| b.time_ms) else {
                return lua.create_table();
            };
            let mut guard = mirrors.lock().unwrap_or_else(|e| e.into_inner());
            let next_id = guard.len() as i64 + 1;
            let key = (symbol, tf);
            let m = guard.entry(key.clone()).or_insert_with(|| Mirror {
                id: next_id,
                ..Mirror::default()
            });
            m.keep = m.keep.max(found.len());
            // The store only ever appends, so the cache is a run of its bars. When the oldest
            // bar wanted is in it, the bars after the cache's newest are exactly the ones to
            // add; otherwise (it reaches further back, or starts after the cache, with bars in
            // between that the cache never saw) the cache is rebuilt from what was read.
            let reset = match (m.times.front(), m.times.back()) {
                (Some(first), Some(last)) => oldest < *first || oldest > *last,
                _ => true,
            };
            if reset {
                m.times.clear();
            }
            let newest = m.times.back().copied().unwrap_or(i64::MIN);
            let mut args = Vec::with_capacity(4 + 6);
            args.extend([
                Value::Integer(m.id),
                Value::Boolean(reset),
                Value::Integer(0),
                Value::Integer(found.len() as i64),
            ]);
            for b in found.iter().filter(|b| b.time_ms > newest) {
                m.times.push_back(b.time_ms);
                args.extend([
                    Value::Number(b.time_ms as f64 / 1000.0),
                    Value::Number(b.open),
                    Value::Number(b.high),
                    Value::Number(b.low),
                    Value::Number(b.close),
                    Value::Integer(b.volume),
                ]);
            }
            if m.times.len() > 2 * m.keep {
                let trim = m.times.len() - m.keep;
                m.times.drain(..trim);
                args[2] = Value::Integer(trim as i64);
            }
            drop(guard);
            let list = cached.call::<Table>(mlua::Variadic::from_iter(args));
            if list.is_err() {
                // Out of memory mid-way: the Lua cache may not hold what the mirror says.
                if let Some(m) = mirrors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&key)
                {
                    m.times.clear();
                }
            }
            list
        })?,
    )
}
