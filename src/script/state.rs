//! The `state` global: carried from an old VM into a new one on reload, and saved to
//! `STATE_DIR/<name>.json` so a restart finds it again, without silently losing any of it.
//!
//! # File format, version 2
//!
//! Plain JSON for plain data, so the file reads as the table it holds:
//!
//! ```json
//! { "$moontick_state": 2, "count": 3, "last": 1.0, "fills": [10, 20],
//!   "mixed": { "$list": [1, 2], "name": "x" }, "$pairs": [[7.5, true]] }
//! ```
//!
//! A **table** is a JSON array when it is a non-empty list (keys `1..n` and nothing else), and
//! otherwise an object whose members are its string keys that are valid UTF-8 (a key starting
//! with `$` gets one more `$`, so `$`-members are never keys), plus, when not empty:
//! - `"$list"`: the values at keys `1..n`, `n` counting the non-nil values from key 1 on;
//! - `"$pairs"`: every other entry as `[key, value]`: integer keys outside the list, floats,
//!   booleans, non-UTF-8 strings, tables. So `t[1]` and `t["1"]` are kept apart.
//!
//! In a list `null` holds the place of an item that could not be saved, so later items keep
//! their index. `state` itself is always an object, carrying the format version as
//! `"$moontick_state"`.
//!
//! A **value** is `true`/`false`; an integer is a JSON number without fraction or exponent
//! (`1`), a float always has one (`1.0`, `1e300`, `-0.0`), so Lua 5.4's two number subtypes
//! come back as they were; NaN, ±inf and the rare float that serde_json would not read back bit
//! for bit are `{"$float": "nan" | "inf" | "-inf" | "-5.628058062549045e217"}`; a UTF-8 string
//! is a JSON string and any other `{"$bytes": "<hex>"}`; a table is as above, or `{"$ref": n}`
//! for the n-th table of the file (counted from 0 in the order tables open: `state` itself,
//! then depth first through `$list`, the keys in sorted order, `$pairs`), so a table reached
//! twice is saved once and stays shared, and cycles survive.
//!
//! A file without `"$moontick_state"` is version 1, the plain JSON of earlier releases; it still
//! loads as it always did, and the next save writes version 2.
//!
//! Functions, coroutines and userdata belong to one VM and can be neither saved nor carried to
//! a new version, nor can tables nested more than [`codec::MAX_DEPTH`] deep: each is reported
//! once per version of the strategy by its key path (`state.a.b[3]: a function cannot be
//! saved`) and left out, never taking the rest with it. Reload uses the same encoding as the
//! file, so what survives a reload is exactly what survives a restart.

#[path = "state_codec.rs"]
mod codec;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table, Value};

use codec::{Decoder, Encoder, Node, Skipped, VERSION as VERSION_KEY};

/// The version written by [`to_json`].
pub const FORMAT_VERSION: u64 = 2;

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "cannot read saved state {path}: {source}; check that STATE_DIR is readable by the user moontick runs as"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("saved state {path} cannot be used ({reason}); {aside}")]
    Unusable {
        path: PathBuf,
        reason: String,
        aside: String,
    },
    #[error(
        "cannot save state to {path}: {source}; check that STATE_DIR exists and the user moontick runs as may write to it (the previous save is unchanged)"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The key paths already reported for one VM, so a function kept in `state` is named once, not
/// at every periodic save.
#[derive(Default)]
struct Reported(HashSet<String>);

fn report(lua: &Lua, strategy: &str, skipped: &[Skipped], what: &str) {
    if skipped.is_empty() {
        return;
    }
    if lua.app_data_ref::<Reported>().is_none() {
        lua.set_app_data(Reported::default());
    }
    let Some(mut seen) = lua.app_data_mut::<Reported>() else {
        return;
    };
    for s in skipped {
        if seen.0.insert(s.path.clone()) {
            tracing::warn!(strategy = %strategy, "{s}; {what}, the rest is kept");
        }
    }
}

