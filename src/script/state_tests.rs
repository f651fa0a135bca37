//! Unit tests of `state`: carried over on reload and saved to disk and back exactly (with
//! property tests of the file format).

use super::*;
use proptest::prelude::*;

fn eval(lua: &Lua, code: &str) -> Table {
    lua.load(code).eval().unwrap()
}

/// Saves `state` of `lua` to a file and loads it into a fresh VM, as a restart does.
fn restart(lua: &Lua, state: &Table) -> (Lua, Table) {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "s", &to_json(lua, state, "s").unwrap()).unwrap();
    let json = load(dir.path(), "s").unwrap().unwrap();
    let fresh = Lua::new();
    let t = from_json(&fresh, &json).unwrap();
    (fresh, t)
}

const TRICKY: &str = r#"
    local s = { 10, 20, 30, name = "x", [1.5] = "half", [true] = "yes", [-4] = "neg" }
    s.keys = { [1] = "int", ["1"] = "str" }
    s.i, s.f, s.zero = 1, 1.0, -0.0
    s.nan, s.inf, s.ninf = 0/0, math.huge, -math.huge
    s.bin = "\xff\x00\xfe"
    s[string.char(200)] = "non-utf8 key"
    s.shared = { n = 1 }
    s.again = s.shared
    s.self = s
    s.holes = { 1, nil, 3 }
    s.fn = print
    s.deep = { list = { 1, print, 3 }, co = coroutine.create(function() end) }
    s[{ k = 1 }] = "table key"
    s["$list"], s["$$x"], s["$float"] = "dollar", 2, { ["$ref"] = 0 }
    return s
"#;

const CHECKS: &str = r#"
    local s = ...
    assert(s[1] == 10 and s[3] == 30 and s.name == "x" and s[1.5] == "half")
    assert(s[true] == "yes" and s[-4] == "neg")
    assert(s.keys[1] == "int" and s.keys["1"] == "str")
    assert(math.type(s.i) == "integer" and math.type(s.f) == "float" and s.f == 1)
    assert(1 / s.zero == -math.huge)
    assert(s.nan ~= s.nan and s.inf == math.huge and s.ninf == -math.huge)
    assert(s.bin == "\xff\x00\xfe" and s[string.char(200)] == "non-utf8 key")
    assert(s.again == s.shared and s.shared.n == 1 and s.self == s)
    assert(s.holes[1] == 1 and s.holes[2] == nil and s.holes[3] == 3)
    assert(s.fn == nil and s.deep.co == nil)
    assert(s.deep.list[1] == 1 and s.deep.list[2] == nil and s.deep.list[3] == 3)
    local found
    for k, v in pairs(s) do if type(k) == "table" then found = k.k == 1 and v == "table key" end end
    assert(found, "table key lost")
    assert(s["$list"] == "dollar" and s["$$x"] == 2 and s["$float"]["$ref"] == 0)
"#;

#[test]
fn plain_data_is_saved_as_plain_json() {
    let lua = Lua::new();
    let s = eval(
        &lua,
        "return { count = 3, px = 1.5, fills = { 10, 20 }, mixed = { 1, x = 2 } }",
    );
    assert_eq!(
        to_json(&lua, &s, "s").unwrap(),
        serde_json::json!({
            "$moontick_state": 2, "count": 3, "px": 1.5, "fills": [10, 20],
            "mixed": { "$list": [1], "x": 2 }
        })
    );
}

#[test]
fn a_restart_keeps_every_plain_value_exactly() {
    let lua = Lua::new();
    let s = eval(&lua, TRICKY);
    let (fresh, back) = restart(&lua, &s);
    fresh.load(CHECKS).call::<()>(back).unwrap();
}

#[test]
fn a_reload_keeps_every_plain_value_exactly() {
    let (old, new) = (Lua::new(), Lua::new());
    let s = eval(&old, TRICKY);
    let into = new.create_table().unwrap();
    into.raw_set("kept", 1).unwrap();
    merge_into(&new, &s, &into, "s").unwrap();
    new.load(CHECKS).call::<()>(&into).unwrap();
    new.load("local s = ... assert(s.kept == 1)")
        .call::<()>(into)
        .unwrap();
}

