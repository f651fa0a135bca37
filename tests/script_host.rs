//! The strategy host without the watcher: containment of bad handlers, the sandbox seen from a
//! strategy file, delivery guarantees, state across restarts, webhooks and the `bot` API.

mod common;

use common::fixture::*;
use moontick::script::{BotCall, Event, Limits, RunState, WebhookBody, WebhookRequest};

#[test]
fn runtime_error_in_a_handler_does_not_stop_the_strategy() {
    let fx = Fixture::new();
    fx.write(
        "e",
        "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  if q.bid < 0 then local x = nil; return x.boom end\n  bot.buy{ size = 1, tag = 'ok' }\nend\nreturn M\n",
    );
    let host = fx.start(fx.config());
    host.dispatch(quote("A", -1.0));
    host.dispatch(quote("B", 1.0));
    wait_until("next quote handled", || fx.has_tag("ok"));
    let st = status(&host, "e");
    assert_eq!(st.state, RunState::Running);
    assert!(
        st.last_error.as_deref().unwrap().contains("e.lua:3:"),
        "{:?}",
        st.last_error
    );
    host.shutdown();
}

/// `bot.after` with a delay too big for a `Duration` used to panic the strategy's thread (which
/// then looked alive but handled nothing); now it is a Lua error and the next event is handled.
#[test]
fn a_huge_timer_delay_is_a_lua_error_and_the_strategy_keeps_running() {
    let fx = Fixture::new();
    fx.write(
        "t",
        "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  if q.bid == 1 then bot.after(1e300, function() end) end\n  if q.bid == 2 then bot.every(0/0, function() end) end\n  bot.buy{ size = 1, tag = 'ok' .. q.bid }\nend\nreturn M\n",
    );
    let host = fx.start(fx.config());
    host.dispatch(quote("A", 1.0));
    host.dispatch(quote("B", 2.0));
    host.dispatch(quote("C", 3.0));
    wait_until("the next quote handled", || fx.has_tag("ok3.0"));
    assert!(
        !fx.has_tag("ok1.0") && !fx.has_tag("ok2.0"),
        "{:?}",
        fx.tags()
    );
    let st = status(&host, "t");
    assert_eq!((st.state, st.errors), (RunState::Running, 2));
    let err = st.last_error.unwrap_or_default();
    assert!(
        err.contains("t.lua:4:") && err.contains("bot.every: seconds must be"),
        "{err}"
    );
    host.shutdown();
}

#[test]
fn infinite_loop_is_interrupted_and_the_next_event_is_handled() {
    let fx = Fixture::new();
    fx.write(
        "spin",
        "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  if q.bid == 1 then\n    while true do end\n  end\n  bot.buy{ size = 1, tag = 'ok' }\nend\nreturn M\n",
    );
    let mut cfg = fx.config();
    cfg.limits = Limits {
        instructions_per_callback: 2_000_000,
        ..Limits::default()
    };
    let host = fx.start(cfg);
    host.dispatch(quote("A", 1.0));
    host.dispatch(quote("B", 2.0));
    wait_until("next quote handled", || fx.has_tag("ok"));
    let err = status(&host, "spin").last_error.unwrap();
    assert!(
        err.contains("instruction budget") && err.contains("spin.lua:4"),
        "{err}"
    );
    host.shutdown();
}

#[test]
fn memory_bomb_is_contained_and_the_next_event_is_handled() {
    let fx = Fixture::new();
    fx.write(
        "bomb",
        "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  if q.bid == 1 then\n    local t = {}\n    for i = 1, 1e9 do t[i] = string.rep('x', 64) .. i end\n  end\n  bot.buy{ size = 1, tag = 'ok' }\nend\nreturn M\n",
    );
    let mut cfg = fx.config();
    cfg.limits = Limits {
        memory_bytes: 32 * 1024 * 1024,
        instructions_per_callback: u32::MAX as u64 * 10,
    };
    // Filling 32 MiB took over 2 s on a loaded CI machine, and the watchdog interrupted the
    // bomb before the memory limit did: this test is about the memory limit.
    cfg.watchdog = std::time::Duration::from_secs(60);
    let host = fx.start(cfg);
    host.dispatch(quote("A", 1.0));
    host.dispatch(quote("B", 2.0));
    wait_until("next quote handled", || fx.has_tag("ok"));
    let err = status(&host, "bomb").last_error.unwrap();
    assert!(err.contains("memory"), "{err}");
    host.shutdown();
}

