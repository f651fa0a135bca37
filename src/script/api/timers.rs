//! `bot.every`, `bot.after`, `bot.at`, `bot.cancel_timer`: timers on the engine clock, owned by
//! the version that made them.

use std::sync::Arc;

use chrono::{DateTime, NaiveTime};
use mlua::{Function, Lua, Table, Value};

use super::args::arg_error;
use super::ctx::{Ctx, Repeat, Timer};

/// Longest delay a timer accepts: a year. Longer ones are mistakes (milliseconds given as
/// seconds), and far longer ones would overflow the clock.
const MAX_DELAY_SECS: f64 = 366.0 * 24.0 * 3600.0;
/// Shortest period of `bot.every`: a zero-length repeating timer would starve every event.
const MIN_PERIOD_SECS: f64 = 0.01;

/// The delay in milliseconds (at least 1): seconds finite, above 0 and at most
/// [`MAX_DELAY_SECS`].
fn delay_ms(lua: &Lua, fname: &str, secs: &Value) -> mlua::Result<i64> {
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
    Ok(((s * 1000.0).round() as i64).max(1))
}

fn function(lua: &Lua, fname: &str, f: Value) -> mlua::Result<Function> {
    match f {
        Value::Function(f) => Ok(f),
        _ => Err(arg_error(
            lua,
            fname,
            "the second argument must be a function",
        )),
    }
}

fn add_timer(
    lua: &Lua,
    ctx: &Ctx,
    fname: &str,
    secs: Value,
    f: Value,
    repeat: bool,
) -> mlua::Result<i64> {
    let mut every = delay_ms(lua, fname, &secs)?;
    if repeat {
        every = every.max((MIN_PERIOD_SECS * 1000.0) as i64);
    }
    let f = function(lua, fname, f)?;
    let due_ms = ctx.clock.now_ms().saturating_add(every);
    let repeat = if repeat {
        Repeat::EveryMs(every)
    } else {
        Repeat::Once
    };
    push(ctx, f, due_ms, repeat)
}

fn push(ctx: &Ctx, f: Function, due_ms: i64, repeat: Repeat) -> mlua::Result<i64> {
    let mut set = ctx.timers.lock().unwrap_or_else(|e| e.into_inner());
    set.next_id += 1;
    let id = set.next_id;
    set.fns.raw_set(id, f)?;
    set.timers.push(Timer {
        id,
        due_ms,
        repeat,
        generation: ctx.generation,
    });
    Ok(id)
}

/// `"HH:MM"` or `"HH:MM:SS"` (hour 0–23, one or two digits; minutes and seconds two digits).
fn parse_time_of_day(s: &str) -> Option<NaiveTime> {
    let num = |p: &str, min_len: usize| -> Option<u32> {
        let digits = (min_len..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| p.parse().ok()).flatten()
    };
    let parts: Vec<&str> = s.splitn(4, ':').collect();
    let (h, m, sec) = match parts[..] {
        [h, m] => (h, m, "00"),
        [h, m, sec] => (h, m, sec),
        _ => return None,
    };
    NaiveTime::from_hms_opt(num(h, 1)?, num(m, 2)?, num(sec, 2)?)
}

/// `bot.at(time, fn)`: `fn` every day when the exchange's (Chicago) wall clock reads `time`.
fn add_daily(lua: &Lua, ctx: &Ctx, time: Value, f: Value) -> mlua::Result<i64> {
    let fname = "bot.at";
    let text = match &time {
        Value::String(s) => s.to_str().ok().map(|s| s.to_owned()),
        _ => None,
    };
    let Some(time) = text.as_deref().and_then(parse_time_of_day) else {
        let got = match (&time, text) {
            (_, Some(t)) => format!("{:?}", t.chars().take(40).collect::<String>()),
            (Value::Integer(_) | Value::Number(_), None) => "a number".to_owned(),
            (v, None) => format!("a {}", v.type_name()),
        };
        return Err(arg_error(
            lua,
            fname,
            format!(
                "time must be \"HH:MM\" or \"HH:MM:SS\" in exchange time (America/Chicago, 00:00 to 23:59:59), got {got}"
            ),
        ));
    };
    let f = function(lua, fname, f)?;
    let now = ctx.clock.now_ms();
    let due = DateTime::from_timestamp_millis(now)
        .and_then(|now| crate::cme::next_daily(now, time))
        .ok_or_else(|| arg_error(lua, fname, format!("the clock is out of range ({now} ms)")))?;
    push(ctx, f, due.timestamp_millis(), Repeat::Daily(time))
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
        "at",
        lua.create_function(move |lua, (t, f): (Value, Value)| add_daily(lua, &c, t, f))?,
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
                        "expects the id bot.every, bot.after or bot.at returned",
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
