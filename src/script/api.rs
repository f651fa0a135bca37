//! The `bot` global: argument checking for every call, and its translation into [`Broker`]
//! calls, timers and log lines.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::broker::{
    Broker, Clock, OrderChange, OrderIntent, OrderType, OrderView, PositionView, Refusal,
};
use super::events::{Quote, Side};
use super::sandbox::caller_location;

/// A pending `bot.every` / `bot.after`. The generation ties it to the version that created it.
#[derive(Debug)]
pub struct Timer {
    pub id: i64,
    pub due: Instant,
    pub every: Option<Duration>,
    pub generation: u64,
}

/// The timers of one version; the Lua functions live in `fns`, keyed by timer id.
#[derive(Debug)]
pub struct TimerSet {
    next_id: i64,
    pub timers: Vec<Timer>,
    pub fns: Table,
}

impl TimerSet {
    pub fn next_due(&self) -> Option<Instant> {
        self.timers.iter().map(|t| t.due).min()
    }
}

/// What the `bot` functions need from the host, shared with the runner.
pub struct Ctx {
    pub name: String,
    pub generation: u64,
    pub broker: Arc<dyn Broker>,
    pub clock: Arc<dyn Clock>,
    pub timers: Arc<Mutex<TimerSet>>,
    /// `symbols[1]` of the strategy, the default for `symbol=`; known only after the file ran.
    pub default_symbol: Arc<Mutex<Option<String>>>,
}

/// A Lua error pointing at the strategy line that made the bad call.
fn arg_error(lua: &Lua, fname: &str, msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}{fname}: {msg}", caller_location(lua)))
}

fn refused(lua: &Lua, r: Refusal) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        Value::String(lua.create_string(&r.reason)?),
    ]))
}

fn ok_true() -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![Value::Boolean(true)]))
}

fn positive_int(v: &Value) -> Option<i64> {
    match *v {
        Value::Integer(n) if n > 0 => Some(n),
        Value::Number(f) if f > 0.0 && f.fract() == 0.0 && f < 9.0e15 => Some(f as i64),
        _ => None,
    }
}

fn positive_num(v: &Value) -> Option<f64> {
    match *v {
        Value::Integer(n) if n > 0 => Some(n as f64),
        Value::Number(f) if f > 0.0 && f.is_finite() => Some(f),
        _ => None,
    }
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => s.to_str().ok().map(|s| s.to_owned()),
        _ => None,
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
                let key = k.to_string().unwrap_or_else(|_| "?".into());
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
    let get = |k: &str| -> mlua::Result<Value> {
        let i = ORDER_FIELDS.iter().position(|f| *f == k).unwrap_or(0);
        Ok(fields[i].clone())
    };
    let symbol = match get("symbol")? {
        Value::Nil => ctx
            .default_symbol
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                arg_error(
                    lua,
                    fname,
                    "symbol is required (the strategy declares no symbols)",
                )
            })?,
        v => string_of(&v).ok_or_else(|| arg_error(lua, fname, "symbol must be a string"))?,
    };
    let size = positive_int(&get("size")?)
        .ok_or_else(|| arg_error(lua, fname, "size must be a positive integer"))?;
    let order_type = match get("type")? {
        Value::Nil => OrderType::Market,
        v => string_of(&v)
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
        match get(k)? {
            Value::Nil => Ok(None),
            v => positive_num(&v)
                .map(Some)
                .ok_or_else(|| arg_error(lua, fname, format!("{k} must be a positive number"))),
        }
    };
    let opt_ticks = |k: &str| -> mlua::Result<Option<i64>> {
        match get(k)? {
            Value::Nil => Ok(None),
            v => positive_int(&v)
                .map(Some)
                .ok_or_else(|| arg_error(lua, fname, format!("{k} must be a positive integer"))),
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
    let tag = match get("tag")? {
        Value::Nil => None,
        v => Some(string_of(&v).ok_or_else(|| arg_error(lua, fname, "tag must be a string"))?),
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
    positive_int(&v).map(|n| n as u64).ok_or_else(|| {
        arg_error(
            lua,
            fname,
            "expects an order id or the handle bot.buy returned",
        )
    })
}

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
    let t = lua.create_table_with_capacity(0, 9)?;
    t.raw_set("contract", &*q.contract)?;
    t.raw_set("symbol", &*q.symbol)?;
    t.raw_set("bid", q.bid)?;
    t.raw_set("ask", q.ask)?;
    t.raw_set("last", q.last)?;
    t.raw_set("bid_size", q.bid_size)?;
    t.raw_set("ask_size", q.ask_size)?;
    t.raw_set("volume", q.volume)?;
    t.raw_set("time", q.time_ms as f64 / 1000.0)?;
    Ok(t)
}

fn add_timer(
    lua: &Lua,
    ctx: &Ctx,
    fname: &str,
    secs: Value,
    f: Value,
    repeat: bool,
) -> mlua::Result<i64> {
    let secs = match secs {
        Value::Integer(n) if n > 0 => n as f64,
        Value::Number(x) if x > 0.0 && x.is_finite() => x,
        _ => return Err(arg_error(lua, fname, "seconds must be a positive number")),
    };
    // A zero-length repeating timer would starve every other event.
    let secs = if repeat { secs.max(0.01) } else { secs };
    let Value::Function(f) = f else {
        return Err(arg_error(
            lua,
            fname,
            "the second argument must be a function",
        ));
    };
    let mut set = ctx.timers.lock().unwrap_or_else(|e| e.into_inner());
    set.next_id += 1;
    let id = set.next_id;
    set.fns.raw_set(id, f)?;
    let every = Duration::from_secs_f64(secs);
    set.timers.push(Timer {
        id,
        due: Instant::now() + every,
        every: repeat.then_some(every),
        generation: ctx.generation,
    });
    Ok(id)
}

fn log_line(args: MultiValue) -> String {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match v.to_string() {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str(v.type_name()),
        }
    }
    out
}

