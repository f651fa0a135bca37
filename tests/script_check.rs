//! `moontick check`, driven through the real binary.

use std::process::Command;

fn check(args: &[&std::path::Path]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moontick"))
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_passes_the_shipped_strategies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies");
    let (ok, out) = check(&[&dir]);
    assert!(ok, "{out}");
    assert!(
        out.contains("breakout.lua") && out.contains("tradingview.lua"),
        "{out}"
    );
}

#[test]
fn check_reports_file_and_line_and_fails_on_a_broken_file() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.lua");
    std::fs::write(
        &broken,
        "local M = {}\nfunction M.on_quote(q)\n  if q.bid > then end\nend\nreturn M\n",
    )
    .unwrap();
    let invalid = tmp.path().join("invalid.lua");
    std::fs::write(&invalid, "local M = {}\nM.on_quote = 42\nreturn M\n").unwrap();
    let (ok, out) = check(&[&broken, &invalid]);
    assert!(!ok, "{out}");
    assert!(out.contains("broken.lua:3:"), "{out}");
    assert!(
        out.contains("invalid.lua:2: on_quote must be a function"),
        "{out}"
    );
}

#[test]
fn check_points_at_a_misspelt_handler_and_suggests_the_right_name() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("typo.lua");
    std::fs::write(
        &typo,
        "local M = { symbols = { 'MNQ' } }\n\nfunction M.on_qoute(q)\n  bot.buy{ size = 1 }\nend\n\nreturn M\n",
    )
    .unwrap();
    let (ok, out) = check(&[&typo]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("typo.lua:3: unknown handler 'on_qoute' (did you mean on_quote?)"),
        "{out}"
    );
}

#[test]
fn check_rejects_an_unknown_timeframe_and_an_undeclared_bars_symbol_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let tf = tmp.path().join("tf.lua");
    std::fs::write(
        &tf,
        "local M = {\n  symbols = { 'MNQ' },\n  bars = { '1m', '7m' },\n}\nfunction M.on_bar(b) end\nreturn M\n",
    )
    .unwrap();
    let sym = tmp.path().join("sym.lua");
    std::fs::write(
        &sym,
        "local M = {\n  symbols = { 'MNQ' },\n  bars = {\n    MNQ = { '5m' },\n    ES = { '1h' },\n  },\n}\nreturn M\n",
    )
    .unwrap();
    let good = tmp.path().join("good.lua");
    std::fs::write(
        &good,
        "return { symbols = { 'MNQ' }, bars = { '1d', MNQ = { '15s' } }, bars_history = 50 }\n",
    )
    .unwrap();
    let (ok, out) = check(&[&tf, &sym, &good]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("tf.lua:3: bars: unknown timeframe '7m'"),
        "{out}"
    );
    assert!(
        out.contains("sym.lua:5: bars: symbol 'ES' is not declared in symbols (MNQ)"),
        "{out}"
    );
    assert!(out.contains("ok    ") && out.contains("good.lua"), "{out}");
}