#[test]
fn what_cannot_be_saved_is_named_by_path_and_the_rest_is_kept() {
    let lua = Lua::new();
    let s = eval(&lua, TRICKY);
    let mut enc = Encoder::default();
    enc.state(&s).unwrap();
    let mut got: Vec<String> = enc.skipped.iter().map(|s| s.to_string()).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "state.deep.co: a coroutine cannot be saved",
            "state.deep.list[2]: a function cannot be saved",
            "state.fn: a function cannot be saved",
        ]
    );
    // Reported once per VM: a second save does not name them again.
    to_json(&lua, &s, "s").unwrap();
    assert_eq!(lua.app_data_ref::<Reported>().unwrap().0.len(), 3);
    to_json(&lua, &s, "s").unwrap();
    assert_eq!(lua.app_data_ref::<Reported>().unwrap().0.len(), 3);
}

#[test]
fn a_ta_indicator_in_state_is_named_and_left_out_so_the_file_can_make_it_again() {
    let lua = Lua::new();
    crate::script::ta::register(&lua).unwrap();
    let s = eval(
        &lua,
        "local s = { n = 3, fast = ta.ema(9), bands = { ta.bbands(20, 2) } } return s",
    );
    let mut enc = Encoder::default();
    let json = enc.state(&s).unwrap();
    let mut got: Vec<String> = enc.skipped.iter().map(|s| s.to_string()).collect();
    got.sort();
    let why = "indicator cannot be saved (it belongs to one version of the file: make it when the file loads and let it warm up again)";
    assert_eq!(
        got,
        [
            format!("state.bands[1]: a ta.bbands {why}"),
            format!("state.fast: a ta.ema {why}"),
        ]
    );
    // Absent after a restart, so `state.fast = state.fast or ta.ema(9)` makes a new one.
    let (fresh, t) = restart(&lua, &s);
    crate::script::ta::register(&fresh).unwrap();
    assert_eq!(json["n"], 3);
    fresh
        .load("local s = ... assert(s.n == 3 and s.fast == nil) s.fast = s.fast or ta.ema(9)")
        .call::<()>(t)
        .unwrap();
}

#[test]
fn nesting_deeper_than_the_limit_is_cut_there_and_the_file_still_loads() {
    let lua = Lua::new();
    let s = eval(
        &lua,
        "local s = { top = 1 } local t = s for i = 1, 40 do t.next = { depth = i } t = t.next end return s",
    );
    let mut enc = Encoder::default();
    enc.state(&s).unwrap();
    assert_eq!(enc.skipped.len(), 1, "{:?}", enc.skipped);
    assert!(
        enc.skipped[0].path.ends_with(".next.next"),
        "{:?}",
        enc.skipped
    );
    let (fresh, back) = restart(&lua, &s);
    let depth: i64 = fresh
        .load("local t = ... local d = 0 while t.next do t = t.next d = t.depth end return d")
        .call(back)
        .unwrap();
    assert_eq!(depth, codec::MAX_DEPTH as i64);
}

#[test]
fn a_file_of_the_first_format_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        state_file(dir.path(), "old"),
        r#"{"n": 3, "x": 1.5, "list": [1, 2, 3], "s": "x", "t": {"a": true}}"#,
    )
    .unwrap();
    let json = load(dir.path(), "old").unwrap().unwrap();
    let lua = Lua::new();
    let t = from_json(&lua, &json).unwrap();
    lua.load(
        "local s = ... assert(s.n == 3 and s.x == 1.5 and s.list[3] == 3 and s.s == 'x' and s.t.a)",
    )
    .call::<()>(t)
    .unwrap();
}

#[test]
fn an_unusable_file_is_moved_aside_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_file(dir.path(), "bad");
    for content in [
        "{ not json",
        r#"{"$moontick_state": 2, "a": [{"$ref": 5}]}"#,
        r#"{"$moontick_state": 2, "$nope": 1}"#,
        r#"{"$moontick_state": 99}"#,
    ] {
        std::fs::write(&path, content).unwrap();
        let err = load(dir.path(), "bad").unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("bad.json.unusable"), "{err}");
        assert!(!path.exists());
        let aside = dir.path().join("bad.json.unusable");
        assert_eq!(std::fs::read_to_string(aside).unwrap(), content);
    }
    assert!(load(dir.path(), "bad").unwrap().is_none());
}

#[test]
fn a_failed_save_names_the_path_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let err = save(&not_a_dir, "s", &serde_json::json!({}))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&not_a_dir.display().to_string()), "{err}");
    assert!(err.contains("STATE_DIR"), "{err}");
}

