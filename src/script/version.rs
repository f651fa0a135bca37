//! One version of a strategy: the file loaded into a fresh sandboxed VM with the `bot` API and
//! its `state` (carried over, restored from disk or fresh), and validated before it may run;
//! `moontick check` goes through the same path.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlua::{Function, Lua, Table, Value};

use super::api::{self, Ctx};
use super::broker::{Broker, Clock};
use super::sandbox::{self, Budget, Limits};
use super::spec::{HANDLERS, Spec, return_line, validate};
use super::state;
use super::tables::QuoteSlot;

/// Everything a runner needs to (re)build versions of its strategy.
#[derive(Clone)]
pub struct RunnerConfig {
    pub name: String,
    pub path: PathBuf,
    pub lib_dir: PathBuf,
    pub state_dir: Option<PathBuf>,
    pub limits: Limits,
    pub max_consecutive_errors: u32,
    pub state_flush_every: Duration,
    pub broker: Arc<dyn Broker>,
    pub clock: Arc<dyn Clock>,
    /// The engine's bars (`bot.bars`).
    pub bars: crate::bars::BarStore,
}

/// One loaded, validated version of the strategy file.
pub(super) struct Version {
    pub(super) lua: Lua,
    pub(super) generation: u64,
    pub(super) budget: Budget,
    pub(super) ctx: Arc<Ctx>,
    /// Handlers as the file defined them, in `HANDLERS` order: looked up once per load rather
    /// than once per event.
    pub(super) handlers: Vec<Option<Function>>,
    pub(super) spec: Spec,
    pub(super) quote: QuoteSlot,
}

impl Version {
    pub(super) fn handler(&self, name: &str) -> Option<Function> {
        let i = HANDLERS.iter().position(|h| *h == name)?;
        self.handlers[i].clone()
    }

    pub(super) fn state(&self) -> mlua::Result<Table> {
        match self.lua.globals().raw_get::<Value>("state")? {
            Value::Table(t) => Ok(t),
            _ => {
                let t = self.lua.create_table()?;
                self.lua.globals().raw_set("state", &t)?;
                Ok(t)
            }
        }
    }
}

pub(super) enum Carry<'a> {
    Old(&'a Version),
    Saved(serde_json::Value),
    Fresh,
}

/// Loads the file into a fresh VM and validates what it returns.
///
/// # Errors
/// The first problem, as `file:line: message`.
pub(super) fn build(
    cfg: &RunnerConfig,
    generation: u64,
    carry: Carry<'_>,
) -> Result<Version, String> {
    let path = cfg.path.display().to_string();
    let source =
        std::fs::read_to_string(&cfg.path).map_err(|e| format!("{path}: cannot read: {e}"))?;
    let lua_err = |e: mlua::Error| sandbox::describe(&e);
    let (lua, budget) = sandbox::new_vm(&cfg.lib_dir, cfg.limits).map_err(lua_err)?;
    let ctx = Arc::new(Ctx {
        name: cfg.name.clone(),
        generation,
        broker: cfg.broker.clone(),
        clock: cfg.clock.clone(),
        timers: api::new_timers(&lua).map_err(lua_err)?,
        default_symbol: Arc::new(Mutex::new(None)),
        placed: AtomicU64::new(0),
        bars: cfg.bars.clone(),
        bar_series: Mutex::new(Vec::new()),
    });
    api::register(&lua, ctx.clone()).map_err(lua_err)?;
    let st = match carry {
        Carry::Old(old) => {
            let t = lua.create_table().map_err(lua_err)?;
            let from = old.state().map_err(lua_err)?;
            state::merge_into(&lua, &from, &t, &cfg.name).map_err(lua_err)?;
            t
        }
        Carry::Saved(json) => state::from_json(&lua, &json)
            .map_err(|e| format!("{path}: saved state: {}", lua_err(e)))?,
        Carry::Fresh => lua.create_table().map_err(lua_err)?,
    };
    lua.globals().raw_set("state", st).map_err(lua_err)?;

    let chunk = sandbox::compile(&lua, &source, &cfg.path).map_err(lua_err)?;
    budget.reset();
    let returned: Value = chunk.call(()).map_err(lua_err)?;
    let at = format!("{path}:{}", return_line(&source));
    let Value::Table(module) = returned else {
        return Err(format!(
            "{at}: a strategy must return a table (it returned {})",
            returned.type_name()
        ));
    };
    let spec =
        validate(&module).map_err(|e| format!("{path}:{}: {e}", e.line(&source, &cfg.path)))?;
    *ctx.default_symbol.lock().unwrap_or_else(|e| e.into_inner()) = spec.symbols.first().cloned();
    *ctx.bar_series.lock().unwrap_or_else(|e| e.into_inner()) = spec.bars.series(&spec.symbols);
    let handlers: Vec<Option<Function>> = HANDLERS
        .iter()
        .map(|h| module.raw_get::<Option<Function>>(*h).ok().flatten())
        .collect();
    let on_quote = HANDLERS.iter().position(|h| *h == "on_quote");
    let quote =
        QuoteSlot::new(&lua, on_quote.and_then(|i| handlers[i].as_ref())).map_err(lua_err)?;
    Ok(Version {
        lua,
        generation,
        budget,
        ctx,
        handlers,
        spec,
        quote,
    })
}

/// Loads and validates a strategy file without running it, for `moontick check`.
///
/// # Errors
/// The first problem, as `file:line: message`.
pub fn check_file(cfg: &RunnerConfig) -> Result<(), String> {
    build(cfg, 1, Carry::Fresh).map(|_| ())
}
