//! The `state` global: copying it from an old VM into a new one on reload, and saving its
//! JSON-encodable part to `STATE_DIR/<name>.json` so a restart finds it again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mlua::serde::{DeserializeOptions, SerializeOptions};
use mlua::{Lua, LuaSerdeExt, Table, Value};

/// Deep deeper than this is almost certainly a cycle through the keys or a mistake; the copy
/// stops there rather than overflowing the stack.
const MAX_DEPTH: usize = 64;

/// Copies every plain value (nil, booleans, numbers, strings, tables of them) of `from` (a table
/// in the old VM) into `into` (a table in the new VM), overwriting keys present in both.
/// Functions, coroutines and userdata belong to the old VM and cannot move: they are skipped.
///
/// # Errors
/// When the new VM runs out of memory.
pub fn merge_into(new: &Lua, from: &Table, into: &Table) -> mlua::Result<()> {
    let mut seen = HashMap::new();
    for pair in from.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let (Some(k), Some(v)) = (copy(new, &k, &mut seen, 0)?, copy(new, &v, &mut seen, 0)?)
        else {
            continue;
        };
        into.raw_set(k, v)?;
    }
    Ok(())
}

fn copy(
    new: &Lua,
    v: &Value,
    seen: &mut HashMap<usize, Table>,
    depth: usize,
) -> mlua::Result<Option<Value>> {
    Ok(Some(match v {
        Value::Nil => Value::Nil,
        Value::Boolean(b) => Value::Boolean(*b),
        Value::Integer(i) => Value::Integer(*i),
        Value::Number(n) => Value::Number(*n),
        Value::String(s) => Value::String(new.create_string(s.as_bytes())?),
        Value::Table(t) => {
            // Shared sub-tables stay shared, and cycles terminate.
            let key = t.to_pointer() as usize;
            if let Some(done) = seen.get(&key) {
                return Ok(Some(Value::Table(done.clone())));
            }
            if depth >= MAX_DEPTH {
                return Ok(None);
            }
            let out = new.create_table()?;
            seen.insert(key, out.clone());
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                if let (Some(k), Some(v)) = (
                    copy(new, &k, seen, depth + 1)?,
                    copy(new, &v, seen, depth + 1)?,
                ) {
                    out.raw_set(k, v)?;
                }
            }
            Value::Table(out)
        }
        _ => return Ok(None),
    }))
}

/// The JSON-encodable part of `state`: functions and other VM-bound values are left out.
///
/// # Errors
/// When the table cannot be represented at all (for example a cycle).
pub fn to_json(lua: &Lua, state: &Table) -> mlua::Result<serde_json::Value> {
    let opts = DeserializeOptions::new()
        .deny_unsupported_types(false)
        .deny_recursive_tables(true)
        .sort_keys(true);
    lua.from_value_with(Value::Table(state.clone()), opts)
}

/// A Lua table from saved JSON (`null` becomes a missing key, arrays get no metatable).
///
/// # Errors
/// When the VM runs out of memory or the JSON is not an object.
pub fn from_json(lua: &Lua, json: &serde_json::Value) -> mlua::Result<Table> {
    let opts = SerializeOptions::new()
        .set_array_metatable(false)
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    match lua.to_value_with(json, opts)? {
        Value::Table(t) => Ok(t),
        _ => Err(mlua::Error::RuntimeError(
            "saved state is not a JSON object".into(),
        )),
    }
}

pub fn state_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Reads a saved state, if there is one.
///
/// # Errors
/// When the file exists but cannot be read or is not JSON.
pub fn load(dir: &Path, name: &str) -> std::io::Result<Option<serde_json::Value>> {
    let path = state_file(dir, name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the state atomically (temporary file, then rename) so a crash mid-write leaves the
/// previous save intact.
///
/// # Errors
/// When the directory cannot be created or written.
pub fn save(dir: &Path, name: &str, json: &serde_json::Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = state_file(dir, name);
    let tmp = dir.join(format!(".{name}.json.tmp"));
    let bytes = serde_json::to_vec_pretty(json).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_copies_nested_data_and_skips_functions() {
        let old = Lua::new();
        let new = Lua::new();
        let from: Table = old
            .load("local shared = {1, 2}; return { n = 3, name = 'x', t = { a = shared, b = shared }, f = print, [7] = true }")
            .eval()
            .unwrap();
        let into = new.create_table().unwrap();
        into.raw_set("kept", 1).unwrap();
        merge_into(&new, &from, &into).unwrap();
        new.globals().set("s", into).unwrap();
        new.load("assert(s.n == 3 and s.name == 'x' and s.kept == 1 and s[7] == true)")
            .exec()
            .unwrap();
        new.load("assert(s.t.a == s.t.b and s.t.a[2] == 2 and s.f == nil)")
            .exec()
            .unwrap();
    }

    #[test]
    fn json_round_trip_keeps_plain_values() {
        let lua = Lua::new();
        let t: Table = lua
            .load("return { n = 1.5, list = {1, 2, 3}, s = 'x', f = print }")
            .eval()
            .unwrap();
        let json = to_json(&lua, &t).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"n": 1.5, "list": [1, 2, 3], "s": "x"})
        );
        let back = from_json(&lua, &json).unwrap();
        assert_eq!(back.raw_get::<String>("s").unwrap(), "x");
        assert_eq!(back.get::<Table>("list").unwrap().raw_len(), 3);
    }
}
