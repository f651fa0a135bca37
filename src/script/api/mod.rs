//! The `bot` global, registered by concern: [`orders`] (buy, sell, cancel, modify, flatten,
//! halt), [`views`] (position, orders, quote, account, now), [`timers`] (every, after,
//! cancel_timer) and [`log`]. Every argument is checked here, so bad input is a Lua error that
//! names the call and the strategy line, never a panic.

mod log;
mod orders;
mod timers;
mod views;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mlua::{Lua, Value};

use super::broker::{BotCall, BotReply, Broker, Clock};
use super::sandbox::caller_location;

pub use timers::{TimerSet, new_timers};
pub use views::quote_table;

/// What the `bot` functions need from the host, shared with the runner.
pub struct Ctx {
    pub name: String,
    pub generation: u64,
    pub broker: Arc<dyn Broker>,
    pub clock: Arc<dyn Clock>,
    pub timers: Arc<Mutex<TimerSet>>,
    /// `symbols[1]` of the strategy, the default for `symbol=`; known only after the file ran.
    pub default_symbol: Arc<Mutex<Option<String>>>,
    /// Accepted order-placing calls of this version so far (see [`BotCall::places_orders`]).
    /// The runner reads it around each delivery to know which orders that delivery placed.
    pub placed: AtomicU64,
}

impl Ctx {
    /// Asks the engine, and counts an accepted order-placing call.
    pub fn ask(&self, call: BotCall) -> BotReply {
        let places = call.places_orders();
        let reply = self.broker.answer(&self.name, call);
        if places && reply.accepted() {
            self.placed.fetch_add(1, Ordering::AcqRel);
        }
        reply
    }

    /// Orders placed by this version so far; the difference of two readings is what one
    /// delivery placed (a strategy runs one delivery at a time).
    pub fn orders_placed(&self) -> u64 {
        self.placed.load(Ordering::Acquire)
    }

    fn default_symbol(&self) -> Option<String> {
        self.default_symbol
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A Lua error pointing at the strategy line that made the bad call.
fn arg_error(lua: &Lua, fname: &str, msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}{fname}: {msg}", caller_location(lua)))
}

/// Largest size a strategy may ask for. Far above any risk limit: the guard gives the real
/// answer; this only keeps the number inside what the wire (`i32`) can carry.
const MAX_SIZE: i64 = 1_000_000;
/// Largest bracket distance in ticks.
const MAX_TICKS: i64 = 1_000_000;
/// Largest order id: ids are counted up from 1, and Lua numbers are exact up to 2^53.
const MAX_ID: i64 = 1 << 53;
/// Largest price: futures prices are far below this; bigger values are typos or garbage.
const MAX_PRICE: f64 = 1.0e12;
/// Longest symbol, tag and halt reason accepted, in bytes (a halt reason is cut, not refused).
const MAX_TEXT: usize = 1000;

/// An integer in `1..=max`: a Lua integer, or a float with no fraction (Lua 5.4 keeps `2^3`
/// and `10/2` as floats). NaN, infinities and fractions are refused.
fn int_in_range(v: &Value, max: i64) -> Option<i64> {
    match *v {
        Value::Integer(n) if (1..=max).contains(&n) => Some(n),
        Value::Number(f) if f.is_finite() && f.fract() == 0.0 && f >= 1.0 && f <= max as f64 => {
            Some(f as i64)
        }
        _ => None,
    }
}

/// A finite number in `(0, max]`.
fn positive_num(v: &Value, max: f64) -> Option<f64> {
    let f = match *v {
        Value::Integer(n) => n as f64,
        Value::Number(f) => f,
        _ => return None,
    };
    (f.is_finite() && f > 0.0 && f <= max).then_some(f)
}

/// A UTF-8 string of at most [`MAX_TEXT`] bytes.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => s
            .to_str()
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= MAX_TEXT)
            .map(|s| s.to_owned()),
        _ => None,
    }
}

/// An optional symbol argument (`nil` allowed).
fn opt_symbol(lua: &Lua, fname: &str, v: &Value) -> mlua::Result<Option<String>> {
    match v {
        Value::Nil => Ok(None),
        v => text(v).map(Some).ok_or_else(|| {
            arg_error(
                lua,
                fname,
                format!("symbol must be a non-empty string of at most {MAX_TEXT} bytes"),
            )
        }),
    }
}

/// Installs the `bot` global.
///
/// # Errors
/// Only if the VM is out of memory.
pub fn register(lua: &Lua, ctx: Arc<Ctx>) -> mlua::Result<()> {
    let bot = lua.create_table()?;
    bot.raw_set("name", ctx.name.as_str())?;
    orders::register(lua, &bot, &ctx)?;
    views::register(lua, &bot, &ctx)?;
    timers::register(lua, &bot, &ctx)?;
    log::register(lua, &bot, &ctx)?;
    lua.globals().raw_set("bot", bot)
}

#[cfg(test)]
mod tests;
