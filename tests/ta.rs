//! The `ta` indicators, driven through a sandboxed strategy VM as a strategy calls them,
//! against the reference fixtures that `scripts/ta_fixtures.py` made with TA-Lib
//! (`tests/fixtures/ta/`), and their argument checks.

use std::path::{Path, PathBuf};

use mlua::{Lua, LuaSerdeExt, Table, Value};
use moontick::script::sandbox::{self, Limits};
use serde_json::Value as Json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ta")
}

fn vm() -> Lua {
    let (lua, budget) = sandbox::new_vm(Path::new("/nonexistent"), Limits::default()).unwrap();
    budget.reset();
    moontick::script::ta::register(&lua).unwrap();
    lua
}

fn read(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Feeds every bar to the fixture's indicator, as a strategy would in `on_bar`, and returns
/// per bar what `:update` returned and what `:value` returned right after.
const RUN: &str = r#"
local call, bars, inputs = ...
local ind = load("return " .. call)()
local out = {}
for i, b in ipairs(bars) do
  local args = {}
  for j, k in ipairs(inputs) do args[j] = b[k] end
  out[i] = { table.pack(ind:update(table.unpack(args, 1, #inputs))), table.pack(ind:value()) }
end
return out
"#;

/// The results of one call: empty for a lone nil (or all nils), else the numbers.
fn numbers(t: &Table) -> Vec<Option<f64>> {
    let n: i64 = t.get("n").unwrap();
    (1..=n).map(|i| t.get::<Option<f64>>(i).unwrap()).collect()
}

fn expected(v: &Json) -> Option<Vec<f64>> {
    match v {
        Json::Null => None,
        Json::Number(n) => Some(vec![n.as_f64().unwrap()]),
        Json::Array(xs) => Some(xs.iter().map(|x| x.as_f64().unwrap()).collect()),
        other => panic!("bad fixture value {other}"),
    }
}

fn close(got: f64, want: f64) -> bool {
    got == want || (got - want).abs() <= 1e-9 * want.abs()
}

#[test]
fn every_indicator_equals_its_ta_lib_fixture_warm_up_included() {
    let series = read(&fixtures().join("series.json"));
    let mut files: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "series.json")
        .collect();
    files.sort();
    assert!(files.len() >= 20, "fixtures missing: {files:?}");
    let lua = vm();
    let bars = lua.to_value(&series["bars"]).unwrap();
    let run = lua.load(RUN).into_function().unwrap();
    for file in files {
        let fx = read(&file);
        let call = fx["call"].as_str().unwrap();
        let inputs = lua.to_value(&fx["inputs"]).unwrap();
        let out: Table = run.call((call, &bars, inputs)).unwrap();
        let want = fx["outputs"].as_array().unwrap();
        assert_eq!(out.raw_len(), want.len(), "{call}");
        let mut warm_up = 0;
        for (i, w) in want.iter().enumerate() {
            let pair: Table = out.get(i + 1).unwrap();
            let got = numbers(&pair.get(1).unwrap());
            let again = numbers(&pair.get(2).unwrap());
            assert_eq!(
                got, again,
                "{call}: bar {i}: :value() differs from :update()"
            );
            match expected(w) {
                None => {
                    warm_up += 1;
                    assert!(
                        got.iter().all(Option::is_none),
                        "{call}: bar {i}: {got:?}, want nil"
                    );
                }
                Some(w) => {
                    assert_eq!(got.len(), w.len(), "{call}: bar {i}: {got:?} vs {w:?}");
                    for (g, w) in got.iter().zip(&w) {
                        let g = g.unwrap_or_else(|| panic!("{call}: bar {i}: nil, want {w}"));
                        assert!(close(g, *w), "{call}: bar {i}: {g} vs {w}");
                    }
                }
            }
        }
        assert!(warm_up < want.len(), "{call}: the fixture is all nil");
    }
}

/// The message of the error `code` raises, run as the chunk `@strategies/x.lua`.
fn error_of(lua: &Lua, code: &str) -> String {
    let err = lua
        .load(code)
        .set_name("@strategies/x.lua")
        .exec()
        .expect_err(code);
    sandbox::describe(&err)
}

#[test]
fn bad_periods_are_lua_errors_naming_the_call_and_line() {
    let lua = vm();
    for (code, msg) in [
        (
            "ta.ema(0)",
            "ta.ema: n must be a whole number from 1 to 100000 (got 0)",
        ),
        (
            "ta.sma(-3)",
            "ta.sma: n must be a whole number from 1 to 100000 (got -3)",
        ),
        (
            "ta.wma(2.5)",
            "ta.wma: n must be a whole number from 1 to 100000 (got 2.5)",
        ),
        (
            "ta.rsi('14')",
            "ta.rsi: n must be a whole number from 1 to 100000 (got \"14\")",
        ),
        (
            "ta.atr()",
            "ta.atr: n must be a whole number from 1 to 100000 (got nil)",
        ),
        (
            "ta.stdev(0/0)",
            "ta.stdev: n must be a whole number from 1 to 100000 (got NaN)",
        ),
        (
            "ta.highest(math.huge)",
            "ta.highest: n must be a whole number from 1 to 100000 (got inf)",
        ),
        (
            "ta.lowest(100001)",
            "ta.lowest: n must be a whole number from 1 to 100000 (got 100001)",
        ),
        (
            "ta.macd(12, 26)",
            "ta.macd: signal must be a whole number from 1 to 100000 (got nil)",
        ),
        (
            "ta.bbands(20, -1)",
            "ta.bbands: k must be a finite number >= 0 (got -1)",
        ),
        (
            "ta.bbands(20, 0/0)",
            "ta.bbands: k must be a finite number >= 0 (got NaN)",
        ),
    ] {
        let err = error_of(&lua, &format!("\n{code}"));
        assert_eq!(err, format!("strategies/x.lua:2: {msg}"), "{code}");
    }
}

#[test]
fn bad_update_values_are_lua_errors_and_leave_the_indicator_as_it_was() {
    let lua = vm();
    lua.load("e = ta.ema(2) e:update(1) a = ta.atr(3) v = ta.vwap()")
        .exec()
        .unwrap();
    for (code, msg) in [
        (
            "e:update(nil)",
            "ta.ema:update: value must be a finite number (got nil)",
        ),
        (
            "e:update(0/0)",
            "ta.ema:update: value must be a finite number (got NaN)",
        ),
        (
            "e:update(-math.huge)",
            "ta.ema:update: value must be a finite number (got -inf)",
        ),
        (
            "e:update('3')",
            "ta.ema:update: value must be a finite number (got \"3\")",
        ),
        (
            "a:update(1, 2)",
            "ta.atr:update: close must be a finite number (got nil)",
        ),
        (
            "a:update(1, 2, 1.5)",
            "ta.atr:update: high (1) is below low (2); the arguments are (high, low, close)",
        ),
        (
            "v:update(1, -1, 0)",
            "ta.vwap:update: volume must be a finite number >= 0 (got -1)",
        ),
        (
            "v:update(1, 1, 1.7e12)",
            "ta.vwap:update: time must be seconds since the Unix epoch, as bar.time, q.time and bot.now() give (got 1700000000000); that looks like milliseconds: divide by 1000",
        ),
        (
            "ta.crossed_above(1, 2, 0/0, 1)",
            "ta.crossed_above: prev_b must be a finite number (got NaN)",
        ),
        (
            "ta.crossed_below(1, {}, 1, 1)",
            "ta.crossed_below: a must be a finite number (got table)",
        ),
    ] {
        let err = error_of(&lua, code);
        assert_eq!(err, format!("strategies/x.lua:1: {msg}"), "{code}");
    }
    // Nothing above reached the EMA: its second value is still the seed.
    let v: f64 = lua.load("return e:update(3)").eval().unwrap();
    assert_eq!(v, 2.0);
}

#[test]
fn calling_a_method_with_a_dot_is_an_error_not_a_panic() {
    let lua = vm();
    let err = error_of(&lua, "local e = ta.sma(3) e.update(5)");
    assert_eq!(
        err,
        "strategies/x.lua:1: ta.sma:update: call it with a colon, as obj:update(...) (got 5 for obj)"
    );
    // Another indicator's method on this one is the same mistake.
    let err = error_of(&lua, "local e, s = ta.ema(3), ta.sma(3) e.value(s)");
    assert_eq!(
        err,
        "strategies/x.lua:1: ta.ema:value: call it with a colon, as obj:value(...) (got userdata for obj)"
    );
}

#[test]
fn crossings_need_a_strict_cross_and_nil_means_not_yet() {
    let lua = vm();
    let got: Vec<bool> = lua
        .load(
            r#"return {
              ta.crossed_above(1, 3, 2, 2),   -- from below to above
              ta.crossed_above(2, 3, 2, 2),   -- from touching to above
              ta.crossed_above(3, 4, 2, 2),   -- above all along
              ta.crossed_above(1, 2, 2, 2),   -- up to touching only
              ta.crossed_above(nil, 3, 2, 2), -- warming up
              ta.crossed_below(3, 1, 2, 2),
              ta.crossed_below(2, 1, 2, 2),
              ta.crossed_below(1, 0, 2, 2),
              ta.crossed_below(3, 2, 2, 2),
              ta.crossed_below(3, 1, 2, nil),
            }"#,
        )
        .eval()
        .unwrap();
    assert_eq!(
        got,
        [
            true, true, false, false, false, true, true, false, false, false
        ]
    );
}

#[test]
fn indicators_name_themselves_and_work_as_plain_values() {
    let lua = vm();
    let (name, kind, r): (String, String, Option<f64>) = lua
        .load(
            r#"
            local m = ta.macd(12, 26, 9)
            local list = { ta.sma(2) }
            list[1]:update(1)
            return tostring(m), type(m), list[1]:update(3)
            "#,
        )
        .eval()
        .unwrap();
    assert_eq!(
        (name.as_str(), kind.as_str(), r),
        ("ta.macd(12, 26, 9)", "userdata", Some(2.0))
    );
}

#[test]
fn windows_beyond_the_cap_are_refused_until_collected() {
    let lua = vm();
    // 32 MiB of windows is 4 Mi values: 41 windows of 100000 fit, the 42nd does not while
    // they are all held; dropped ones are collected and their room reused.
    let err = error_of(
        &lua,
        "held = {} for i = 1, 42 do held[i] = ta.sma(100000) end",
    );
    assert!(
        err.contains("ta.sma: indicator windows would take more than 32 MiB"),
        "{err}"
    );
    lua.load("held = nil for i = 1, 200 do local s = ta.sma(100000) end")
        .exec()
        .unwrap();
}

#[test]
fn moontick_check_knows_ta_and_points_at_a_bad_call() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.lua");
    std::fs::write(
        &good,
        "local fast, slow = ta.ema(9), ta.ema(21)\nlocal M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  local f, s = fast:update(q.last), slow:update(q.last)\nend\nreturn M\n",
    )
    .unwrap();
    let bad = tmp.path().join("bad.lua");
    std::fs::write(
        &bad,
        "local M = { symbols = { 'MNQ' } }\n\nlocal atr = ta.atr(0)\nreturn M\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
        .arg("check")
        .args([&good, &bad])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("ok    ") && text.contains("good.lua"),
        "{text}"
    );
    assert!(
        text.contains("bad.lua:3: ta.atr: n must be a whole number from 1 to 100000 (got 0)"),
        "{text}"
    );
}

#[test]
fn the_luals_stubs_declare_exactly_the_functions_ta_has() {
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies/types/ta.lua");
    let keys = |lua: &Lua| -> Vec<String> {
        let ta: Table = lua.globals().get("ta").unwrap();
        let mut k: Vec<String> = ta.pairs::<String, Value>().map(|p| p.unwrap().0).collect();
        k.sort();
        k
    };
    let stubbed = Lua::new();
    stubbed
        .load(std::fs::read_to_string(&stub).unwrap())
        .exec()
        .unwrap();
    let real = vm();
    assert_eq!(keys(&stubbed), keys(&real));
    assert_eq!(keys(&real).len(), 13);
}