#[test]
fn sandbox_escapes_are_unreachable_from_a_strategy() {
    let fx = Fixture::new();
    std::fs::write(
        fx.dir.parent().unwrap().join("secret.lua"),
        "return { leaked = true }",
    )
    .unwrap();
    std::fs::write(fx.dir.join("lib").join("ok.lua"), "return { fine = true }").unwrap();
    fx.write(
        "escape",
        r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q)
  local attempts = {
    io = function() return io.open("/etc/passwd") end,
    os_execute = function() return os.execute("true") end,
    os_exit = function() return os.exit(1) end,
    os_getenv = function() return os.getenv("HOME") end,
    loadfile = function() return loadfile("/etc/passwd") end,
    dofile = function() return dofile("/etc/passwd") end,
    dump = function() return string.dump(function() end) end,
    bytecode = function() return load(("").dump and ("").dump(print) or "\27Lua") end,
    require_up = function() return require("../secret") end,
    require_top = function() return require("secret") end,
    debug = function() return debug.getinfo(1) end,
  }
  for name, f in pairs(attempts) do
    local ok, res = pcall(f)
    if ok and res then bot.buy{ size = 1, tag = "escaped:" .. name } end
  end
  if require("ok").fine then bot.buy{ size = 1, tag = "done" } end
end
return M
"#,
    );
    let host = fx.start(fx.config());
    host.dispatch(quote("A", 1.0));
    wait_until("checks ran", || fx.has_tag("done"));
    let escaped: Vec<String> = fx
        .tags()
        .into_iter()
        .filter(|t| t.starts_with("escaped"))
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");
    host.shutdown();
}

#[test]
fn repeated_failures_pause_the_strategy() {
    let fx = Fixture::new();
    fx.write(
        "bad",
        "local M = {}\nfunction M.on_fill(f) error('always') end\nreturn M\n",
    );
    let mut cfg = fx.config();
    cfg.max_consecutive_errors = 3;
    let host = fx.start(cfg);
    for id in 1..=6 {
        host.send("bad", fill(id));
    }
    wait_until("paused", || status(&host, "bad").state == RunState::Paused);
    host.send("bad", fill(7));
    let last = host.shutdown();
    assert_eq!(last[0].errors, 3, "a paused strategy is not called again");
}

#[test]
fn restart_restores_state() {
    let fx = Fixture::new();
    fx.write(
        "keep",
        "local M = {}\nfunction M.on_start(ctx)\n  bot.buy{ symbol = 'MNQ', size = 1, tag = ctx.reason .. ':' .. tostring(state.fills or 0) }\nend\nfunction M.on_fill(f) state.fills = (state.fills or 0) + 1 end\nreturn M\n",
    );
    let host = fx.start(fx.config());
    for id in 1..=3 {
        host.send("keep", fill(id));
    }
    wait_until("start seen", || fx.has_tag("start:0"));
    host.shutdown();
    assert_eq!(fx.saved_state("keep")["fills"], 3);

    let host = fx.start(fx.config());
    wait_until("restart with state", || fx.has_tag("restart:3"));
    host.shutdown();
}

