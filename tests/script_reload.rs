//! Hot reload through the real file watcher: state carried over, bad files rejected, timers
//! of old versions silenced, files appearing and disappearing.

mod common;

use std::time::Duration;

use common::fixture::*;
use moontick::script::RunState;

fn counting(version: &str) -> String {
    format!(
        r#"
local M = {{ symbols = {{ "MNQ" }} }}
function M.on_start(ctx)
  bot.buy{{ size = 1, tag = "{version}-start:" .. ctx.reason }}
end
function M.on_quote(q)
  state.n = (state.n or 0) + 1
  bot.buy{{ size = 1, tag = "{version}:" .. state.n }}
end
return M
"#
    )
}

#[test]
fn reload_keeps_state_and_runs_the_new_code() {
    let fx = Fixture::new();
    fx.write("counter", &counting("v1"));
    let host = fx.start_watching();
    wait_loaded(&host, "counter", 1);
    host.dispatch(quote("A", 1.0));
    wait_until("v1:1", || fx.has_tag("v1:1"));
    host.dispatch(quote("A", 2.0));
    wait_until("v1:2", || fx.has_tag("v1:2"));

    fx.save_by_rename("counter", &counting("v2"));
    wait_until("v2 started by reload", || fx.has_tag("v2-start:reload"));
    host.dispatch(quote("A", 3.0));
    wait_until("v2 counts on from v1's state", || fx.has_tag("v2:3"));
    assert_eq!(status(&host, "counter").generation, 2);
    host.shutdown();
}

#[test]
fn syntax_error_keeps_the_last_good_version_trading() {
    let fx = Fixture::new();
    fx.write("s", &counting("v1"));
    let host = fx.start_watching();
    wait_loaded(&host, "s", 1);

    fx.write(
        "s",
        "local M = {}\nfunction M.on_quote(q)\n  if q.bid > then end\nend\nreturn M\n",
    );
    wait_until("load error recorded", || {
        status(&host, "s").load_error.is_some()
    });
    let st = status(&host, "s");
    assert!(
        st.load_error.as_deref().unwrap().contains("s.lua:3:"),
        "{:?}",
        st.load_error
    );
    assert_eq!((st.generation, st.state), (1, RunState::Running));

    host.dispatch(quote("A", 1.0));
    wait_until("old version still trades", || fx.has_tag("v1:1"));

    fx.write("s", &counting("v2"));
    wait_until("fixed file loads", || fx.has_tag("v2-start:reload"));
    assert_eq!(status(&host, "s").load_error, None);
    host.shutdown();
}

#[test]
fn validation_error_keeps_the_last_good_version_trading() {
    let fx = Fixture::new();
    fx.write("s", &counting("v1"));
    let host = fx.start_watching();
    wait_loaded(&host, "s", 1);

    fx.write(
        "s",
        "local M = { symbols = \"MNQ\" }\nfunction M.on_qoute(q) end\n\nreturn M\n",
    );
    wait_until("validation error recorded", || {
        status(&host, "s").load_error.is_some()
    });
    let err = status(&host, "s").load_error.unwrap();
    // Either mistake may be found first; each is reported at its own line.
    assert!(
        err.contains("s.lua:1: symbols must be a list")
            || err.contains("s.lua:2: unknown handler 'on_qoute' (did you mean on_quote?)"),
        "{err}"
    );
    assert_eq!(status(&host, "s").generation, 1);

    host.dispatch(quote("A", 1.0));
    wait_until("old version still trades", || fx.has_tag("v1:1"));
    host.shutdown();
}

#[test]
fn old_version_timer_does_not_fire_after_a_reload() {
    let fx = Fixture::new();
    fx.write(
        "t",
        "local M = {}\nfunction M.on_start()\n  bot.every(0.02, function() bot.buy{ symbol = 'MNQ', size = 1, tag = 'v1-timer' } end)\nend\nreturn M\n",
    );
    let host = fx.start_watching();
    wait_until("v1 timer fires", || {
        fx.tags().iter().filter(|t| *t == "v1-timer").count() >= 2
    });

    fx.write("t", "local M = {}\nfunction M.on_start(ctx)\n  bot.buy{ symbol = 'MNQ', size = 1, tag = 'v2-start' }\nend\nreturn M\n");
    wait_until("v2 started", || fx.has_tag("v2-start"));
    let fired = fx.tags().iter().filter(|t| *t == "v1-timer").count();
    // Long enough for many of the old timer's periods to pass.
    std::thread::sleep(Duration::from_millis(300));
    let after = fx.tags().iter().filter(|t| *t == "v1-timer").count();
    assert_eq!(fired, after, "the old version's timer fired after the swap");
    host.shutdown();
}

#[test]
fn new_file_starts_a_strategy_and_deleting_it_stops_it() {
    let fx = Fixture::new();
    let host = fx.start_watching();
    assert!(host.status().is_empty());

    fx.write(
        "late",
        "local M = {}\nfunction M.on_start(ctx) bot.buy{ symbol = 'MNQ', size = 1, tag = 'started:' .. ctx.reason } end\nfunction M.on_stop(reason) bot.buy{ symbol = 'MNQ', size = 1, tag = 'stopped:' .. reason } end\nreturn M\n",
    );
    wait_until("new file starts", || fx.has_tag("started:start"));
    assert_eq!(status(&host, "late").state, RunState::Running);

    std::fs::remove_file(fx.path("late")).unwrap();
    wait_until("deleted file stops", || fx.has_tag("stopped:removed"));
    wait_until("strategy gone from status", || {
        host.strategy("late").is_none()
    });
    host.shutdown();
}

