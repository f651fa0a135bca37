//! Turning engine events into Lua tables: the reused quote table of the hot path, and fresh
//! tables for the rarer events and webhooks.

use std::sync::Arc;

use mlua::{Lua, LuaSerdeExt, LuaString, Table};

use super::api;
use super::events::{Event, Quote, WebhookBody};

/// The quote table handed to `on_quote`, reused for every quote with its keys created once:
/// the cheapest way into Lua that deps-notes measured (no userdata getters, no serde).
pub struct QuoteSlot {
    table: Table,
    keys: [LuaString; 9],
    /// Lua strings of recently seen contracts and symbols, so a strategy on a few contracts
    /// never creates a string per quote. Small and searched linearly: strategies watch few.
    names: Vec<(Arc<str>, LuaString)>,
}

impl QuoteSlot {
    pub fn new(lua: &Lua) -> mlua::Result<Self> {
        let k = |s: &str| lua.create_string(s);
        Ok(QuoteSlot {
            table: lua.create_table_with_capacity(0, 9)?,
            keys: [
                k("contract")?,
                k("symbol")?,
                k("bid")?,
                k("ask")?,
                k("last")?,
                k("bid_size")?,
                k("ask_size")?,
                k("volume")?,
                k("time")?,
            ],
            names: Vec::new(),
        })
    }

    fn name(&mut self, lua: &Lua, s: &Arc<str>) -> mlua::Result<LuaString> {
        if let Some((_, ls)) = self
            .names
            .iter()
            .find(|(k, _)| Arc::ptr_eq(k, s) || **k == **s)
        {
            return Ok(ls.clone());
        }
        let ls = lua.create_string(&**s)?;
        if self.names.len() >= 16 {
            self.names.remove(0);
        }
        self.names.push((s.clone(), ls.clone()));
        Ok(ls)
    }

    pub fn fill(&mut self, lua: &Lua, q: &Quote) -> mlua::Result<&Table> {
        let c = self.name(lua, &q.contract)?;
        let s = self.name(lua, &q.symbol)?;
        // Set every time: the strategy may have overwritten the fields of the shared table.
        self.table.raw_set(&self.keys[0], c)?;
        self.table.raw_set(&self.keys[1], s)?;
        let t = &self.table;
        let k = &self.keys;
        t.raw_set(&k[2], q.bid)?;
        t.raw_set(&k[3], q.ask)?;
        t.raw_set(&k[4], q.last)?;
        t.raw_set(&k[5], q.bid_size)?;
        t.raw_set(&k[6], q.ask_size)?;
        t.raw_set(&k[7], q.volume)?;
        t.raw_set(&k[8], q.time_ms as f64 / 1000.0)?;
        Ok(t)
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
    }
    Ok(t)
}
