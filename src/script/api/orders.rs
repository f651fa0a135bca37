//! `bot.buy`, `bot.sell`, `bot.cancel`, `bot.modify`, `bot.flatten`, `bot.halt`: the calls that
//! change orders, each checked and turned into one [`BotCall`].

use std::sync::Arc;

use mlua::{Lua, MultiValue, Table, Value};

use super::args::{
    MAX_ID, MAX_PRICE, MAX_SIZE, MAX_TEXT, MAX_TICKS, arg_error, int_in_range, opt_symbol,
    positive_num, text,
};
use super::ctx::Ctx;
use crate::script::broker::{BotCall, BotReply, OrderChange, OrderIntent, OrderType, Refusal};
use crate::script::events::Side;
use crate::script::sandbox::caller_location;

fn refused(lua: &Lua, r: &Refusal) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        Value::String(lua.create_string(&r.reason)?),
    ]))
}

/// `true`, or `nil, reason`.
fn done(lua: &Lua, reply: BotReply) -> mlua::Result<MultiValue> {
    match reply {
        BotReply::Refused(r) => refused(lua, &r),
        BotReply::Done => Ok(MultiValue::from_vec(vec![Value::Boolean(true)])),
        _ => refused(lua, &Refusal::new("the engine gave no answer")),
    }
}

const ORDER_FIELDS: &[&str] = &[
    "symbol",
    "size",
    "type",
    "price",
    "stop_price",
    "trail_price",
    "stop_loss_ticks",
    "take_profit_ticks",
    "tag",
];

fn parse_intent(lua: &Lua, ctx: &Ctx, side: Side, args: Value) -> mlua::Result<OrderIntent> {
    let fname = match side {
        Side::Buy => "bot.buy",
        Side::Sell => "bot.sell",
    };
    let Value::Table(t) = args else {
        return Err(arg_error(
            lua,
            fname,
            "expects a table, like bot.buy{size=1}",
        ));
    };
    // One pass over the table both finds the fields and rejects misspelt ones; looking each
    // field up by name instead cost most of a refused `bot.buy` (callgrind).
    let mut fields: [Value; ORDER_FIELDS.len()] = Default::default();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let slot = match &k {
            Value::String(s) => {
                let b = s.as_bytes();
                ORDER_FIELDS.iter().position(|f| f.as_bytes() == &b[..])
            }
            _ => None,
        };
        match slot {
            Some(i) => fields[i] = v,
            None => {
                let key: String = k
                    .to_string()
                    .unwrap_or_else(|_| "?".into())
                    .chars()
                    .take(40)
                    .collect();
                return Err(arg_error(
                    lua,
                    fname,
                    format!(
                        "unknown field '{key}' (fields: {})",
                        ORDER_FIELDS.join(", ")
                    ),
                ));
            }
        }
    }
    let get = |k: &str| -> &Value {
        let i = ORDER_FIELDS.iter().position(|f| *f == k).unwrap_or(0);
        &fields[i]
    };
    let symbol = match opt_symbol(lua, fname, get("symbol"))? {
        Some(s) => s,
        None => ctx.default_symbol().ok_or_else(|| {
            arg_error(
                lua,
                fname,
                "symbol is required (the strategy declares no symbols)",
            )
        })?,
    };
    let size = int_in_range(get("size"), MAX_SIZE).ok_or_else(|| {
        arg_error(
            lua,
            fname,
            format!("size must be a whole number from 1 to {MAX_SIZE}"),
        )
    })?;
    let order_type = match get("type") {
        Value::Nil => OrderType::Market,
        v => text(v)
            .as_deref()
            .and_then(OrderType::parse)
            .ok_or_else(|| {
                arg_error(
                    lua,
                    fname,
                    "type must be one of market, limit, stop, trailing, join_bid, join_ask",
                )
            })?,
    };
    let opt_price = |k: &str| -> mlua::Result<Option<f64>> {
        match get(k) {
            Value::Nil => Ok(None),
            v => positive_num(v, MAX_PRICE).map(Some).ok_or_else(|| {
                arg_error(
                    lua,
                    fname,
                    format!("{k} must be a finite number above 0 and at most {MAX_PRICE:e}"),
                )
            }),
        }
    };
    let opt_ticks = |k: &str| -> mlua::Result<Option<i64>> {
        match get(k) {
            Value::Nil => Ok(None),
            v => int_in_range(v, MAX_TICKS).map(Some).ok_or_else(|| {
                arg_error(
                    lua,
                    fname,
                    format!("{k} must be a whole number from 1 to {MAX_TICKS}"),
                )
            }),
        }
    };
    let price = opt_price("price")?;
    let stop_price = opt_price("stop_price")?;
    let trail_price = opt_price("trail_price")?;
    let needs = match order_type {
        OrderType::Limit if price.is_none() => Some("price"),
        OrderType::Stop if stop_price.is_none() => Some("stop_price"),
        OrderType::Trailing if trail_price.is_none() => Some("trail_price"),
        _ => None,
    };
    if let Some(field) = needs {
        return Err(arg_error(
            lua,
            fname,
            format!("{field} is required for a {} order", order_type.as_str()),
        ));
    }
    let tag = match get("tag") {
        Value::Nil => None,
        v => Some(text(v).ok_or_else(|| {
            arg_error(
                lua,
                fname,
                format!("tag must be a non-empty string of at most {MAX_TEXT} bytes"),
            )
        })?),
    };
    Ok(OrderIntent {
        symbol,
        side,
        size,
        order_type,
        price,
        stop_price,
        trail_price,
        stop_loss_ticks: opt_ticks("stop_loss_ticks")?,
        take_profit_ticks: opt_ticks("take_profit_ticks")?,
        tag,
    })
}

