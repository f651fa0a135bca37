//! `bot.every`, `bot.after`, `bot.cancel_timer`: timers owned by the version that made them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{Lua, Table, Value};

use super::args::arg_error;
use super::ctx::{Ctx, Timer};

/// Longest delay a timer accepts: a year. Longer ones are mistakes (milliseconds given as
/// seconds), and far longer ones would overflow the clock.
const MAX_DELAY_SECS: f64 = 366.0 * 24.0 * 3600.0;
/// Shortest period of `bot.every`: a zero-length repeating timer would starve every event.
const MIN_PERIOD_SECS: f64 = 0.01;

/// The delay in seconds: finite, above 0 and at most [`MAX_DELAY_SECS`].
fn delay(lua: &Lua, fname: &str, secs: &Value) -> mlua::Result<Duration> {
    let s = match *secs {
        Value::Integer(n) => n as f64,
        Value::Number(x) => x,
        _ => f64::NAN,
    };
    if !(s.is_finite() && s > 0.0 && s <= MAX_DELAY_SECS) {
        return Err(arg_error(
            lua,
            fname,
            format!("seconds must be a number above 0 and at most {MAX_DELAY_SECS} (a year)"),
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

fn add_timer(
    lua: &Lua,
    ctx: &Ctx,
    fname: &str,
    secs: Value,
    f: Value,
    repeat: bool,
) -> mlua::Result<i64> {
    let mut every = delay(lua, fname, &secs)?;
    if repeat {
        every = every.max(Duration::from_secs_f64(MIN_PERIOD_SECS));
    }
    let Value::Function(f) = f else {
        return Err(arg_error(
            lua,
            fname,
            "the second argument must be a function",
        ));
    };
    let due = Instant::now()
        .checked_add(every)
        .ok_or_else(|| arg_error(lua, fname, "the delay is too long for this system's clock"))?;
    let mut set = ctx.timers.lock().unwrap_or_else(|e| e.into_inner());
    set.next_id += 1;
    let id = set.next_id;
    set.fns.raw_set(id, f)?;
    set.timers.push(Timer {
        id,
        due,
        every: repeat.then_some(every),
        generation: ctx.generation,
    });
    Ok(id)
}

pub(super) fn register(lua: &Lua, bot: &Table, ctx: &Arc<Ctx>) -> mlua::Result<()> {
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
        lua.create_function(move |lua, id: Value| {
            let id = match id {
                Value::Integer(n) => n,
                Value::Number(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 => {
                    x as i64
                }
                _ => {
                    return Err(arg_error(
                        lua,
                        "bot.cancel_timer",
                        "expects the id bot.every or bot.after returned",
                    ));
                }
            };
            let mut set = c.timers.lock().unwrap_or_else(|e| e.into_inner());
            let before = set.timers.len();
            set.timers.retain(|t| t.id != id);
            set.fns.raw_set(id, Value::Nil)?;
            Ok(set.timers.len() != before)
        })?,
    )?;
    Ok(())
}