/// Copies `from` (the `state` of the old VM) into `into` (a table in the new VM), overwriting
/// keys present in both, with the fidelity of a save: subtypes, keys, NaN, shared tables and
/// cycles are kept; functions and the like are reported and left out.
///
/// # Errors
/// When either VM runs out of memory.
pub fn merge_into(new: &Lua, from: &Table, into: &Table, strategy: &str) -> mlua::Result<()> {
    let mut enc = Encoder::default();
    let json = enc.state(from)?;
    report(
        new,
        strategy,
        &enc.skipped,
        "not carried over to the new version",
    );
    let node = Decoder::default()
        .state(&json)
        .map_err(mlua::Error::RuntimeError)?;
    codec::build_into(new, &node, into)
}

/// `state` in the file format (version 2). What cannot be saved is reported once per VM
/// through the log and left out.
///
/// # Errors
/// Only when Lua fails to read a table (out of memory).
pub fn to_json(lua: &Lua, state: &Table, strategy: &str) -> mlua::Result<serde_json::Value> {
    let mut enc = Encoder::default();
    let mut json = enc.state(state)?;
    report(lua, strategy, &enc.skipped, "left out of the saved state");
    if let serde_json::Value::Object(o) = &mut json {
        o.insert(VERSION_KEY.into(), FORMAT_VERSION.into());
    }
    Ok(json)
}

/// What a file holds, checked.
enum Saved {
    V1(serde_json::Value),
    V2(Node),
}

fn parse(json: &serde_json::Value) -> Result<Saved, String> {
    let Some(version) = json.get(VERSION_KEY) else {
        return match json {
            serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                Ok(Saved::V1(json.clone()))
            }
            _ => Err("not a JSON object".into()),
        };
    };
    match version.as_u64() {
        Some(FORMAT_VERSION) => Decoder::default().state(json).map(Saved::V2),
        _ => Err(format!(
            "format {version} is not one this moontick reads (it writes {FORMAT_VERSION}): was it saved by a newer release?"
        )),
    }
}

/// A Lua table from a saved state, either version.
///
/// # Errors
/// When the VM runs out of memory or the JSON is not a saved state.
pub fn from_json(lua: &Lua, json: &serde_json::Value) -> mlua::Result<Table> {
    match parse(json).map_err(mlua::Error::RuntimeError)? {
        Saved::V2(node) => {
            let t = lua.create_table()?;
            codec::build_into(lua, &node, &t)?;
            Ok(t)
        }
        Saved::V1(json) => {
            let opts = SerializeOptions::new()
                .set_array_metatable(false)
                .serialize_none_to_null(false)
                .serialize_unit_to_null(false);
            match lua.to_value_with(&json, opts)? {
                Value::Table(t) => Ok(t),
                _ => Err(mlua::Error::RuntimeError(
                    "saved state is not a JSON object".into(),
                )),
            }
        }
    }
}

pub fn state_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Reads and checks a saved state, if there is one. A file that is not a saved state is moved
/// aside (to `<name>.json.unusable`) so that the next save cannot overwrite what may be the
/// only copy of the trader's data.
///
/// # Errors
/// When the file exists but cannot be read, or is not a saved state.
pub fn load(dir: &Path, name: &str) -> Result<Option<serde_json::Value>, StateError> {
    let path = state_file(dir, name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    let checked = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(|json| parse(&json).map(|_| json));
    match checked {
        Ok(json) => Ok(Some(json)),
        Err(reason) => {
            let aside = path.with_extension("json.unusable");
            let aside = match std::fs::rename(&path, &aside) {
                Ok(()) => format!(
                    "moved it to {} so the next save cannot overwrite it, and started with an empty state; to restore it, fix it, stop moontick and move it back",
                    aside.display()
                ),
                Err(e) => format!(
                    "could not move it aside ({e}): move or fix it before the next save overwrites it"
                ),
            };
            Err(StateError::Unusable {
                path,
                reason,
                aside,
            })
        }
    }
}

/// Writes the state atomically: a temporary file in the same directory, flushed to disk, then
/// renamed over the old one and the directory flushed, so a crash or power loss at any point
/// leaves either the previous save or this one, whole.
///
/// # Errors
/// When the directory cannot be created or written.
pub fn save(dir: &Path, name: &str, json: &serde_json::Value) -> Result<(), StateError> {
    let path = state_file(dir, name);
    let write_err = |source| StateError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let tmp = dir.join(format!(".{name}.json.tmp"));
    let bytes = serde_json::to_vec_pretty(json).map_err(|e| write_err(std::io::Error::other(e)))?;
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    // The rename is durable only once the directory entry is on disk.
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)?;
    Ok(())
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
