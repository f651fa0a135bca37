//! Argument checks shared by the `bot` functions: ranges, finite numbers, bounded strings, and
//! the Lua error that names the call and the strategy line.

use mlua::{Lua, Value};

use crate::script::sandbox::caller_location;

/// A Lua error pointing at the strategy line that made the bad call.
pub(super) fn arg_error(lua: &Lua, fname: &str, msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}{fname}: {msg}", caller_location(lua)))
}

/// Largest size a strategy may ask for. Far above any risk limit: the guard gives the real
/// answer; this only keeps the number inside what the wire (`i32`) can carry.
pub(super) const MAX_SIZE: i64 = 1_000_000;
/// Largest bracket distance in ticks.
pub(super) const MAX_TICKS: i64 = 1_000_000;
/// Largest order id: ids are counted up from 1, and Lua numbers are exact up to 2^53.
pub(super) const MAX_ID: i64 = 1 << 53;
/// Largest price: futures prices are far below this; bigger values are typos or garbage.
pub(super) const MAX_PRICE: f64 = 1.0e12;
/// Longest symbol, tag and halt reason accepted, in bytes (a halt reason is cut, not refused).
pub(super) const MAX_TEXT: usize = 1000;

/// An integer in `1..=max`: a Lua integer, or a float with no fraction (Lua 5.4 keeps `2^3`
/// and `10/2` as floats). NaN, infinities and fractions are refused.
pub(super) fn int_in_range(v: &Value, max: i64) -> Option<i64> {
    match *v {
        Value::Integer(n) if (1..=max).contains(&n) => Some(n),
        Value::Number(f) if f.is_finite() && f.fract() == 0.0 && f >= 1.0 && f <= max as f64 => {
            Some(f as i64)
        }
        _ => None,
    }
}

/// A finite number in `(0, max]`.
pub(super) fn positive_num(v: &Value, max: f64) -> Option<f64> {
    let f = match *v {
        Value::Integer(n) => n as f64,
        Value::Number(f) => f,
        _ => return None,
    };
    (f.is_finite() && f > 0.0 && f <= max).then_some(f)
}

/// A UTF-8 string of at most [`MAX_TEXT`] bytes.
pub(super) fn text(v: &Value) -> Option<String> {
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
pub(super) fn opt_symbol(lua: &Lua, fname: &str, v: &Value) -> mlua::Result<Option<String>> {
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
