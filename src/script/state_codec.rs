//! The `state` file format (version 2): Lua values to JSON and back, exactly. The format is
//! described in the parent module.

use std::collections::HashMap;
use std::fmt::Write as _;

use mlua::{Lua, Table, Value};
use serde_json::{Map, Value as Json, json};

/// Tables nested deeper than this are left out (and reported). It keeps the file within
/// serde_json's parse limit of 128 nested arrays/objects: each level costs at most three
/// (`$pairs`, the pair, the table), plus one for a tagged value.
pub const MAX_DEPTH: usize = 32;

/// Members of a table object that are not keys: user keys starting with `$` get one more.
pub const LIST: &str = "$list";
pub const PAIRS: &str = "$pairs";
pub const VERSION: &str = "$moontick_state";
const FLOAT: &str = "$float";
const BYTES: &str = "$bytes";
const REF: &str = "$ref";

fn escape(key: &str) -> String {
    if key.starts_with('$') {
        format!("${key}")
    } else {
        key.to_owned()
    }
}

/// A value left out, with the key path it was found at and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub why: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.why)
    }
}

/// `state.a.b[3]`-style path of `key` inside `parent`.
pub fn child_path(parent: &str, key: &Value) -> String {
    match key {
        Value::String(s) => named_path(parent, &s.to_string_lossy()),
        Value::Integer(i) => format!("{parent}[{i}]"),
        Value::Number(n) => format!("{parent}[{n}]"),
        Value::Boolean(b) => format!("{parent}[{b}]"),
        other => format!("{parent}[<{}>]", other.type_name()),
    }
}

fn named_path(parent: &str, key: &str) -> String {
    if is_identifier(key) {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{key:?}]")
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Lua values to the JSON of the format, collecting what had to be left out.
#[derive(Default)]
pub struct Encoder {
    /// Table identity to its number in the file, in the order the tables open.
    ids: HashMap<usize, usize>,
    pub skipped: Vec<Skipped>,
}

impl Encoder {
    /// The encoding of `state` (a table at depth 0).
    ///
    /// # Errors
    /// Only when Lua fails to read a table (out of memory).
    pub fn state(&mut self, t: &Table) -> mlua::Result<Json> {
        self.table(t, 0, "state", true)
    }

    /// Why `v`, met at `depth`, cannot be written: decided for a whole entry before any of it is
    /// written, so an entry is either complete in the file or absent and table numbers match
    /// on both sides.
    fn left_out(&self, v: &Value, depth: usize) -> Option<String> {
        let why = match v {
            Value::Nil
            | Value::Boolean(_)
            | Value::Integer(_)
            | Value::Number(_)
            | Value::String(_) => return None,
            Value::Table(t) => {
                if depth <= MAX_DEPTH || self.ids.contains_key(&(t.to_pointer() as usize)) {
                    return None;
                }
                return Some(format!(
                    "a table nested more than {MAX_DEPTH} tables deep cannot be saved"
                ));
            }
            Value::Function(_) => "a function",
            Value::Thread(_) => "a coroutine",
            Value::UserData(ud) => match ud.type_name() {
                // A `ta` indicator: say which, and what to do instead.
                Ok(name) if name.as_bytes().starts_with(b"ta.") => {
                    return Some(format!(
                        "a {} indicator cannot be saved (it belongs to one version of the file: make it when the file loads and let it warm up again)",
                        name.to_string_lossy()
                    ));
                }
                _ => "a userdata",
            },
            Value::LightUserData(_) => "a userdata",
            _ => "this kind of value",
        };
        Some(format!("{why} cannot be saved"))
    }

    fn skip(&mut self, path: String, why: String) {
        self.skipped.push(Skipped { path, why });
    }

    fn value(&mut self, v: &Value, depth: usize, path: &str) -> mlua::Result<Json> {
        Ok(match v {
            Value::Boolean(b) => Json::Bool(*b),
            Value::Integer(i) => Json::from(*i),
            Value::Number(f) => float(*f),
            Value::String(s) => match s.to_str() {
                Ok(text) => Json::String(text.to_string()),
                Err(_) => json!({ BYTES: hex(&s.as_bytes()) }),
            },
            Value::Table(t) => self.table(t, depth, path, false)?,
            // `left_out` was asked first; nil is never a value in a table.
            _ => Json::Null,
        })
    }

    /// A table: a JSON array when it is a plain non-empty list (and not `object`), else an
    /// object.
    fn table(&mut self, t: &Table, depth: usize, path: &str, object: bool) -> mlua::Result<Json> {
        let key = t.to_pointer() as usize;
        if let Some(&id) = self.ids.get(&key) {
            return Ok(json!({ REF: id }));
        }
        self.ids.insert(key, self.ids.len());
        let inner = depth + 1;

        let mut list = Vec::new();
        loop {
            let v: Value = t.raw_get(list.len() + 1)?;
            if v.is_nil() {
                break;
            }
            let p = format!("{path}[{}]", list.len() + 1);
            let item = match self.left_out(&v, inner) {
                Some(why) => {
                    self.skip(p, why);
                    Json::Null
                }
                None => self.value(&v, inner, &p)?,
            };
            list.push(item);
        }
        let n = list.len() as i64;

        let mut named = Vec::new();
        let mut other = Vec::new();
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            match &k {
                Value::Integer(i) if (1..=n).contains(i) => continue,
                Value::String(s) => {
                    if let Ok(text) = s.to_str() {
                        named.push((escape(&text), text.to_string(), v));
                        continue;
                    }
                }
                _ => {}
            }
            other.push((k, v));
        }
        if !object && named.is_empty() && other.is_empty() && !list.is_empty() {
            return Ok(Json::Array(list));
        }
        let mut out = Map::new();
        if !list.is_empty() {
            out.insert(LIST.into(), Json::Array(list));
        }
        // Sorted as the JSON object is: tables must open in the order they are read back.
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (escaped, k, v) in named {
            let p = named_path(path, &k);
            match self.left_out(&v, inner) {
                Some(why) => self.skip(p, why),
                None => {
                    let v = self.value(&v, inner, &p)?;
                    out.insert(escaped, v);
                }
            }
        }

        let mut pairs = Vec::new();
        for (k, v) in other {
            let p = child_path(path, &k);
            if let Some(why) = self.left_out(&k, inner) {
                self.skip(p, format!("{why} (as a key)"));
                continue;
            }
            if let Some(why) = self.left_out(&v, inner) {
                self.skip(p, why);
                continue;
            }
            let k = self.value(&k, inner, &p)?;
            let v = self.value(&v, inner, &p)?;
            pairs.push(Json::Array(vec![k, v]));
        }

        if !pairs.is_empty() {
            out.insert(PAIRS.into(), Json::Array(pairs));
        }
        Ok(Json::Object(out))
    }
}