#[test]
fn tradingview_alerts_become_orders_and_flat_closes() {
    let fx = Fixture::new();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies");
    std::fs::copy(shipped.join("tradingview.lua"), fx.path("tradingview")).unwrap();
    std::fs::copy(
        shipped.join("lib/helpers.lua"),
        fx.dir.join("lib/helpers.lua"),
    )
    .unwrap();
    let host = fx.start(fx.config());

    let body = serde_json::json!({"ticker": "CME_MINI:MNQ1!", "action": "buy", "sentiment": "long", "quantity": "2"});
    let (req, rx) = WebhookRequest::new(WebhookBody::Json(body));
    assert!(host.webhook("tradingview", req));
    let outcome = rx.blocking_recv().unwrap();
    assert_eq!(
        outcome.orders_placed, 1,
        "the runner counts the order it placed"
    );
    let reply = outcome.reply.unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["size"], 2);
    let (_, intent) = fx.broker.submitted().pop().unwrap();
    assert_eq!((intent.symbol.as_str(), intent.size), ("MNQ", 2));

    let body = serde_json::json!({"ticker": "MNQ1!", "action": "sell", "sentiment": "flat"});
    let (req, rx) = WebhookRequest::new(WebhookBody::Json(body));
    host.webhook("tradingview", req);
    let outcome = rx.blocking_recv().unwrap();
    assert_eq!(outcome.orders_placed, 1, "a flatten sends closing orders");
    assert_eq!(outcome.reply.unwrap()["action"], "flatten");
    assert!(
        fx.broker
            .calls()
            .iter()
            .any(|(_, c)| matches!(c, BotCall::Flatten { symbol: Some(s) } if s == "MNQ"))
    );

    let (req, rx) = WebhookRequest::new(WebhookBody::Text("not json".into()));
    host.webhook("tradingview", req);
    let outcome = rx.blocking_recv().unwrap();
    assert_eq!(outcome.orders_placed, 0);
    assert_eq!(outcome.reply.unwrap()["ok"], false);

    let (req, rx) = WebhookRequest::new(WebhookBody::Text("x".into()));
    assert!(!host.webhook("nobody", req));
    assert!(rx.blocking_recv().unwrap().reply.is_err());
    host.shutdown();
}

#[test]
fn webhook_handler_returning_nil_replies_ok() {
    let fx = Fixture::new();
    fx.write(
        "hook",
        "local M = {}\nfunction M.on_webhook(req) state.last = req.body.x end\nreturn M\n",
    );
    let host = fx.start(fx.config());
    let (req, rx) = WebhookRequest::new(WebhookBody::Json(serde_json::json!({"x": 1})));
    host.webhook("hook", req);
    assert_eq!(
        rx.blocking_recv().unwrap().reply.unwrap(),
        serde_json::json!({"ok": true})
    );
    host.shutdown();
}

#[test]
fn bad_bot_arguments_name_the_field_and_the_calling_line() {
    let fx = Fixture::new();
    fx.write(
        "args",
        "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  local ok, err = pcall(function()\n    bot.buy{ size = 'x' }\n  end)\n  bot.buy{ size = 1, tag = tostring(err) }\n  local ok2, err2 = pcall(function() bot.sell{ size = 1, type = 'limit' } end)\n  bot.buy{ size = 1, tag = tostring(err2) }\nend\nreturn M\n",
    );
    let host = fx.start(fx.config());
    host.dispatch(quote("A", 1.0));
    wait_until("errors recorded", || fx.tags().len() >= 2);
    let tags = fx.tags();
    assert!(
        tags.iter()
            .any(|t| t.contains("args.lua:4:")
                && t.contains("size must be a whole number from 1 to")),
        "{tags:?}"
    );
    assert!(tags.iter().any(|t| t.contains("args.lua:7:") && t.contains("price is required for a limit order")), "{tags:?}");
    host.shutdown();
}

#[test]
fn refused_order_returns_nil_and_the_reason() {
    let fx = Fixture::new();
    fx.broker.refuse_all(Some("max position reached"));
    fx.write(
        "r",
        "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  local h, why = bot.buy{ size = 1 }\n  state.result = tostring(h) .. '/' .. tostring(why)\nend\nfunction M.on_fill() end\nreturn M\n",
    );
    let host = fx.start(fx.config());
    host.dispatch(quote("A", 1.0));
    wait_until("quote handled", || status(&host, "r").handled >= 1);
    host.shutdown();
    assert_eq!(fx.saved_state("r")["result"], "nil/max position reached");
}