#[test]
fn no_fill_is_lost_across_a_reload() {
    let fx = Fixture::new();
    let src = |v: &str| {
        format!(
            "local M = {{}}\nfunction M.on_start(ctx) bot.buy{{ symbol = 'MNQ', size = 1, tag = '{v}' }} end\nfunction M.on_fill(f)\n  state.fills = state.fills or {{}}\n  table.insert(state.fills, f.order_id)\nend\nreturn M\n"
        )
    };
    fx.write("f", &src("v1"));
    let host = fx.start_watching();
    wait_loaded(&host, "f", 1);
    for id in 1..=300 {
        if id == 100 {
            fx.write("f", &src("v2"));
        }
        assert!(host.send("f", fill(id)));
        if id % 50 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    wait_until("reloaded", || fx.has_tag("v2"));
    host.shutdown();
    let fills: Vec<u64> = serde_json::from_value(fx.saved_state("f")["fills"].clone()).unwrap();
    assert_eq!(fills, (1..=300).collect::<Vec<u64>>());
}

#[test]
fn changing_a_lib_module_reloads_its_users_and_reads_do_not_trigger_reloads() {
    let fx = Fixture::new();
    std::fs::write(fx.dir.join("lib/settings.lua"), "return { tag = 'a' }").unwrap();
    fx.write(
        "user",
        "local s = require('settings')\nlocal M = {}\nfunction M.on_start(ctx) bot.buy{ symbol = 'MNQ', size = 1, tag = s.tag .. ':' .. ctx.reason } end\nreturn M\n",
    );
    let host = fx.start_watching();
    wait_until("first load", || fx.has_tag("a:start"));

    std::fs::write(fx.dir.join("lib/settings.lua"), "return { tag = 'b' }").unwrap();
    wait_until("reload after lib change", || fx.has_tag("b:reload"));
    // Loading reads both files; those reads must not count as changes.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&host, "user").generation, 2);
    host.shutdown();
}

/// Waits well past several debounce periods, then counts `on_start` calls of `version`.
fn starts_after_settling(fx: &Fixture, version: &str) -> usize {
    std::thread::sleep(Duration::from_millis(1500));
    fx.tags()
        .iter()
        .filter(|t| t.starts_with(&format!("{version}-start:")))
        .count()
}

#[test]
fn one_save_in_place_reloads_once() {
    let fx = Fixture::new();
    fx.write("once", &counting("v1"));
    let host = fx.start_watching();
    wait_loaded(&host, "once", 1);

    // One save, as editors that restore the file's mode after writing do it: the write's
    // events and the mode change's event land in different debounce batches (100 ms).
    fx.write("once", &counting("v2"));
    std::thread::sleep(Duration::from_millis(150));
    let mode = std::fs::metadata(fx.path("once")).unwrap().permissions();
    std::fs::set_permissions(fx.path("once"), mode).unwrap();
    wait_until("v2 started", || fx.has_tag("v2-start:reload"));
    assert_eq!(starts_after_settling(&fx, "v2"), 1, "{:?}", fx.tags());
    assert_eq!(status(&host, "once").generation, 2);

    fx.save_by_rename("once", &counting("v3"));
    wait_until("v3 started", || fx.has_tag("v3-start:reload"));
    assert_eq!(starts_after_settling(&fx, "v3"), 1, "{:?}", fx.tags());
    assert_eq!(status(&host, "once").generation, 3);
    host.shutdown();
}

/// The operator's pause: no quotes, timers or webhooks while paused, kept across a reload (unlike
/// a pause after errors), and lifted only by resuming.
#[test]
fn an_operator_pause_holds_across_a_reload_until_resumed() {
    let fx = Fixture::new();
    let src = |v: u32| {
        format!(
            "local M = {{ symbols = {{ 'MNQ' }} }}\nfunction M.on_quote(q)\n  bot.buy{{ size = 1, tag = 'v{v}-' .. q.bid }}\nend\nreturn M\n"
        )
    };
    fx.write("p", &src(1));
    let host = fx.start_watching();
    host.dispatch(quote("A", 1.0));
    wait_until("a quote before the pause", || fx.has_tag("v1-1.0"));
    assert!(host.hold("p", true));
    assert!(
        !host.hold("nope", true),
        "an unknown strategy is named as such"
    );
    wait_until("paused", || status(&host, "p").state == RunState::Paused);
    host.dispatch(quote("A", 2.0));
    fx.write("p", &src(2));
    wait_loaded(&host, "p", 2);
    assert_eq!(
        status(&host, "p").state,
        RunState::Paused,
        "a reload keeps the pause"
    );
    host.dispatch(quote("A", 3.0));
    assert!(host.hold("p", false));
    wait_until("running", || status(&host, "p").state == RunState::Running);
    host.dispatch(quote("A", 4.0));
    wait_until("a quote after resuming", || fx.has_tag("v2-4.0"));
    let tags = fx.tags();
    assert!(
        !tags
            .iter()
            .any(|t| t.ends_with("-2.0") || t.ends_with("-3.0")),
        "no quote was handled while paused: {tags:?}"
    );
    host.shutdown();
}
