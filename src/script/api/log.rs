//! `bot.log.debug/info/warn/error`: one log line per call, tagged with the strategy. Tables are
//! rendered (`{1, 2, side="buy", nested={…}}`) within bounds of depth, entries and length, and a
//! table that contains itself is shown as `<cycle>` instead of looping.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use mlua::{Lua, MultiValue, Table, Value};

use super::ctx::Ctx;

/// Tables nested deeper than this are shown as `{…}`.
const MAX_DEPTH: usize = 4;
/// Entries shown per table; the rest are summarised as `…`.
const MAX_ENTRIES: usize = 32;
/// Longest line; the rest is cut at a character boundary and marked with `…`.
const MAX_LINE: usize = 4096;
/// Longest string shown inside a table.
const MAX_STRING: usize = 200;

/// The log line for one `bot.log.*` call: the arguments separated by spaces.
pub(crate) fn log_line(args: &MultiValue) -> String {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match v {
            // A top-level string is the message itself: shown as is.
            Value::String(s) => out.push_str(&s.to_string_lossy()),
            v => render(v, 0, &mut HashSet::new(), &mut out),
        }
        if out.len() > MAX_LINE {
            break;
        }
    }
    if out.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

fn render(v: &Value, depth: usize, seen: &mut HashSet<usize>, out: &mut String) {
    match v {
        Value::Nil => out.push_str("nil"),
        Value::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Integer(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Number(f) => out.push_str(&number(*f)),
        Value::String(s) => {
            let s = s.to_string_lossy();
            let shown: String = s.chars().take(MAX_STRING).collect();
            let _ = write!(out, "{shown:?}");
            if shown.len() < s.len() {
                out.push('…');
            }
        }
        Value::Table(t) => render_table(t, depth, seen, out),
        other => out.push_str(other.type_name()),
    }
}

/// Numbers as Lua's `tostring` prints them: 14 significant digits (so `0.1 + 0.2` is `0.3` and
/// a P&L of `-5.6000000000000005` is `-5.6`), `2.0` for a whole float, `nan`/`inf` spelt out.
fn number(f: f64) -> String {
    // Lua formats floats with "%.14g"; `{:.13e}` keeps the same 14 significant digits.
    let f = format!("{f:.13e}").parse::<f64>().unwrap_or(f);
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn render_table(t: &Table, depth: usize, seen: &mut HashSet<usize>, out: &mut String) {
    let id = t.to_pointer() as usize;
    if seen.contains(&id) {
        out.push_str("<cycle>");
        return;
    }
    if depth >= MAX_DEPTH {
        out.push_str("{…}");
        return;
    }
    seen.insert(id);
    out.push('{');
    let mut shown = 0;
    let mut more = false;
    // The sequence part first, in order; raw access, so no metamethod runs inside a log call.
    let mut n = 0i64;
    while let Ok(v) = t.raw_get::<Value>(n + 1) {
        if v.is_nil() {
            break;
        }
        n += 1;
        if shown == MAX_ENTRIES || out.len() > MAX_LINE {
            more = true;
            break;
        }
        if shown > 0 {
            out.push_str(", ");
        }
        render(&v, depth + 1, seen, out);
        shown += 1;
    }
    // Then the other keys, sorted so that the same table always logs the same way. Only a
    // bounded number are collected, so a huge table costs no more than a small one.
    let mut rest: Vec<(String, Value)> = Vec::new();
    for (k, v) in t.pairs::<Value, Value>().flatten() {
        if let Value::Integer(i) = k
            && (1..=n).contains(&i)
        {
            continue;
        }
        if rest.len() == MAX_ENTRIES {
            more = true;
            break;
        }
        rest.push((key(&k), v));
    }
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in rest {
        if shown == MAX_ENTRIES || out.len() > MAX_LINE {
            more = true;
            break;
        }
        if shown > 0 {
            out.push_str(", ");
        }
        out.push_str(&k);
        out.push('=');
        render(&v, depth + 1, seen, out);
        shown += 1;
    }
    if more {
        out.push_str(if shown > 0 { ", …" } else { "…" });
    }
    out.push('}');
    seen.remove(&id);
}

/// `name` for identifier-like string keys, `[key]` otherwise.
fn key(k: &Value) -> String {
    if let Value::String(s) = k {
        let s = s.to_string_lossy();
        let ident = !s.is_empty()
            && s.len() <= MAX_STRING
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ident {
            return s;
        }
    }
    let mut out = String::from("[");
    render(k, MAX_DEPTH, &mut HashSet::new(), &mut out);
    out.push(']');
    out
}

pub(super) fn register(lua: &Lua, bot: &Table, ctx: &Arc<Ctx>) -> mlua::Result<()> {
    let log = lua.create_table()?;
    for level in ["debug", "info", "warn", "error"] {
        let name = ctx.name.clone();
        let f = lua.create_function(move |_, args: MultiValue| {
            let msg = log_line(&args);
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
    bot.raw_set("log", log)
}
