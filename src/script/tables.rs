//! Turning engine events into Lua tables: the reused quote table of the hot path, and fresh
//! tables for the rarer events and webhooks.

use std::sync::Arc;

use mlua::{Function, Lua, LuaSerdeExt, LuaString, Table};

use super::api;
use super::events::{Event, Quote, WebhookBody};

/// The quote table handed to `on_quote`, reused for every quote: the cheapest way into Lua
/// that deps-notes measured (no userdata getters, no serde). Its fields are written by a small
/// Lua trampoline that then calls the handler, so a quote costs one call from Rust into Lua;
/// eleven `raw_set`s from Rust cost more than the handler itself (each is a protected call).
pub struct QuoteSlot {
    /// The trampoline bound to this version's `on_quote` and its reused table (`None`: the
    /// strategy has no `on_quote`).
    trampoline: Option<Function>,
    /// Lua strings of recently seen contracts and symbols, so a strategy on a few contracts
    /// never creates a string per quote. Small and searched linearly: strategies watch few.
    names: Vec<(Arc<str>, LuaString)>,
}

/// The arguments of the trampoline: the fields in order. An absent field is `None`, which
/// arrives as nil and clears the slot the previous quote left in the table. Borrowed: mlua
/// pushes a borrowed handle straight onto the stack, where an owned one goes through a `Value`
/// made and dropped per argument.
pub type QuoteArgs<'a> = (
    &'a LuaString,
    &'a LuaString,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<i64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    f64,
);

/// Binds the handler and the table as upvalues once per version, so a quote pushes only its
/// fields.
const TRAMPOLINE: &str = r#"
local h, t = ...
return function(contract, symbol, bid, ask, last, volume, open, high, low, change, time)
  t.contract, t.symbol, t.bid, t.ask, t.last = contract, symbol, bid, ask, last
  t.volume, t.open, t.high, t.low, t.change, t.time = volume, open, high, low, change, time
  return h(t)
end
"#;

impl QuoteSlot {
    /// The slot of a version whose `on_quote` is `handler`.
    pub fn new(lua: &Lua, handler: Option<&Function>) -> mlua::Result<Self> {
        let trampoline = match handler {
            Some(h) => Some(
                lua.load(TRAMPOLINE)
                    .set_name("=moontick quote")
                    .set_mode(mlua::chunk::ChunkMode::Text)
                    .call::<Function>((h, lua.create_table_with_capacity(0, 11)?))?,
            ),
            None => None,
        };
        Ok(QuoteSlot {
            trampoline,
            names: Vec::new(),
        })
    }

    /// Makes Lua strings of `q`'s names when they are new; returns what [`QuoteSlot::args`]
    /// takes, or `None` when there is no `on_quote` to deliver to.
    pub fn names_of(&mut self, lua: &Lua, q: &Quote) -> mlua::Result<Option<(usize, usize)>> {
        if self.trampoline.is_none() {
            return Ok(None);
        }
        Ok(Some((
            self.name(lua, &q.contract)?,
            self.name(lua, &q.symbol)?,
        )))
    }

    /// The function to call and its arguments for delivering `q` to `on_quote` (`None`: there
    /// is none); `names` from [`QuoteSlot::names_of`] for the same quote.
    pub fn args(&self, q: &Quote, (c, s): (usize, usize)) -> Option<(&Function, QuoteArgs<'_>)> {
        let args = (
            &self.names[c].1,
            &self.names[s].1,
            q.bid,
            q.ask,
            q.last,
            q.volume,
            q.open,
            q.high,
            q.low,
            q.change,
            q.time_ms as f64 / 1000.0,
        );
        Some((self.trampoline.as_ref()?, args))
    }

    /// Where `s` is in `names`, made a Lua string when it is new.
    fn name(&mut self, lua: &Lua, s: &Arc<str>) -> mlua::Result<usize> {
        if let Some(i) = self
            .names
            .iter()
            .position(|(k, _)| Arc::ptr_eq(k, s) || **k == **s)
        {
            return Ok(i);
        }
        let ls = lua.create_string(&**s)?;
        if self.names.len() >= 16 {
            self.names.remove(0);
        }
        self.names.push((s.clone(), ls));
        Ok(self.names.len() - 1)
    }
}