fn order_id(lua: &Lua, fname: &str, v: &Value) -> mlua::Result<u64> {
    let v = match v {
        Value::Table(t) => t.raw_get::<Value>("id")?,
        other => other.clone(),
    };
    int_in_range(&v, MAX_ID).map(|n| n as u64).ok_or_else(|| {
        arg_error(
            lua,
            fname,
            "expects an order id or the handle bot.buy returned",
        )
    })
}

fn parse_change(lua: &Lua, change: Value) -> mlua::Result<OrderChange> {
    const FNAME: &str = "bot.modify";
    let Value::Table(t) = change else {
        return Err(arg_error(
            lua,
            FNAME,
            "expects (id, {price=, stop_price=, size=})",
        ));
    };
    let num = |k: &str| -> mlua::Result<Option<f64>> {
        match t.raw_get::<Value>(k)? {
            Value::Nil => Ok(None),
            v => positive_num(&v, MAX_PRICE).map(Some).ok_or_else(|| {
                arg_error(
                    lua,
                    FNAME,
                    format!("{k} must be a finite number above 0 and at most {MAX_PRICE:e}"),
                )
            }),
        }
    };
    let size = match t.raw_get::<Value>("size")? {
        Value::Nil => None,
        v => Some(int_in_range(&v, MAX_SIZE).ok_or_else(|| {
            arg_error(
                lua,
                FNAME,
                format!("size must be a whole number from 1 to {MAX_SIZE}"),
            )
        })?),
    };
    Ok(OrderChange {
        price: num("price")?,
        stop_price: num("stop_price")?,
        size,
    })
}

fn handle_table(lua: &Lua, intent: &OrderIntent, id: u64) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 6)?;
    t.raw_set("id", id)?;
    t.raw_set("symbol", intent.symbol.as_str())?;
    t.raw_set("side", intent.side.as_str())?;
    t.raw_set("size", intent.size)?;
    t.raw_set("type", intent.order_type.as_str())?;
    t.raw_set("tag", intent.tag.as_deref())?;
    Ok(t)
}

pub(super) fn register(lua: &Lua, bot: &Table, ctx: &Arc<Ctx>) -> mlua::Result<()> {
    for side in [Side::Buy, Side::Sell] {
        let c = ctx.clone();
        let f = lua.create_function(move |lua, args: Value| {
            let intent = parse_intent(lua, &c, side, args)?;
            // The handle shows what was asked; the intent itself moves into the call.
            let shown = intent.clone();
            match c.ask(BotCall::Submit(intent)) {
                BotReply::Placed(h) => Ok(MultiValue::from_vec(vec![Value::Table(handle_table(
                    lua, &shown, h.id,
                )?)])),
                BotReply::Refused(r) => refused(lua, &r),
                _ => refused(lua, &Refusal::new("the engine gave no answer")),
            }
        })?;
        bot.raw_set(side.as_str(), f)?;
    }

    let c = ctx.clone();
    bot.raw_set(
        "cancel",
        lua.create_function(move |lua, id: Value| {
            let id = order_id(lua, "bot.cancel", &id)?;
            done(lua, c.ask(BotCall::Cancel { id }))
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "modify",
        lua.create_function(move |lua, (id, change): (Value, Value)| {
            let id = order_id(lua, "bot.modify", &id)?;
            let change = parse_change(lua, change)?;
            done(lua, c.ask(BotCall::Modify { id, change }))
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "flatten",
        lua.create_function(move |lua, symbol: Value| {
            let symbol = opt_symbol(lua, "bot.flatten", &symbol)?;
            done(lua, c.ask(BotCall::Flatten { symbol }))
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "flatten_all",
        lua.create_function(move |lua, ()| done(lua, c.ask(BotCall::FlattenAll)))?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "halt",
        lua.create_function(move |lua, reason: Value| {
            let reason = match reason {
                Value::Nil => format!("{}bot.halt", caller_location(lua)),
                Value::String(s) => {
                    // Bounded, so a script cannot write an arbitrary amount into the log and
                    // the persisted halt.
                    let s = s.to_string_lossy();
                    s.chars().take(MAX_TEXT).collect()
                }
                _ => {
                    return Err(arg_error(
                        lua,
                        "bot.halt",
                        "the reason must be a string (or nothing)",
                    ));
                }
            };
            tracing::warn!(strategy = %c.name, %reason, "strategy pulled the kill switch");
            c.ask(BotCall::Halt { reason });
            Ok(())
        })?,
    )?;
    Ok(())
}