/// Creates the timer set of a new version (its function table lives in that VM).
pub fn new_timers(lua: &Lua) -> mlua::Result<Arc<Mutex<TimerSet>>> {
    Ok(Arc::new(Mutex::new(TimerSet {
        next_id: 0,
        timers: Vec::new(),
        fns: lua.create_table()?,
    })))
}

/// Installs the `bot` global.
///
/// # Errors
/// Only if the VM is out of memory.
pub fn register(lua: &Lua, ctx: Arc<Ctx>) -> mlua::Result<()> {
    let bot = lua.create_table()?;
    bot.raw_set("name", ctx.name.as_str())?;

    for side in [Side::Buy, Side::Sell] {
        let c = ctx.clone();
        let f = lua.create_function(move |lua, args: Value| {
            let intent = parse_intent(lua, &c, side, args)?;
            let (symbol, size, ty, tag) = (
                intent.symbol.clone(),
                intent.size,
                intent.order_type,
                intent.tag.clone(),
            );
            match c.broker.submit(&c.name, intent) {
                Ok(h) => {
                    let t = lua.create_table_with_capacity(0, 6)?;
                    t.raw_set("id", h.id)?;
                    t.raw_set("symbol", symbol)?;
                    t.raw_set("side", side.as_str())?;
                    t.raw_set("size", size)?;
                    t.raw_set("type", ty.as_str())?;
                    t.raw_set("tag", tag)?;
                    Ok(MultiValue::from_vec(vec![Value::Table(t)]))
                }
                Err(r) => refused(lua, r),
            }
        })?;
        bot.raw_set(side.as_str(), f)?;
    }

    let c = ctx.clone();
    bot.raw_set(
        "cancel",
        lua.create_function(move |lua, id: Value| {
            let id = order_id(lua, "bot.cancel", &id)?;
            match c.broker.cancel(&c.name, id) {
                Ok(()) => ok_true(),
                Err(r) => refused(lua, r),
            }
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "modify",
        lua.create_function(move |lua, (id, change): (Value, Value)| {
            let id = order_id(lua, "bot.modify", &id)?;
            let Value::Table(t) = change else {
                return Err(arg_error(
                    lua,
                    "bot.modify",
                    "expects (id, {price=, stop_price=, size=})",
                ));
            };
            let num = |k: &str| -> mlua::Result<Option<f64>> {
                match t.raw_get::<Value>(k)? {
                    Value::Nil => Ok(None),
                    v => positive_num(&v).map(Some).ok_or_else(|| {
                        arg_error(lua, "bot.modify", format!("{k} must be a positive number"))
                    }),
                }
            };
            let size = match t.raw_get::<Value>("size")? {
                Value::Nil => None,
                v => Some(positive_int(&v).ok_or_else(|| {
                    arg_error(lua, "bot.modify", "size must be a positive integer")
                })?),
            };
            let change = OrderChange {
                price: num("price")?,
                stop_price: num("stop_price")?,
                size,
            };
            match c.broker.modify(&c.name, id, change) {
                Ok(()) => ok_true(),
                Err(r) => refused(lua, r),
            }
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "flatten",
        lua.create_function(move |lua, symbol: Option<String>| {
            match c.broker.flatten(&c.name, symbol.as_deref()) {
                Ok(()) => ok_true(),
                Err(r) => refused(lua, r),
            }
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "flatten_all",
        lua.create_function(move |lua, ()| match c.broker.flatten_all(&c.name) {
            Ok(()) => ok_true(),
            Err(r) => refused(lua, r),
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "chicago_time",
        lua.create_function(move |lua, ()| {
            super::exchange_time::chicago_table(lua, c.clock.now_ms())
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "halt",
        lua.create_function(move |lua, reason: Option<String>| {
            let reason = reason.unwrap_or_else(|| format!("{}bot.halt", caller_location(lua)));
            tracing::warn!(strategy = %c.name, %reason, "strategy pulled the kill switch");
            c.broker.halt(&c.name, &reason);
            Ok(())
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "position",
        lua.create_function(move |lua, symbol: Option<String>| {
            let symbol = match symbol {
                Some(s) => s,
                None => c
                    .default_symbol
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .ok_or_else(|| arg_error(lua, "bot.position", "symbol is required"))?,
            };
            position_table(lua, &c.broker.position(&c.name, &symbol))
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "orders",
        lua.create_function(move |lua, symbol: Option<String>| {
            let list = lua.create_table()?;
            for (i, o) in c
                .broker
                .orders(&c.name, symbol.as_deref())
                .iter()
                .enumerate()
            {
                list.raw_set(i + 1, order_table(lua, o)?)?;
            }
            Ok(list)
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "quote",
        lua.create_function(move |lua, symbol: String| {
            c.broker
                .quote(&symbol)
                .map(|q| quote_table(lua, &q))
                .transpose()
        })?,
    )?;

    let c = ctx.clone();
    bot.raw_set(
        "account",
        lua.create_function(move |lua, ()| {
            let Some(a) = c.broker.account() else {
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

    let c = ctx.clone();
    bot.raw_set(
        "every",
        lua.create_function(move |lua, (s, f): (Value, Value)| {
            add_timer(lua, &c, "bot.every", s, f, true)
        })?,
    )?;
    let c = ctx.clone();
    bot.raw_set(
        "after",
        lua.create_function(move |lua, (s, f): (Value, Value)| {
            add_timer(lua, &c, "bot.after", s, f, false)
        })?,
    )?;
    let c = ctx.clone();
    bot.raw_set(
        "cancel_timer",
        lua.create_function(move |_, id: i64| {
            let mut set = c.timers.lock().unwrap_or_else(|e| e.into_inner());
            let before = set.timers.len();
            set.timers.retain(|t| t.id != id);
            set.fns.raw_set(id, Value::Nil)?;
            Ok(set.timers.len() != before)
        })?,
    )?;

    let log = lua.create_table()?;
    for level in ["debug", "info", "warn", "error"] {
        let name = ctx.name.clone();
        let f: Function = lua.create_function(move |_, args: MultiValue| {
            let msg = log_line(args);
            match level {
                "debug" => tracing::debug!(target: "moontick::strategy", strategy = %name, "{msg}"),
                "info" => tracing::info!(target: "moontick::strategy", strategy = %name, "{msg}"),
                "warn" => tracing::warn!(target: "moontick::strategy", strategy = %name, "{msg}"),
                _ => tracing::error!(target: "moontick::strategy", strategy = %name, "{msg}"),
            }
            Ok(())
        })?;
        log.raw_set(level, f)?;
    }
    bot.raw_set("log", log)?;
    lua.globals().raw_set("bot", bot)
}