/// A float as a JSON number when serde_json reads that number back bit for bit (nearly always;
/// its fast parser is off by one unit in the last place for some large exponents), otherwise
/// and for NaN/±inf as `{"$float": "<text>"}`, which Rust's exact parser reads.
fn float(f: f64) -> Json {
    if let Some(n) = serde_json::Number::from_f64(f) {
        let exact = serde_json::to_string(&n)
            .ok()
            .and_then(|s| serde_json::from_str::<f64>(&s).ok())
            .is_some_and(|back| back.to_bits() == f.to_bits());
        if exact {
            return Json::Number(n);
        }
    }
    let text = if f.is_nan() {
        "nan".to_owned()
    } else {
        format!("{f:e}")
    };
    json!({ FLOAT: text })
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A decoded value, checked and ready to build in a VM.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    /// Entries in the order their tables open (list, named keys, pairs; key before value).
    Table(Vec<(Node, Node)>),
    /// The n-th table opened before this point.
    Ref(usize),
}

/// JSON of the format to [`Node`]s, checking every part, so that a bad file is found when it
/// is read (and named), not half-way through building the state.
#[derive(Default)]
pub struct Decoder {
    tables: usize,
}

impl Decoder {
    /// # Errors
    /// What is wrong and where, as `state.a[2]: …`.
    pub fn state(&mut self, j: &Json) -> Result<Node, String> {
        match j {
            Json::Object(o) if tag(o).is_none() => self.table(o, "state"),
            _ => Err("state: not a table".into()),
        }
    }

    fn value(&mut self, j: &Json, path: &str) -> Result<Node, String> {
        match j {
            Json::Bool(b) => Ok(Node::Bool(*b)),
            Json::Number(n) if n.is_f64() => Ok(Node::Float(n.as_f64().unwrap_or(f64::NAN))),
            Json::Number(n) => n
                .as_i64()
                .map(Node::Int)
                .ok_or_else(|| format!("{path}: integer {n} is out of range")),
            Json::String(s) => Ok(Node::Bytes(s.clone().into_bytes())),
            Json::Array(items) => {
                self.tables += 1;
                self.list(items, path).map(Node::Table)
            }
            Json::Object(o) => match tag(o) {
                None => self.table(o, path),
                Some((FLOAT, Json::String(s))) => s
                    .parse::<f64>()
                    .map(Node::Float)
                    .map_err(|_| format!("{path}: {s:?} is not a float")),
                Some((BYTES, Json::String(s))) => unhex(s)
                    .map(Node::Bytes)
                    .ok_or_else(|| format!("{path}: {BYTES} is not hex")),
                Some((REF, r)) => match r.as_u64() {
                    Some(n) if (n as usize) < self.tables => Ok(Node::Ref(n as usize)),
                    _ => Err(format!("{path}: {REF} {r} names no earlier table")),
                },
                Some((t, _)) => Err(format!("{path}: bad {t}")),
            },
            Json::Null => Err(format!("{path}: null outside a list")),
        }
    }