#[test]
fn feed_status_reaches_every_strategy() {
    let fx = Fixture::new();
    fx.write("a", "local M = {}\nfunction M.on_feed(s) bot.buy{ symbol = 'MNQ', size = 1, tag = 'a:' .. s } end\nreturn M\n");
    fx.write("b", "local M = {}\nfunction M.on_feed(s) bot.buy{ symbol = 'MNQ', size = 1, tag = 'b:' .. s } end\nreturn M\n");
    let host = fx.start(fx.config());
    host.dispatch(Event::Feed(moontick::script::FeedStatus::Stale));
    wait_until("both saw it", || {
        fx.has_tag("a:stale") && fx.has_tag("b:stale")
    });
    host.shutdown();
}

/// Every quote field reaches `on_quote` through the reused table, even after the strategy
/// overwrote some; a field the quote lacks is nil (never 0, never the previous quote's value),
/// and the sizes the gateway never sends do not exist.
#[test]
fn quote_fields_reach_on_quote_and_absent_fields_are_nil() {
    let fx = Fixture::new();
    fx.write(
        "fields",
        "local M = { symbols = { 'MNQ' } }\n\
         local F = { 'contract', 'symbol', 'bid', 'ask', 'last', 'volume', 'open', 'high', 'low', 'change', 'time', 'bid_size', 'ask_size' }\n\
         function M.on_quote(q)\n\
           local out = {}\n\
           for i, k in ipairs(F) do out[i] = tostring(q[k]) end\n\
           bot.buy{ size = 1, tag = table.concat(out, ',') }\n\
           q.contract, q.bid = nil, nil\n\
         end\n\
         return M\n",
    );
    let host = fx.start(fx.config());
    host.dispatch(quote("CON.A", 10.5));
    let Event::Quote(mut sparse) = quote("CON.B", 11.0) else {
        unreachable!()
    };
    (sparse.bid, sparse.last, sparse.volume) = (None, None, None);
    (sparse.open, sparse.change) = (Some(11.0), Some(0.0));
    host.dispatch(Event::Quote(sparse));
    wait_until("two quotes", || fx.tags().len() >= 2);
    let tags = fx.tags();
    assert_eq!(
        tags[0],
        "CON.A,MNQ,10.5,10.75,10.5,100,nil,nil,nil,nil,1700000000.0,nil,nil"
    );
    assert_eq!(
        tags[1],
        "CON.B,MNQ,nil,11.25,nil,nil,11.0,nil,nil,0.0,1700000000.0,nil,nil"
    );
    host.shutdown();
}

#[test]
fn restart_keeps_mixed_tables_and_number_kinds_and_drops_only_what_cannot_be_saved() {
    let fx = Fixture::new();
    fx.write(
        "mixed",
        r#"local M = {}
function M.on_start(ctx)
  if ctx.reason == "start" then
    state.t = { 10, 20, name = "x", ["1"] = "s" }
    state.f, state.nan, state.fn = 1.0, 0/0, print
    return
  end
  local t = state.t
  local ok = t[1] == 10 and t[2] == 20 and t.name == "x" and t["1"] == "s"
    and math.type(state.f) == "float" and state.nan ~= state.nan and state.fn == nil
  bot.buy{ symbol = "MNQ", size = 1, tag = "restored:" .. tostring(ok) }
end
return M
"#,
    );
    let host = fx.start(fx.config());
    wait_loaded(&host, "mixed", 1);
    host.shutdown();
    let saved = fx.saved_state("mixed");
    assert_eq!(saved["t"]["name"], "x", "{saved}");

    let host = fx.start(fx.config());
    wait_until("restarted", || {
        fx.tags().iter().any(|t| t.starts_with("restored:"))
    });
    assert!(fx.has_tag("restored:true"), "{:?}", fx.tags());
    host.shutdown();
}
