//! The `ta` global: incremental technical indicators for strategies, defined as TA-Lib
//! defines them, computed in Rust and held by Lua as userdata.
//!
//! Each constructor (`ta.ema(20)`) returns an object whose `:update(...)` takes the next
//! value(s) and returns the indicator's current value, `nil` until it has seen enough values,
//! and whose `:value()` returns it again. `ta.crossed_above`/`ta.crossed_below` are plain
//! functions. Why Rust and not Lua, and what one call costs: `benches/ta.rs` and README.
//!
//! Every argument is checked: a period outside `1..=`[`MAX_PERIOD`], a non-number, NaN or
//! infinity is a Lua error naming the call and the strategy line, never a panic. The objects
//! are ordinary Lua values of the VM that made them; `state` cannot carry them across a
//! reload, and says so (`state_codec`).

mod averages;
mod extremes;
mod momentum;
mod volatility;
mod vwap;
mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlua::{
    Either, FromLuaMulti, IntoLuaMulti, Lua, Table, UserData, UserDataFields, UserDataMethods,
    UserDataRefMut, Value,
};

use super::sandbox::caller_location;
use averages::{Ema, Sma, Wma};
use extremes::{Highest, Lowest};
use momentum::{Macd, Rsi};
use volatility::{Atr, Bbands, Stdev};
use vwap::Vwap;

/// Longest period accepted (TA-Lib's own limit).
pub const MAX_PERIOD: i64 = 100_000;

/// Bytes of indicator windows one VM may hold. Windows live on the Rust heap, outside the
/// VM's memory limit, and a userdata weighs little to Lua's collector, so without a cap of
/// their own a loop making `ta.sma(100000)` could take gigabytes before a collection.
const WINDOW_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Installs the `ta` global.
///
/// # Errors
/// Only if the VM is out of memory.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let ta = lua.create_table()?;
    let held = Arc::new(AtomicUsize::new(0));
    let h = &held;
    ctor(lua, &ta, h, "sma", |a| Ok(Sma::new(period(a, "n", 0)?)))?;
    ctor(lua, &ta, h, "ema", |a| Ok(Ema::new(period(a, "n", 0)?)))?;
    ctor(lua, &ta, h, "wma", |a| Ok(Wma::new(period(a, "n", 0)?)))?;
    ctor(lua, &ta, h, "rsi", |a| Ok(Rsi::new(period(a, "n", 0)?)))?;
    ctor(lua, &ta, h, "atr", |a| Ok(Atr::new(period(a, "n", 0)?)))?;
    ctor(lua, &ta, h, "stdev", |a| Ok(Stdev::new(period(a, "n", 0)?)))?;
    ctor(lua, &ta, h, "highest", |a| {
        Ok(Highest::new(period(a, "n", 0)?))
    })?;
    ctor(lua, &ta, h, "lowest", |a| {
        Ok(Lowest::new(period(a, "n", 0)?))
    })?;
    ctor(lua, &ta, h, "macd", |a| {
        let fast = period(a, "fast", 0)?;
        let slow = period(a, "slow", 1)?;
        let signal = period(a, "signal", 2)?;
        Ok(Macd::new(fast, slow, signal))
    })?;
    ctor(lua, &ta, h, "bbands", |a| {
        let n = period(a, "n", 0)?;
        let k = match a.get(1) {
            None | Some(Value::Nil) => 2.0,
            Some(v) => number(v)
                .filter(|k| *k >= 0.0)
                .ok_or_else(|| format!("k must be a finite number >= 0 (got {})", show(v)))?,
        };
        Ok(Bbands::new(n, k))
    })?;
    ctor(lua, &ta, h, "vwap", |_| Ok(Vwap::new()))?;
    for (name, above) in [("crossed_above", true), ("crossed_below", false)] {
        let f = lua.create_function(move |lua, args: (Value, Value, Value, Value)| {
            crossed(above, args).map_err(|e| fail(lua, &format!("ta.{name}"), e))
        })?;
        ta.raw_set(name, f)?;
    }
    lua.globals().raw_set("ta", ta)
}

/// One indicator as Lua holds it.
trait Indicator: Sized + Send + Sync + 'static {
    /// `ta.ema` (the constructor's name in errors and `tostring`).
    const NAME: &'static str;
    /// The `:update` arguments.
    type In: FromLuaMulti;
    /// What `:update` and `:value` return.
    type Out: IntoLuaMulti;

    fn update(&mut self, input: Self::In) -> Result<Self::Out, String>;
    fn value(&self) -> Self::Out;
    /// Bytes of window it keeps on the Rust heap.
    fn window_bytes(&self) -> usize {
        0
    }
}

/// An indicator with its label and its share of the VM's window bytes.
struct Obj<T> {
    inner: T,
    label: String,
    bytes: usize,
    held: Arc<AtomicUsize>,
}