pub fn webhook_table(
    lua: &Lua,
    body: &WebhookBody,
    headers: &std::collections::BTreeMap<String, String>,
    query: &std::collections::BTreeMap<String, String>,
) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    match body {
        WebhookBody::Json(json) => {
            let opts = mlua::serde::SerializeOptions::new()
                .set_array_metatable(false)
                .serialize_none_to_null(false)
                .serialize_unit_to_null(false);
            t.raw_set("body", lua.to_value_with(json, opts)?)?;
        }
        WebhookBody::Text(s) => t.raw_set("body", s.as_str())?,
    }
    t.raw_set(
        "headers",
        lua.create_table_from(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
    )?;
    t.raw_set(
        "query",
        lua.create_table_from(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
    )?;
    Ok(t)
}

pub fn event_table(lua: &Lua, e: &Event) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let secs = |ms: i64| ms as f64 / 1000.0;
    match e {
        Event::Quote(q) => return api::quote_table(lua, q),
        Event::Trade(x) => {
            t.raw_set("contract", &*x.contract)?;
            t.raw_set("symbol", &*x.symbol)?;
            t.raw_set("price", x.price)?;
            t.raw_set("size", x.size)?;
            t.raw_set("side", x.side.map(|s| s.as_str()))?;
            t.raw_set("time", secs(x.time_ms))?;
        }
        Event::Depth(x) => {
            t.raw_set("contract", &*x.contract)?;
            t.raw_set("symbol", &*x.symbol)?;
            let levels = lua.create_table_with_capacity(x.levels.len(), 0)?;
            for (i, l) in x.levels.iter().enumerate() {
                let lt = lua.create_table_with_capacity(0, 3)?;
                lt.raw_set("side", l.side.as_str())?;
                lt.raw_set("price", l.price)?;
                lt.raw_set("size", l.size)?;
                levels.raw_set(i + 1, lt)?;
            }
            t.raw_set("levels", levels)?;
            t.raw_set("time", secs(x.time_ms))?;
        }
        Event::Order(x) => {
            t.raw_set("id", x.id)?;
            t.raw_set("contract", &*x.contract)?;
            t.raw_set("symbol", &*x.symbol)?;
            t.raw_set("side", x.side.as_str())?;
            t.raw_set("size", x.size)?;
            t.raw_set("filled", x.filled)?;
            t.raw_set("status", x.status.as_str())?;
            t.raw_set("price", x.price)?;
            t.raw_set("stop_price", x.stop_price)?;
            t.raw_set("tag", x.tag.as_deref())?;
            t.raw_set("reason", x.reason.as_deref())?;
            t.raw_set("time", secs(x.time_ms))?;
        }
        Event::Fill(x) => {
            t.raw_set("order_id", x.order_id)?;
            t.raw_set("contract", &*x.contract)?;
            t.raw_set("symbol", &*x.symbol)?;
            t.raw_set("side", x.side.as_str())?;
            t.raw_set("size", x.size)?;
            t.raw_set("price", x.price)?;
            t.raw_set("fee", x.fee)?;
            t.raw_set("time", secs(x.time_ms))?;
        }
        Event::Position(x) => {
            t.raw_set("contract", &*x.contract)?;
            t.raw_set("symbol", &*x.symbol)?;
            t.raw_set("size", x.size)?;
            t.raw_set("avg_price", x.avg_price)?;
        }
        Event::Feed(_) => {}
        Event::Bar(b) => {
            t.raw_set("symbol", &*b.symbol)?;
            t.raw_set("contract", &*b.contract)?;
            t.raw_set("timeframe", b.timeframe.to_string())?;
            t.raw_set("time", secs(b.bar.time_ms))?;
            t.raw_set("open", b.bar.open)?;
            t.raw_set("high", b.bar.high)?;
            t.raw_set("low", b.bar.low)?;
            t.raw_set("close", b.bar.close)?;
            t.raw_set("volume", b.bar.volume)?;
        }
    }
    Ok(t)
}