#[test]
fn a_save_replaces_the_file_and_leaves_no_temporary_behind() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "s", &serde_json::json!({"a": 1})).unwrap();
    save(dir.path(), "s", &serde_json::json!({"a": 2})).unwrap();
    assert_eq!(load(dir.path(), "s").unwrap().unwrap()["a"], 2);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["s.json"]);
}

/// An arbitrary plain Lua value, built in Rust so proptest can shrink it.
#[derive(Debug, Clone)]
enum Tree {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Table(Vec<(Key, Tree)>),
}

#[derive(Debug, Clone)]
enum Key {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(Vec<u8>),
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(1.0),
        Just(1e300),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z1 ]{0,4}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..4),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        (1i64..6).prop_map(Key::Int),
        any::<i64>().prop_map(Key::Int),
        any::<f64>()
            .prop_filter("a key is never NaN", |f| !f.is_nan())
            .prop_map(Key::Float),
        any::<bool>().prop_map(Key::Bool),
        bytes().prop_map(Key::Str),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Tree::Bool),
        any::<i64>().prop_map(Tree::Int),
        float().prop_map(Tree::Float),
        bytes().prop_map(Tree::Str),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop::collection::vec((key(), inner), 0..8).prop_map(Tree::Table)
    })
}

fn key_value(lua: &Lua, k: &Key) -> Value {
    match k {
        Key::Int(i) => Value::Integer(*i),
        Key::Float(f) => Value::Number(*f),
        Key::Bool(b) => Value::Boolean(*b),
        Key::Str(s) => Value::String(lua.create_string(s).unwrap()),
    }
}

fn build_tree(lua: &Lua, t: &Tree) -> Value {
    match t {
        Tree::Bool(b) => Value::Boolean(*b),
        Tree::Int(i) => Value::Integer(*i),
        Tree::Float(f) => Value::Number(*f),
        Tree::Str(s) => Value::String(lua.create_string(s).unwrap()),
        Tree::Table(entries) => {
            let t = lua.create_table().unwrap();
            for (k, v) in entries {
                t.raw_set(key_value(lua, k), build_tree(lua, v)).unwrap();
            }
            Value::Table(t)
        }
    }
}

/// The same key, made in another VM.
fn rekey(lua: &Lua, k: &Value) -> Value {
    match k {
        Value::String(s) => Value::String(lua.create_string(s.as_bytes()).unwrap()),
        other => other.clone(),
    }
}

/// Deep equality across two VMs: same subtypes, NaN equal to NaN, -0.0 apart from 0.0.
fn same(a: &Value, b: &Value, lb: &Lua) -> Result<(), String> {
    match (a, b) {
        (Value::Boolean(x), Value::Boolean(y)) if x == y => Ok(()),
        (Value::Integer(x), Value::Integer(y)) if x == y => Ok(()),
        (Value::Number(x), Value::Number(y))
            if (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits() =>
        {
            Ok(())
        }
        (Value::String(x), Value::String(y)) if x.as_bytes() == y.as_bytes() => Ok(()),
        (Value::Table(x), Value::Table(y)) => {
            let mut n = 0;
            for pair in x.pairs::<Value, Value>() {
                let (k, v) = pair.unwrap();
                let w: Value = y.raw_get(rekey(lb, &k)).unwrap();
                same(&v, &w, lb).map_err(|e| format!("[{k:?}] {e}"))?;
                n += 1;
            }
            let m = y.pairs::<Value, Value>().count();
            if n == m {
                Ok(())
            } else {
                Err(format!("{n} entries became {m}"))
            }
        }
        _ => Err(format!("{a:?} became {b:?}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever plain value `state` holds, a restart and a reload give back an equal one.
    #[test]
    fn arbitrary_nested_values_round_trip(entries in prop::collection::vec((key(), tree()), 0..8)) {
        let lua = Lua::new();
        let Value::Table(state) = build_tree(&lua, &Tree::Table(entries)) else { unreachable!() };

        let (fresh, back) = restart(&lua, &state);
        same(&Value::Table(state.clone()), &Value::Table(back), &fresh)
            .map_err(TestCaseError::fail)?;

        let new = Lua::new();
        let into = new.create_table().unwrap();
        merge_into(&new, &state, &into, "s").unwrap();
        same(&Value::Table(state), &Value::Table(into), &new).map_err(TestCaseError::fail)?;
    }
}