impl<T> Drop for Obj<T> {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl<T: Indicator> UserData for Obj<T> {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field("__name", T::NAME);
    }

    // Functions rather than mlua's methods, whose error for `obj.update(x)` (a dot for the
    // colon) names neither the strategy line nor the indicator. The object is borrowed straight
    // from the stack (`UserDataRefMut`): taking it as a `Value` first made a registry handle per
    // call, a third of what an update cost.
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_function("update", |lua, (this, input): (This<T>, T::In)| {
            let mut o = own(lua, this, "update")?;
            o.inner
                .update(input)
                .map_err(|e| fail(lua, &format!("{}:update", T::NAME), e))
        });
        m.add_function("value", |lua, this: This<T>| {
            let o = own(lua, this, "value")?;
            Ok(o.inner.value())
        });
        m.add_meta_method("__tostring", |_, o, ()| Ok(o.label.clone()));
    }
}

/// The object a method was called on: the indicator, or whatever was passed in its place.
type This<T> = Either<UserDataRefMut<Obj<T>>, Value>;

/// The indicator a method was called on, or the error for something else in its place.
fn own<T: Indicator>(
    lua: &Lua,
    this: This<T>,
    method: &str,
) -> mlua::Result<UserDataRefMut<Obj<T>>> {
    let this = match this {
        Either::Left(o) => return Ok(o),
        Either::Right(v) => v,
    };
    Err(fail(
        lua,
        &format!("{}:{method}", T::NAME),
        format!(
            "call it with a colon, as obj:{method}(...) (got {} for obj)",
            show(&this)
        ),
    ))
}

/// Registers `ta.<name>(...)`, building the indicator from its checked arguments.
fn ctor<T: Indicator>(
    lua: &Lua,
    ta: &Table,
    held: &Arc<AtomicUsize>,
    name: &'static str,
    build: fn(&[Value]) -> Result<T, String>,
) -> mlua::Result<()> {
    let held = held.clone();
    let f = lua.create_function(move |lua, args: mlua::Variadic<Value>| {
        let call = format!("ta.{name}");
        let inner = build(&args).map_err(|e| fail(lua, &call, e))?;
        let bytes = inner.window_bytes();
        if held.load(Ordering::Relaxed) + bytes > WINDOW_BYTES_MAX {
            // Objects already unreachable may still hold theirs until the collector runs.
            lua.gc_collect()?;
            if held.load(Ordering::Relaxed) + bytes > WINDOW_BYTES_MAX {
                return Err(fail(
                    lua,
                    &call,
                    format!(
                        "indicator windows would take more than {} MiB in this strategy; make indicators once (when the file loads), not on every event",
                        WINDOW_BYTES_MAX >> 20
                    ),
                ));
            }
        }
        held.fetch_add(bytes, Ordering::Relaxed);
        let label = format!("{call}({})", args.iter().map(show).collect::<Vec<_>>().join(", "));
        lua.create_userdata(Obj {
            inner,
            label,
            bytes,
            held: held.clone(),
        })
    })?;
    ta.raw_set(name, f)
}

/// A Lua error at the strategy line that made the call.
fn fail(lua: &Lua, call: &str, msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}{call}: {msg}", caller_location(lua)))
}

/// A finite number (no strings: Lua would turn "12" into 12, hiding a bug).
fn number(v: &Value) -> Option<f64> {
    match *v {
        Value::Integer(i) => Some(i as f64),
        Value::Number(f) if f.is_finite() => Some(f),
        _ => None,
    }
}

/// A value as an error message shows it.
fn show(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(f) => f.to_string(),
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        other => other.type_name().into(),
    }
}

/// The `i`-th constructor argument as a period in `1..=MAX_PERIOD`.
fn period(args: &[Value], what: &str, i: usize) -> Result<usize, String> {
    let v = args.get(i).unwrap_or(&Value::Nil);
    let n = match *v {
        Value::Integer(n) => Some(n),
        Value::Number(f) if f.fract() == 0.0 && f.abs() <= MAX_PERIOD as f64 => Some(f as i64),
        _ => None,
    };
    n.filter(|n| (1..=MAX_PERIOD).contains(n))
        .map(|n| n as usize)
        .ok_or_else(|| {
            format!(
                "{what} must be a whole number from 1 to {MAX_PERIOD} (got {})",
                show(v)
            )
        })
}

/// An `:update` argument that must be a finite number.
fn input(v: &Value, what: &str) -> Result<f64, String> {
    number(v).ok_or_else(|| format!("{what} must be a finite number (got {})", show(v)))
}

