//! `bot.contract` and `bot.round_price`: the facts of a declared contract (tick size and value,
//! dollars per point) and prices snapped to its tick grid. Facts are asked of the engine once per
//! symbol and version, then kept: the engine resolves a symbol once per run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mlua::{Lua, MultiValue, Table, Value};

use super::args::{arg_error, opt_symbol, text};
use super::ctx::Ctx;
use crate::script::broker::{BotCall, BotReply, ContractView};

type Cache = Arc<Mutex<HashMap<String, ContractView>>>;

/// The facts of `symbol`, from the cache or the engine; `Err(reason)` when the engine has none.
fn facts(ctx: &Ctx, cache: &Cache, symbol: &str) -> Result<ContractView, String> {
    let key = symbol.to_ascii_uppercase();
    if let Some(c) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(c.clone());
    }
    match ctx.ask(BotCall::Contract {
        symbol: symbol.to_owned(),
    }) {
        BotReply::Contract(c) => {
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.insert(key, c.clone());
            Ok(c)
        }
        BotReply::Refused(r) => Err(r.reason),
        _ => Err("the engine gave no answer".to_owned()),
    }
}

fn contract_table(lua: &Lua, c: &ContractView) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 7)?;
    t.raw_set("id", c.id.as_str())?;
    t.raw_set("symbol", c.symbol.as_str())?;
    t.raw_set("name", c.name.as_str())?;
    t.raw_set("description", c.description.as_str())?;
    t.raw_set("tick_size", c.tick_size)?;
    t.raw_set("tick_value", c.tick_value)?;
    t.raw_set("point_value", c.point_value())?;
    Ok(t)
}

/// `nil, reason`.
fn none(lua: &Lua, reason: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        Value::String(lua.create_string(reason)?),
    ]))
}

pub(super) fn register(lua: &Lua, bot: &Table, ctx: &Arc<Ctx>) -> mlua::Result<()> {
    let cache: Cache = Arc::default();
    let (c, k) = (ctx.clone(), cache.clone());
    bot.raw_set(
        "contract",
        lua.create_function(move |lua, symbol: Value| {
            let symbol = match opt_symbol(lua, "bot.contract", &symbol)? {
                Some(s) => s,
                None => c
                    .default_symbol()
                    .ok_or_else(|| arg_error(lua, "bot.contract", "symbol is required"))?,
            };
            match facts(&c, &k, &symbol) {
                Ok(f) => Ok(MultiValue::from_vec(vec![Value::Table(contract_table(
                    lua, &f,
                )?)])),
                Err(reason) => none(lua, &reason),
            }
        })?,
    )?;

    let (c, k) = (ctx.clone(), cache);
    bot.raw_set(
        "round_price",
        lua.create_function(move |lua, (symbol, price): (Value, Value)| {
            let fname = "bot.round_price";
            let symbol = text(&symbol).ok_or_else(|| {
                arg_error(
                    lua,
                    fname,
                    "expects (symbol, price), like bot.round_price('MNQ', p)",
                )
            })?;
            let price = match price {
                Value::Integer(n) => n as f64,
                Value::Number(x) if x.is_finite() => x,
                _ => return Err(arg_error(lua, fname, "price must be a finite number")),
            };
            match facts(&c, &k, &symbol) {
                Ok(f) => Ok(MultiValue::from_vec(vec![Value::Number(
                    crate::money::on_grid(price, f.tick_size),
                )])),
                Err(reason) => none(lua, &reason),
            }
        })?,
    )?;
    Ok(())
}
