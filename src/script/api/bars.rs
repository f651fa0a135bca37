//! `bot.bars(symbol, timeframe, n)`: the last `n` closed bars of a declared series, oldest
//! first, read straight from the engine's [`BarStore`](crate::bars::BarStore) on the strategy's
//! own thread (no trip through the engine loop).

use std::sync::Arc;

use mlua::{Lua, Table, Value};

use super::args::{arg_error, int_in_range, text};
use super::ctx::Ctx;
use crate::bars::{Bar, Timeframe};
use crate::script::bars_decl::MAX_HISTORY;

/// The field names of a bar table, interned once per VM: setting a field by a ready Lua string
/// skips hashing and interning the name for every bar.
struct Keys {
    time: mlua::LuaString,
    open: mlua::LuaString,
    high: mlua::LuaString,
    low: mlua::LuaString,
    close: mlua::LuaString,
    volume: mlua::LuaString,
}

impl Keys {
    fn new(lua: &Lua) -> mlua::Result<Self> {
        Ok(Keys {
            time: lua.create_string("time")?,
            open: lua.create_string("open")?,
            high: lua.create_string("high")?,
            low: lua.create_string("low")?,
            close: lua.create_string("close")?,
            volume: lua.create_string("volume")?,
        })
    }

    fn table(&self, lua: &Lua, b: &Bar) -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(0, 6)?;
        t.raw_set(&self.time, b.time_ms as f64 / 1000.0)?;
        t.raw_set(&self.open, b.open)?;
        t.raw_set(&self.high, b.high)?;
        t.raw_set(&self.low, b.low)?;
        t.raw_set(&self.close, b.close)?;
        t.raw_set(&self.volume, b.volume)?;
        Ok(t)
    }
}

pub(super) fn register(lua: &Lua, bot: &Table, ctx: &Arc<Ctx>) -> mlua::Result<()> {
    const NAME: &str = "bot.bars";
    let c = ctx.clone();
    let keys = Keys::new(lua)?;
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
            let list = lua.create_table_with_capacity(found.len(), 0)?;
            for (i, b) in found.iter().enumerate() {
                list.raw_set(i + 1, keys.table(lua, b)?)?;
            }
            Ok(list)
        })?,
    )
}