fn crossed(above: bool, (pa, a, pb, b): (Value, Value, Value, Value)) -> Result<bool, String> {
    let arg = |v: &Value, what: &str| match v {
        Value::Nil => Ok(None),
        v => input(v, what).map(Some),
    };
    let (pa, a, pb, b) = (
        arg(&pa, "prev_a")?,
        arg(&a, "a")?,
        arg(&pb, "prev_b")?,
        arg(&b, "b")?,
    );
    // A series still warming up (nil) has crossed nothing yet.
    let (Some(pa), Some(a), Some(pb), Some(b)) = (pa, a, pb, b) else {
        return Ok(false);
    };
    Ok(if above {
        pa <= pb && a > b
    } else {
        pa >= pb && a < b
    })
}

/// Indicators of one number per update and one result.
macro_rules! single {
    ($t:ty, $name:literal, $bytes:expr) => {
        impl Indicator for $t {
            const NAME: &'static str = $name;
            type In = Value;
            type Out = Option<f64>;

            fn update(&mut self, x: Value) -> Result<Option<f64>, String> {
                Ok(<$t>::update(self, input(&x, "value")?))
            }

            fn value(&self) -> Option<f64> {
                <$t>::value(self)
            }

            fn window_bytes(&self) -> usize {
                let f: fn(&$t) -> usize = $bytes;
                f(self)
            }
        }
    };
}

single!(Sma, "ta.sma", |s| s.window().period() * 8);
single!(Ema, "ta.ema", |_| 0);
single!(Wma, "ta.wma", |w| w.period() * 8);
single!(Rsi, "ta.rsi", |_| 0);
single!(Stdev, "ta.stdev", |s| s.period() * 8);
single!(Highest, "ta.highest", |e| e.period() * 8);
single!(Lowest, "ta.lowest", |e| e.period() * 8);

/// Three results per update, nil while warming up.
type Three = (Option<f64>, Option<f64>, Option<f64>);

fn three(v: Option<[f64; 3]>) -> Three {
    match v {
        Some([a, b, c]) => (Some(a), Some(b), Some(c)),
        None => (None, None, None),
    }
}

impl Indicator for Macd {
    const NAME: &'static str = "ta.macd";
    type In = Value;
    type Out = Three;

    fn update(&mut self, x: Value) -> Result<Three, String> {
        Ok(three(Macd::update(self, input(&x, "value")?)))
    }

    fn value(&self) -> Three {
        three(Macd::value(self))
    }

    fn window_bytes(&self) -> usize {
        self.fast_period() * 8
    }
}

impl Indicator for Bbands {
    const NAME: &'static str = "ta.bbands";
    type In = Value;
    type Out = Three;

    fn update(&mut self, x: Value) -> Result<Three, String> {
        Ok(three(Bbands::update(self, input(&x, "value")?)))
    }

    fn value(&self) -> Three {
        three(Bbands::value(self))
    }

    fn window_bytes(&self) -> usize {
        self.period() * 8
    }
}

impl Indicator for Atr {
    const NAME: &'static str = "ta.atr";
    type In = (Value, Value, Value);
    type Out = Option<f64>;

    fn update(&mut self, (h, l, c): (Value, Value, Value)) -> Result<Option<f64>, String> {
        let (high, low, close) = (input(&h, "high")?, input(&l, "low")?, input(&c, "close")?);
        if high < low {
            return Err(format!(
                "high ({high}) is below low ({low}); the arguments are (high, low, close)"
            ));
        }
        Ok(Atr::update(self, high, low, close))
    }

    fn value(&self) -> Option<f64> {
        Atr::value(self)
    }
}

/// Times above this many seconds (year 5138) are taken for milliseconds by mistake.
const MAX_SECONDS: f64 = 1.0e11;

impl Indicator for Vwap {
    const NAME: &'static str = "ta.vwap";
    type In = (Value, Value, Value);
    type Out = Option<f64>;

    fn update(&mut self, (p, v, t): (Value, Value, Value)) -> Result<Option<f64>, String> {
        let price = input(&p, "price")?;
        let volume = number(&v)
            .filter(|v| *v >= 0.0)
            .ok_or_else(|| format!("volume must be a finite number >= 0 (got {})", show(&v)))?;
        let secs = input(&t, "time")?;
        if !(0.0..MAX_SECONDS).contains(&secs) {
            let hint = if secs >= MAX_SECONDS {
                "; that looks like milliseconds: divide by 1000"
            } else {
                ""
            };
            return Err(format!(
                "time must be seconds since the Unix epoch, as bar.time, q.time and bot.now() give (got {}){hint}",
                show(&t)
            ));
        }
        Ok(Vwap::update(
            self,
            price,
            volume,
            (secs * 1000.0).round() as i64,
        ))
    }

    fn value(&self) -> Option<f64> {
        Vwap::value(self)
    }
}