    fn list(&mut self, items: &[Json], path: &str) -> Result<Vec<(Node, Node)>, String> {
        let mut entries = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if !item.is_null() {
                let v = self.value(item, &format!("{path}[{}]", i + 1))?;
                entries.push((Node::Int(i as i64 + 1), v));
            }
        }
        Ok(entries)
    }

    /// The same order as the encoder's: `$list`, the keys as the object is sorted, `$pairs`.
    fn table(&mut self, o: &Map<String, Json>, path: &str) -> Result<Node, String> {
        self.tables += 1;
        let mut entries = match o.get(LIST) {
            None => Vec::new(),
            Some(Json::Array(items)) => self.list(items, path)?,
            Some(_) => return Err(format!("{path}: {LIST} is not an array")),
        };
        for (k, v) in o {
            let key = match k.strip_prefix('$') {
                None => k.as_str(),
                Some(rest) if rest.starts_with('$') => rest,
                // `$moontick_state` is read by the caller.
                Some(_) if matches!(k.as_str(), LIST | PAIRS | VERSION) => continue,
                Some(_) => return Err(format!("{path}: unknown member {k:?}")),
            };
            let v = self.value(v, &named_path(path, key))?;
            entries.push((Node::Bytes(key.as_bytes().to_vec()), v));
        }
        match o.get(PAIRS) {
            None => {}
            Some(Json::Array(pairs)) => {
                for pair in pairs {
                    let Some([k, v]) = pair
                        .as_array()
                        .and_then(|a| <&[Json; 2]>::try_from(&a[..]).ok())
                    else {
                        return Err(format!("{path}: a pair is not [key, value]"));
                    };
                    let k = self.value(k, &format!("{path}[key]"))?;
                    if matches!(k, Node::Float(f) if f.is_nan()) {
                        return Err(format!("{path}: NaN cannot be a key"));
                    }
                    let v = self.value(v, &format!("{path}[{k:?}]"))?;
                    entries.push((k, v));
                }
            }
            Some(_) => return Err(format!("{path}: {PAIRS} is not an array")),
        }
        Ok(Node::Table(entries))
    }
}

/// The one-member object of a tagged value, if `o` is one.
fn tag(o: &Map<String, Json>) -> Option<(&str, &Json)> {
    let mut it = o.iter();
    match (it.next(), it.next()) {
        (Some((k, v)), None) if matches!(k.as_str(), FLOAT | BYTES | REF) => Some((k.as_str(), v)),
        _ => None,
    }
}

/// Builds the decoded `state` in `lua`, into `into` (which stands for table 0, so a reference
/// to `state` itself points at it).
///
/// # Errors
/// When the VM runs out of memory.
pub fn build_into(lua: &Lua, state: &Node, into: &Table) -> mlua::Result<()> {
    let Node::Table(entries) = state else {
        return Err(mlua::Error::RuntimeError("state is not a table".into()));
    };
    let mut tables = vec![into.clone()];
    fill(lua, into, entries, &mut tables)
}

fn fill(
    lua: &Lua,
    t: &Table,
    entries: &[(Node, Node)],
    tables: &mut Vec<Table>,
) -> mlua::Result<()> {
    for (k, v) in entries {
        let k = build(lua, k, tables)?;
        let v = build(lua, v, tables)?;
        t.raw_set(k, v)?;
    }
    Ok(())
}

fn build(lua: &Lua, node: &Node, tables: &mut Vec<Table>) -> mlua::Result<Value> {
    Ok(match node {
        Node::Bool(b) => Value::Boolean(*b),
        Node::Int(i) => Value::Integer(*i),
        Node::Float(f) => Value::Number(*f),
        Node::Bytes(b) => Value::String(lua.create_string(b)?),
        Node::Ref(i) => Value::Table(tables[*i].clone()),
        Node::Table(entries) => {
            let t = lua.create_table()?;
            tables.push(t.clone());
            fill(lua, &t, entries, tables)?;
            Value::Table(t)
        }
    })
}
