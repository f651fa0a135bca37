//! The sandboxed Lua VM: which standard library a strategy gets, the text-only loaders,
//! `require` confined to `strategies/lib/`, the memory limit and the per-callback instruction
//! budget.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

/// Resource limits of one strategy VM.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes the VM may allocate in total.
    pub memory_bytes: usize,
    /// Lua instructions one callback (handler, timer, file load) may run.
    pub instructions_per_callback: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * 1024 * 1024,
            instructions_per_callback: 50_000_000,
        }
    }
}

/// The hook fires every this many instructions; small enough that a runaway loop stops within
/// microseconds of its budget, large enough that the hook costs nothing measurable.
const HOOK_EVERY: u32 = 10_000;

/// The most elements one `table.move` may move: 16 Mi iterations of C, a fraction of a second,
/// and more slots than a 64 MiB VM can hold.
pub const MOVE_MAX: i64 = 1 << 24;

/// The instruction budget of a VM: reset before each callback, decremented by the hook.
#[derive(Debug, Clone)]
pub struct Budget {
    ticks_left: Arc<AtomicU32>,
    ticks_per_callback: u32,
}

impl Budget {
    /// Gives the next callback its full budget.
    pub fn reset(&self) {
        self.ticks_left
            .store(self.ticks_per_callback, Ordering::Relaxed);
    }

    /// Ends the running callback at the next hook, as if its budget were spent (the watchdog's
    /// interrupt; `pcall` cannot swallow it either).
    pub fn exhaust(&self) {
        self.ticks_left.store(0, Ordering::Relaxed);
    }

    /// Hook ticks left to the running callback: it falls only while Lua instructions run.
    pub fn ticks_left(&self) -> u32 {
        self.ticks_left.load(Ordering::Relaxed)
    }
}

/// Binary chunks are refused everywhere: crafted bytecode can corrupt memory (deps-notes,
/// pitfall 4). `collectgarbage` keeps only the harmless options so a script cannot stop the
/// collector and walk into the memory limit on purpose.
///
/// Lua code that runs with the instruction hook off cannot be stopped, so the sandbox leaves
/// no way to write any:
/// - `__gc` finalizers run with hooks disabled (`GCTM` clears `allowhook`), at whatever
///   allocation triggers a collection and when the VM is closed; one endless finalizer would
///   hang the strategy's thread, or the thread dropping an old version on reload, for good.
///   `setmetatable` refuses a metatable with a `__gc` field, rather than quietly dropping it: a
///   finalizer that silently never runs is a bug the author cannot see. A `__gc` added to the
///   metatable later does nothing (Lua marks an object for finalization only when its
///   metatable is set), which is why even `__gc = false` is refused: it would mark the object,
///   and a function stored there afterwards would run. `debug.setmetatable` is not loaded, and
///   the metatables of mlua's userdata are protected by `__metatable`.
/// - An error raised by the hook itself leaves hooks off until the next protected boundary
///   (`luaD_hook` is left by a long jump before it re-enables them). Before that boundary, Lua
///   runs the `xpcall` message handler, so the handler is skipped once the budget is spent.
/// - To-be-closed variables: when the hook raises its error, mlua (0.12.2,
///   `callback_error_ext`) calls `lua_settop` on the interrupted function's frame, and
///   lowering the top runs the `__close` handlers of that frame's `<close>` variables, with
///   hooks off. A `__close` metamethod can be added to a metatable at any time, so the only
///   sure cut is the attribute itself: chunks declaring a `<close>` variable are refused, by
///   [`compile`] (strategy files and modules) and by `load`. Without them no `__close` ever
///   runs.
/// - `string.rep("", n)` loops `n` times in C even though the result is empty, so a huge `n`
///   spins with no Lua instruction for the hook to count: an empty result is returned at once.
/// - `table.move` loops `e - f` times in C, and moving nils into an empty table allocates
///   nothing, so neither the hook nor the memory limit stops it: it is capped at
///   [`MOVE_MAX`] elements, more than a VM within its memory limit can hold anyway.
///
/// Everything else that runs Lua code does so with the hook on, so the budget interrupts it
/// (tests below): the `xpcall` message handler for an error of the script's own (also for a stack overflow,
/// where a handler that fails again ends in "error in error handling"), a `load` reader, `table.sort` comparators,
/// `string.gsub` replacement functions and every other metamethod. `__mode` runs no code.
/// What remains is C time bounded by memory: building a string or a table the size of the
/// memory limit, and Lua patterns, which backtrack: `string.find(s, ".-.-.-x")` on a string of
/// a few kilobytes takes seconds, polynomially more with longer strings and more `-`/`*`. The
/// per-callback watchdog is what sees those.
///
/// Once the instruction budget is spent, `pcall`, `xpcall`, `coroutine.resume` and
/// `coroutine.close` (which returns the error of a `__close` handler) re-raise the
/// error instead of returning it: otherwise `while true do pcall(spin) end` would catch every
/// interruption (the count hook fires at the same phase of the inner loop each time) and never
/// end.
const PRELUDE: &str = r#"
local exhausted = ...
-- Captured so that a script redefining the globals cannot switch these guards off.
local error, rawget, type, tostring, tointeger = error, rawget, type, tostring, math.tointeger
local raw_setmetatable = setmetatable
local raw_pcall, raw_xpcall, raw_resume, raw_close = pcall, xpcall, coroutine.resume, coroutine.close
local function pass(ok, ...)
  if not ok and exhausted() then error((...), 0) end
  return ok, ...
