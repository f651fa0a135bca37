//! `bot.bars(symbol, timeframe, n)`: the last `n` closed bars of a declared series, oldest
//! first, read straight from the engine's [`BarStore`](crate::bars::BarStore) on the strategy's
//! own thread (no trip through the engine loop).

use std::sync::Arc;

use mlua::{Lua, Table, Value};

use super::args::{arg_error, int_in_range, text};
use super::ctx::Ctx;
use crate::bars::Timeframe;
use crate::script::bars_decl::MAX_HISTORY;

/// Builds the result in Lua from the bars' numbers passed as arguments: one call into Lua
/// instead of seven protected API calls per bar (with the sandbox's memory limit on, mlua runs
/// each table creation and field store under its own `pcall`, about 15 times the cost).
const BUILD: &str = r#"
return function(...)
  local a, out, k = { ... }, {}, 1
  for i = 1, #a // 6 do
    out[i] = { time = a[k], open = a[k + 1], high = a[k + 2], low = a[k + 3], close = a[k + 4], volume = a[k + 5] }
    k = k + 6
  end
  return out
end
"#;

pub(super) fn register(lua: &Lua, bot: &Table, ctx: &Arc<Ctx>) -> mlua::Result<()> {
    const NAME: &str = "bot.bars";
    let c = ctx.clone();
    let build: mlua::Function = lua
        .load(BUILD)
        .set_name("=bot.bars")
        .set_mode(mlua::chunk::ChunkMode::Text)
        .eval()?;
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
            let mut args = Vec::with_capacity(found.len() * 6);
            for b in &found {
                args.extend([
                    Value::Number(b.time_ms as f64 / 1000.0),
                    Value::Number(b.open),
                    Value::Number(b.high),
                    Value::Number(b.low),
                    Value::Number(b.close),
                    Value::Integer(b.volume),
                ]);
            }
            build.call::<Table>(mlua::Variadic::from_iter(args))
        })?,
    )
}
