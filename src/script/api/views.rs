//! `bot.position`, `bot.orders`, `bot.quote`, `bot.account`, `bot.now`, `bot.exchange_time`
//! (alias `bot.chicago_time`): read-only views of the engine's state, as fresh Lua tables.

use std::sync::Arc;

use mlua::{Lua, Table, Value};

use super::args::{arg_error, opt_symbol};
use super::ctx::Ctx;
use crate::script::broker::{BotCall, BotReply, OrderView, PositionView};
use crate::script::events::Quote;

fn position_table(lua: &Lua, p: &PositionView) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 3)?;
    t.raw_set("size", p.size)?;
    t.raw_set("avg_price", p.avg_price)?;
    t.raw_set("open_pnl", p.open_pnl)?;
    Ok(t)
}

fn order_table(lua: &Lua, o: &OrderView) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 11)?;
    t.raw_set("id", o.id)?;
    t.raw_set("symbol", o.symbol.as_str())?;
    t.raw_set("side", o.side.as_str())?;
    t.raw_set("size", o.size)?;
    t.raw_set("type", o.order_type.as_str())?;
    t.raw_set("price", o.price)?;
    t.raw_set("stop_price", o.stop_price)?;
    t.raw_set("status", o.status.as_str())?;
    t.raw_set("tag", o.tag.as_deref())?;
    t.raw_set("kind", o.kind)?;
    t.raw_set("parent", o.parent)?;
    Ok(t)
}

/// A fresh table for a quote; the hot path in the runner reuses one instead.
pub fn quote_table(lua: &Lua, q: &Quote) -> mlua::Result<Table> {
    // Absent fields stay unset (nil), as in the hot path's trampoline.
    let t = lua.create_table_with_capacity(0, 11)?;
    t.raw_set("contract", &*q.contract)?;
    t.raw_set("symbol", &*q.symbol)?;
    t.raw_set("bid", q.bid)?;
    t.raw_set("ask", q.ask)?;
    t.raw_set("last", q.last)?;
    t.raw_set("volume", q.volume)?;
    t.raw_set("open", q.open)?;
    t.raw_set("high", q.high)?;
    t.raw_set("low", q.low)?;
    t.raw_set("change", q.change)?;
    t.raw_set("time", q.time_ms as f64 / 1000.0)?;
    Ok(t)
}

pub(super) fn register(lua: &Lua, bot: &Table, ctx: &Arc<Ctx>) -> mlua::Result<()> {
    let c = ctx.clone();
    bot.raw_set(
        "position",
        lua.create_function(move |lua, symbol: Value| {
            let symbol = match opt_symbol(lua, "bot.position", &symbol)? {
                Some(s) => s,
                None => c
                    .default_symbol()
                    .ok_or_else(|| arg_error(lua, "bot.position", "symbol is required"))?,
            };
            let p = match c.ask(BotCall::Position { symbol }) {
                BotReply::Position(p) => p,
                _ => PositionView::default(),
            };
            position_table(lua, &p)
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "orders",
        lua.create_function(move |lua, symbol: Value| {
            let symbol = opt_symbol(lua, "bot.orders", &symbol)?;
            let list = lua.create_table()?;
            if let BotReply::Orders(orders) = c.ask(BotCall::Orders { symbol }) {
                for (i, o) in orders.iter().enumerate() {
                    list.raw_set(i + 1, order_table(lua, o)?)?;
                }
            }
            Ok(list)
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "quote",
        lua.create_function(move |lua, symbol: Value| {
            let symbol = match opt_symbol(lua, "bot.quote", &symbol)? {
                Some(s) => s,
                None => c
                    .default_symbol()
                    .ok_or_else(|| arg_error(lua, "bot.quote", "symbol is required"))?,
            };
            match c.ask(BotCall::Quote { symbol }) {
                BotReply::Quote(Some(q)) => quote_table(lua, &q).map(Some),
                _ => Ok(None),
            }
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "account",
        lua.create_function(move |lua, ()| {
            let BotReply::Account(Some(a)) = c.ask(BotCall::Account) else {
                return Ok(None);
            };
            let t = lua.create_table_with_capacity(0, 4)?;
            t.raw_set("id", a.id)?;
            t.raw_set("name", a.name)?;
            t.raw_set("balance", a.balance)?;
            t.raw_set("can_trade", a.can_trade)?;
            Ok(Some(t))
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "now",
        lua.create_function(move |_, ()| Ok(c.clock.now_ms() as f64 / 1000.0))?,
    )?;

    // `bot.chicago_time` is the older name, kept for strategies that call it.
    for name in ["exchange_time", "chicago_time"] {
        let c = ctx.clone();
        let fname = format!("bot.{name}");
        bot.raw_set(
            name,
            lua.create_function(move |lua, ()| {
                crate::script::exchange_time::exchange_table(lua, &fname, c.clock.now_ms())
            })?,
        )?;
    }
    Ok(())
}