end
pcall = function(...) return pass(raw_pcall(...)) end
-- An error raised by the hook leaves hooks off until the next protected boundary, and the
-- message handler runs before it: once the budget is spent the handler is skipped (its result
-- would be re-raised past anyway), or an endless handler could never be stopped.
xpcall = function(f, msgh, ...)
  return pass(raw_xpcall(f, function(m)
    if exhausted() then return m end
    return msgh(m)
  end, ...))
end
coroutine.resume = function(...) return pass(raw_resume(...)) end
coroutine.close = function(...) return pass(raw_close(...)) end
local raw_load, raw_cg = load, collectgarbage
-- `...` rather than `env`: an explicit nil env would leave the chunk without globals.
local function loaded(f, ...)
  if f == nil and exhausted() then error((...), 0) end
  return f, ...
end
local concat, find = table.concat, string.find
local no_close = select(2, ...)
load = function(chunk, name, _mode, ...)
  if type(chunk) == "function" then
    -- Read it all first (the reader runs under the budget) so it can be checked as a whole.
    local parts = {}
    while true do
      local part = chunk()
      if part == nil or part == "" then break end
      if type(part) ~= "string" then return nil, "reader function must return a string" end
      parts[#parts + 1] = part
    end
    chunk = concat(parts)
  end
  if type(chunk) == "string" and find(chunk, "<%s*close%s*>") then
    return nil, no_close
  end
  return loaded(raw_load(chunk, name, "t", ...))
end
local cg_ok = { collect = true, count = true, step = true }
collectgarbage = function(opt, ...)
  if opt ~= nil and not cg_ok[opt] then
    error("collectgarbage option '" .. tostring(opt) .. "' is not available to strategies", 2)
  end
  return raw_cg(opt, ...)
end
string.dump = nil
dofile, loadfile = nil, nil
local raw_rep, raw_move = string.rep, table.move
setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc finalizers are not available to strategies (they run where the instruction budget cannot stop them)", 2)
  end
  return raw_setmetatable(t, mt)
end
string.rep = function(s, n, sep)
  if s == "" and (sep == nil or sep == "") and type(n) == "number" then return "" end
  return raw_rep(s, n, sep)
end
local move_max = select(3, ...)
table.move = function(a1, f, e, t, a2)
  local fi, ei = tointeger(f), tointeger(e)
  if fi and ei and ei >= fi and ei - fi >= move_max then
    error("table.move: at most " .. move_max .. " elements at a time", 2)
  end
  return raw_move(a1, f, e, t, a2)
end
local time, clock, date, difftime = os.time, os.clock, os.date, os.difftime
os = { time = time, clock = clock, date = date, difftime = difftime }
"#;

/// Creates a sandboxed VM whose `require` looks only in `lib_dir`.
///
/// # Errors
/// Only if Lua itself cannot be set up (out of memory).
pub fn new_vm(lib_dir: &Path, limits: Limits) -> mlua::Result<(Lua, Budget)> {
    // OS is loaded only so that PRELUDE can keep its harmless clock functions.
    let libs = StdLib::ALL_SAFE & !(StdLib::IO | StdLib::PACKAGE);
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    let ticks =
        (limits.instructions_per_callback / u64::from(HOOK_EVERY)).clamp(1, u32::MAX as u64);
    let budget = Budget {
        ticks_left: Arc::new(AtomicU32::new(ticks as u32)),
        ticks_per_callback: ticks as u32,
    };
    let left = budget.ticks_left.clone();
    let exhausted = lua.create_function(move |_, ()| Ok(left.load(Ordering::Relaxed) == 0))?;
    lua.load(PRELUDE)
        .set_name("=moontick sandbox")
        .set_mode(ChunkMode::Text)
        .call::<()>((exhausted, NO_CLOSE, MOVE_MAX))?;
    install_require(&lua, lib_dir.to_path_buf())?;

    let left = budget.ticks_left.clone();
    let max = limits.instructions_per_callback;
    // The global hook, not `set_hook`: mlua finds a per-thread hook by thread, so coroutines
    // created by the script would run without it, and without a budget.
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_lua, debug| {
            let prev = left.load(Ordering::Relaxed);
            if prev > 0 {
                left.store(prev - 1, Ordering::Relaxed);
                return Ok(VmState::Continue);
            }
            // The budget stays at zero, so a `pcall` that swallows this error is interrupted
            // again within HOOK_EVERY instructions.
            let src = debug.source().short_src.map(|s| s.into_owned());
            let line = debug.current_line();
            let at = match (src, line) {
                (Some(s), Some(l)) => format!("{s}:{l}: "),
                _ => String::new(),
            };
            Err(mlua::Error::RuntimeError(format!(
                "{at}instruction budget exceeded ({max} instructions per callback)"
            )))
        },
    )?;
    // Set last: the prelude and stdlib setup allocate before the script gets its share.
    lua.set_memory_limit(limits.memory_bytes)?;
    Ok((lua, budget))
}

const NO_CLOSE: &str = "to-be-closed variables (<close>) are not available to strategies: their __close handlers can run where the instruction budget cannot stop them";

/// The line of the first `<close>` attribute in `source`, if any. A plain text search: a
/// `<close>` inside a string or a comment is refused too, which costs nothing real.
fn close_attribute_line(source: &str) -> Option<usize> {
    source
        .lines()
        .position(|line| {
            line.match_indices('<').any(|(at, _)| {
                let rest = line[at + 1..].trim_start();
                rest.strip_prefix("close")
                    .is_some_and(|r| r.trim_start().starts_with('>'))
            })
        })
        .map(|i| i + 1)
}

/// Compiles `source` as text (never bytecode), naming the chunk after `path` so errors read
/// `path:line: message`.
///
/// # Errors
/// A syntax error, with file and line.
pub fn compile(lua: &Lua, source: &str, path: &Path) -> mlua::Result<Function> {
    if let Some(line) = close_attribute_line(source) {
        return Err(mlua::Error::SyntaxError {
            message: format!("{}:{line}: {NO_CLOSE}", path.display()),
            incomplete_input: false,
        });
    }
    lua.load(source)
        .set_name(format!("@{}", path.display()))
        .set_mode(ChunkMode::Text)
        .into_function()
}

fn install_require(lua: &Lua, lib_dir: PathBuf) -> mlua::Result<()> {
    let loaded: Table = lua.create_table()?;
    let require = lua.create_function(move |lua, name: String| {
        if let Some(v) = loaded.raw_get::<Option<Value>>(name.as_str())? {
            return Ok(v);
        }
        let path = module_path(&lib_dir, &name).map_err(|msg| {
            mlua::Error::RuntimeError(format!("{}require('{name}'): {msg}", caller_location(lua)))
        })?;
        let source = std::fs::read_to_string(&path).map_err(|e| {
            mlua::Error::RuntimeError(format!(
                "{}require('{name}'): cannot read {}: {e}",
                caller_location(lua),
                path.display()
            ))
        })?;
        let f = compile(lua, &source, &path)?;
        let v: Value = f.call(name.as_str())?;
        let v = if v.is_nil() { Value::Boolean(true) } else { v };
        loaded.raw_set(name.as_str(), v.clone())?;
        Ok(v)
    })?;
    lua.globals().raw_set("require", require)
}

/// Maps a module name to a file inside `lib_dir`. Only dotted identifiers are accepted, so no
/// name can climb out of the directory; a leading `lib.` is allowed because that is how the
/// file looks from `strategies/`.
fn module_path(lib_dir: &Path, name: &str) -> Result<PathBuf, String> {
    let name = name.strip_prefix("lib.").unwrap_or(name);
    let ok = !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if !ok {
        return Err(
            "modules are named like 'helpers' or 'lib.helpers' and live in strategies/lib/".into(),
        );
    }
    let mut path = lib_dir.to_path_buf();
    for part in name.split('.') {
        path.push(part);
    }
    path.set_extension("lua");
    if !path.is_file() {
        return Err(format!(
            "no module {} (strategies may only require files in strategies/lib/)",
            path.display()
        ));
    }
    Ok(path)
}

/// `file:line: ` of the Lua code that called the running Rust function, for error messages.
pub fn caller_location(lua: &Lua) -> String {
    lua.inspect_stack(1, |d| {
        let src = d.source().short_src.map(|s| s.into_owned());
        match (src, d.current_line()) {
            (Some(s), Some(l)) => format!("{s}:{l}: "),
            (Some(s), None) => format!("{s}: "),
            _ => String::new(),
        }
    })
    .unwrap_or_default()
}

/// One line describing a Lua error: the message with its `file:line`, without the traceback
/// and without mlua's wrapping of errors raised by Rust callbacks.
pub fn describe(err: &mlua::Error) -> String {
    match err {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::WithContext { cause, context } => format!("{context}: {}", describe(cause)),
        mlua::Error::RuntimeError(m) => first_line(m),
        mlua::Error::SyntaxError { message, .. } => first_line(message),
        mlua::Error::MemoryError(m) => format!("memory limit reached: {}", first_line(m)),
        other => first_line(&other.to_string()),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_owned()
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
