//! The `bot` API against an in-memory answerer: bad arguments are Lua errors (never panics),
//! order-placing calls are counted, and `bot.log` renders tables within bounds.

use std::sync::{Arc, Mutex};

use mlua::{Lua, MultiValue, Value};

use std::sync::atomic::AtomicU64;

use super::args::MAX_TEXT;
use super::ctx::Repeat;
use super::log::log_line;
use super::*;
use crate::script::broker::BotCall;
use crate::script::broker::{MemoryBroker, SystemClock};

fn vm() -> (Lua, Arc<Ctx>, Arc<MemoryBroker>) {
    vm_on(Arc::new(SystemClock))
}

/// A VM with the `bot` API on `clock`, a memory broker behind it.
fn vm_on(clock: Arc<dyn crate::script::broker::Clock>) -> (Lua, Arc<Ctx>, Arc<MemoryBroker>) {
    let lua = Lua::new();
    let broker = Arc::new(MemoryBroker::new());
    let ctx = Arc::new(Ctx {
        name: "t".into(),
        generation: 1,
        broker: broker.clone(),
        clock,
        timers: new_timers(&lua).unwrap(),
        default_symbol: Arc::new(Mutex::new(Some("MNQ".into()))),
        placed: AtomicU64::new(0),
        bars: crate::bars::BarStore::new(),
        bar_series: Mutex::new(Vec::new()),
    });
    register(&lua, ctx.clone()).unwrap();
    (lua, ctx, broker)
}

#[test]
fn bad_arguments_are_lua_errors_that_name_the_call() {
    let f = "function() end";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("bot.after(1e300, {f})"),
            "bot.after: seconds must be",
        ),
        (
            format!("bot.after(2^63, {f})"),
            "bot.after: seconds must be",
        ),
        (format!("bot.after(-1, {f})"), "bot.after: seconds must be"),
        (format!("bot.after(0, {f})"), "bot.after: seconds must be"),
        (format!("bot.after(0/0, {f})"), "bot.after: seconds must be"),
        (
            format!("bot.every(math.huge, {f})"),
            "bot.every: seconds must be",
        ),
        (
            format!("bot.every(-math.huge, {f})"),
            "bot.every: seconds must be",
        ),
        (format!("bot.every('5', {f})"), "bot.every: seconds must be"),
        (
            "bot.after(1, 'not a function')".into(),
            "must be a function",
        ),
        ("bot.cancel_timer(0/0)".into(), "bot.cancel_timer: expects"),
        (
            format!("bot.at('25:00', {f})"),
            r#"bot.at: time must be "HH:MM" or "HH:MM:SS" in exchange time (America/Chicago, 00:00 to 23:59:59), got "25:00""#,
        ),
        (
            format!("bot.at('9:5x', {f})"),
            r#"bot.at: time must be "HH:MM""#,
        ),
        (format!("bot.at('15:5', {f})"), "bot.at: time must be"),
        (format!("bot.at('15:55:60', {f})"), "bot.at: time must be"),
        (
            format!("bot.at('15:55:00:00', {f})"),
            "bot.at: time must be",
        ),
        (format!("bot.at('', {f})"), "bot.at: time must be"),
        (format!("bot.at(1555, {f})"), "got a number"),
        (
            "bot.at('15:55', 'not a function')".into(),
            "bot.at: the second argument must be a function",
        ),
        (
            "bot.round_price('MNQ', 0/0)".into(),
            "bot.round_price: price must be a finite number",
        ),
        (
            "bot.round_price(nil, 1)".into(),
            "bot.round_price: expects (symbol, price)",
        ),
        ("bot.contract(42)".into(), "bot.contract: symbol must be"),
        (
            "bot.buy{size=0/0}".into(),
            "bot.buy: size must be a whole number",
        ),
        ("bot.buy{size=math.huge}".into(), "bot.buy: size must be"),
        ("bot.buy{size=1e300}".into(), "bot.buy: size must be"),
        ("bot.buy{size=2^40}".into(), "bot.buy: size must be"),
        ("bot.sell{size=1.5}".into(), "bot.sell: size must be"),
        ("bot.sell{size=-1}".into(), "bot.sell: size must be"),
        (
            "bot.buy{size=1, type='limit', price=0/0}".into(),
            "price must be a finite",
        ),
        (
            "bot.buy{size=1, type='limit', price=math.huge}".into(),
            "price must be a finite",
        ),
        (
            "bot.buy{size=1, type='limit', price=-5}".into(),
            "price must be a finite",
        ),
        (
            "bot.buy{size=1, type='stop', stop_price=1e20}".into(),
            "stop_price must be",
        ),
        (
            "bot.buy{size=1, stop_loss_ticks=0/0}".into(),
            "stop_loss_ticks must be",
        ),
        (
            "bot.buy{size=1, take_profit_ticks=1e12}".into(),
            "take_profit_ticks must be",
        ),
        (
            "bot.buy{size=1, tag=string.rep('x', 5000)}".into(),
            "tag must be",
        ),
        ("bot.buy{size=1, symbol=''}".into(), "symbol must be"),
        ("bot.buy{size=1, sise=1}".into(), "unknown field 'sise'"),
        ("bot.buy(1)".into(), "bot.buy: expects a table"),
        ("bot.cancel(0/0)".into(), "bot.cancel: expects an order id"),
        ("bot.cancel(-1)".into(), "bot.cancel: expects an order id"),
        ("bot.cancel(2^60)".into(), "bot.cancel: expects an order id"),
        (
            "bot.modify(1, {size=0/0})".into(),
            "bot.modify: size must be",
        ),
        (
            "bot.modify(1, {price=-1})".into(),
            "bot.modify: price must be",
        ),
        (
            "bot.modify(1, {stop_price=math.huge})".into(),
            "bot.modify: stop_price must be",
        ),
        ("bot.modify(1, 5)".into(), "bot.modify: expects"),
        ("bot.flatten(42)".into(), "bot.flatten: symbol must be"),
        ("bot.position({})".into(), "bot.position: symbol must be"),
        ("bot.quote(true)".into(), "bot.quote: symbol must be"),
        ("bot.orders(1)".into(), "bot.orders: symbol must be"),
        (
            "bot.halt({})".into(),
            "bot.halt: the reason must be a string",
        ),
    ];
    let (lua, _, broker) = vm();
    for (code, want) in &cases {
        let err = lua
            .load(code.as_str())
            .set_name("=t.lua")
            .exec()
            .expect_err(code);
        let msg = err.to_string();
        assert!(msg.contains(want), "{code}: got {msg}");
        assert!(msg.contains("t.lua:1:"), "{code}: no location in {msg}");
    }
    assert!(broker.calls().is_empty(), "{:?}", broker.calls());
}

#[test]
fn good_arguments_still_pass() {
    let (lua, ctx, broker) = vm();
    lua.load(
        r#"
        assert(bot.buy{size=2^3, type='limit', price=100.25, stop_loss_ticks=8.0, tag='a'})
        assert(bot.modify(1, {size=3, price=101}))
        assert(bot.cancel({id=1}))
        assert(bot.after(0.5, function() end) == 1)
        assert(bot.every(1e-9, function() end) == 2)
        assert(bot.cancel_timer(2.0))
        bot.halt(string.rep('r', 5000))
        "#,
    )
    .exec()
    .unwrap();
    let calls = broker.calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    let BotCall::Halt { reason } = &calls[3].1 else {
        panic!("{calls:?}")
    };
    assert_eq!(reason.len(), MAX_TEXT);
    let timers = ctx.timers.lock().unwrap();
    assert_eq!(timers.timers.len(), 1);
}

#[test]
fn accepted_order_placing_calls_are_counted() {
    let (lua, ctx, broker) = vm();
    lua.load("bot.buy{size=1}; bot.flatten(); bot.cancel(1); bot.position()")
        .exec()
        .unwrap();
    assert_eq!(ctx.orders_placed(), 2);
    broker.refuse_all(Some("halted"));
    let (ok, why): (Value, String) = lua.load("return bot.sell{size=1}").eval().unwrap();
    assert!(ok.is_nil());
    assert_eq!(why, "halted");
    assert_eq!(ctx.orders_placed(), 2, "a refused order places nothing");
}

fn logged(lua: &Lua, code: &str) -> String {
    let args: MultiValue = lua.load(code).eval().unwrap();
    log_line(&args)
}

#[test]
fn log_renders_tables_nested_and_sorted() {
    let (lua, _, _) = vm();
    assert_eq!(
        logged(
            &lua,
            r#"return "acct", {balance=50000.5, name="demo", ok=true, legs={1, 2.0, "x"}, [10]=1}, 7, nil"#
        ),
        r#"acct {[10]=1, balance=50000.5, legs={1, 2.0, "x"}, name="demo", ok=true} 7 nil"#
    );
    assert_eq!(logged(&lua, "return {}"), "{}");
    // As Lua's tostring shows them: 14 significant digits, no float noise.
    assert_eq!(
        logged(
            &lua,
            "return {pnl = -5.6000000000000005, x = 0.1 + 0.2}, 20996.916666666668, 1/3"
        ),
        "{pnl=-5.6, x=0.3} 20996.916666667 0.33333333333333"
    );
    let lua_says: String = lua
        .load("return tostring(-5.6000000000000005) .. ' ' .. tostring(20996.916666666668)")
        .eval()
        .unwrap();
    assert_eq!(lua_says, "-5.6 20996.916666667");
    assert_eq!(logged(&lua, "return {print}"), "{function}");
}

#[test]
fn log_survives_cycles_depth_and_size() {
    let (lua, _, _) = vm();
    let cyc = logged(&lua, "local t = {name='a'}; t.self = t; return t");
    assert_eq!(cyc, r#"{name="a", self=<cycle>}"#);
    // A table shared twice (not a cycle) is shown both times.
    let shared = logged(&lua, "local s = {1}; return {a=s, b=s}");
    assert_eq!(shared, "{a={1}, b={1}}");
    let deep = logged(
        &lua,
        "local t = {}; for i = 1, 100 do t = {t} end; return t",
    );
    assert_eq!(deep, "{{{{{…}}}}}");
    let long = logged(
        &lua,
        "local t = {}; for i = 1, 100000 do t[i] = i end; return t",
    );
    assert!(long.ends_with(", …}"), "{long}");
    assert!(long.len() < 300, "{}", long.len());
    let wide = logged(
        &lua,
        "local t = {}; for i = 1, 1000 do t['k'..i] = string.rep('v', 500) end; return t, t, t",
    );
    assert!(wide.len() <= MAX_LINE_FOR_TEST + 4, "{}", wide.len());
    assert!(wide.ends_with('…'), "cut lines are marked");
}

const MAX_LINE_FOR_TEST: usize = 4096;

fn vm_at(clock: Arc<crate::script::broker::ManualClock>) -> (Lua, Arc<Ctx>, Arc<MemoryBroker>) {
    vm_on(clock)
}

fn utc_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

#[test]
fn bot_at_is_due_at_the_next_chicago_wall_clock_time() {
    // Saturday March 7, 16:00 CST: today's 15:55 has passed; Sunday's is on CDT.
    let clock = Arc::new(crate::script::broker::ManualClock::new(utc_ms(
        "2026-03-07T22:00:00Z",
    )));
    let (lua, ctx, _) = vm_at(clock);
    let ids: (i64, i64, i64) = lua
        .load("return bot.at('15:55', function() end), bot.at('8:30:15', function() end), bot.at('00:00', function() end)")
        .eval()
        .unwrap();
    assert_eq!(ids, (1, 2, 3));
    let set = ctx.timers.lock().unwrap();
    let due: Vec<(i64, Repeat)> = set.timers.iter().map(|t| (t.due_ms, t.repeat)).collect();
    let time = |h, m, s| chrono::NaiveTime::from_hms_opt(h, m, s).unwrap();
    assert_eq!(
        due,
        [
            (
                utc_ms("2026-03-08T20:55:00Z"),
                Repeat::Daily(time(15, 55, 0))
            ),
            (
                utc_ms("2026-03-08T13:30:15Z"),
                Repeat::Daily(time(8, 30, 15))
            ),
            (utc_ms("2026-03-08T06:00:00Z"), Repeat::Daily(time(0, 0, 0))),
        ]
    );
    drop(set);
    assert!(
        lua.load("return bot.cancel_timer(1)")
            .eval::<bool>()
            .unwrap()
    );
}

#[test]
fn exchange_time_and_its_old_name_read_the_engine_clock() {
    // Monday November 2, 15:55:30 CST.
    let clock = Arc::new(crate::script::broker::ManualClock::new(utc_ms(
        "2026-11-02T21:55:30Z",
    )));
    let (lua, _, _) = vm_at(clock.clone());
    let read = "local t = bot.exchange_time(); local c = bot.chicago_time()
        return string.format('%d-%02d-%02d %02d:%02d:%02d w%d %s %s %s %s', t.year, t.month, t.day,
          t.hour, t.min, t.sec, t.wday, t.trading_day, t.session, tostring(t.minutes_to_close),
          tostring(c.trading_day == t.trading_day and c.hour == t.hour and c.dst == t.dst))";
    let s: String = lua.load(read).eval().unwrap();
    assert_eq!(s, "2026-11-02 15:55:30 w2 2026-11-02 open 4 true");
    clock.set_ms(utc_ms("2026-11-02T22:30:00Z"));
    let s: String = lua.load(read).eval().unwrap();
    assert_eq!(s, "2026-11-02 16:30:00 w2 2026-11-02 break nil true");
}

#[test]
fn contract_facts_come_from_the_engine_once_and_round_prices() {
    let (lua, _, broker) = vm();
    broker.set_contract(crate::script::ContractView {
        id: "CON.F.US.MNQ.Z26".into(),
        symbol: "MNQ".into(),
        name: "MNQZ6".into(),
        description: "Micro E-mini Nasdaq-100: December 2026".into(),
        tick_size: 0.25,
        tick_value: 0.5,
    });
    let s: String = lua
        .load(
            "local c = bot.contract('MNQ'); local d = bot.contract()
             local none, why = bot.contract('YM')
             local r, rwhy = bot.round_price('YM', 1)
             return table.concat({c.id, c.symbol, c.name, c.description, c.tick_size, c.tick_value,
               c.point_value, tostring(d.id == c.id), tostring(none), why, tostring(r), rwhy,
               bot.round_price('MNQ', 21000.13), bot.round_price('MNQ', 21000.125),
               bot.round_price('MNQ', -3)}, '|')",
        )
        .eval()
        .unwrap();
    assert_eq!(
        s,
        "CON.F.US.MNQ.Z26|MNQ|MNQZ6|Micro E-mini Nasdaq-100: December 2026|0.25|0.5|2.0|true|nil|unknown symbol YM|nil|unknown symbol YM|21000.25|21000.25|-3.0"
    );
    let asked = broker
        .calls()
        .iter()
        .filter(|(_, c)| matches!(c, BotCall::Contract { symbol } if symbol == "MNQ"))
        .count();
    assert_eq!(asked, 1, "facts are kept once known");
}

#[test]
fn bot_bars_returns_the_newest_closed_bars_oldest_first_and_refuses_undeclared_series() {
    let (lua, ctx, _) = vm();
    let tf = crate::bars::Timeframe::parse("1m").unwrap();
    let contract: Arc<str> = "CON.F.US.MNQ.Z25".into();
    ctx.bars.name("MNQ", &contract);
    let series = ctx.bars.ensure(&contract, tf, 500);
    for i in 0..5 {
        series.push(crate::bars::Bar {
            time_ms: 60_000 * i,
            open: 1.0 + i as f64,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 10 + i,
        });
    }
    *ctx.bar_series.lock().unwrap() = vec![("MNQ".into(), tf)];
    let got: String = lua
        .load(
            "local b = bot.bars('MNQ', '1m', 3)\n\
             local all = bot.bars('MNQ', '1m')\n\
             local keys = 0\n\
             for k, v in pairs(b[1]) do keys = keys + 1 end\n\
             return #b .. ' ' .. b[1].time .. ' ' .. b[3].volume .. ' ' .. math.type(b[3].volume) .. ' ' .. #all .. ' ' .. keys",
        )
        .eval()
        .unwrap();
    assert_eq!(got, "3 120.0 14 integer 5 6");
    let e = lua
        .load("bot.bars('MNQ', '1m', 3)[1].open = 99")
        .exec()
        .unwrap_err()
        .to_string();
    assert!(e.contains("read-only"), "{e}");
    // The cache follows the store: new bars appear, a longer request reaches further back, the
    // list is fresh each time.
    let times = |lua: &Lua, n: i64| -> String {
        lua.load(format!(
            "local t = {{}} for i, b in ipairs(bot.bars('MNQ', '1m', {n})) do t[i] = math.tointeger(b.time // 60) end return table.concat(t, ',')"
        ))
        .eval()
        .unwrap()
    };
    assert_eq!(times(&lua, 2), "3,4");
    for i in 5..8 {
        series.push(crate::bars::Bar {
            time_ms: 60_000 * i,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 1,
        });
    }
    assert_eq!(times(&lua, 2), "6,7");
    assert_eq!(times(&lua, 6), "2,3,4,5,6,7");
    assert_eq!(times(&lua, 100), "0,1,2,3,4,5,6,7");
    let fresh: bool = lua
        .load("local a, b = bot.bars('MNQ', '1m', 2), bot.bars('MNQ', '1m', 2) return a ~= b and a[1] == b[1]")
        .eval()
        .unwrap();
    assert!(fresh, "a fresh list of the same cached bars");
    for (call, want) in [
        ("bot.bars('MNQ', '5m', 3)", "MNQ 5m is not declared in bars"),
        ("bot.bars('ES', '1m', 3)", "ES 1m is not declared in bars"),
        ("bot.bars('MNQ', '7m', 3)", "unknown timeframe '7m'"),
        ("bot.bars('MNQ', '1m', 0)", "n must be a whole number"),
        ("bot.bars(nil, '1m', 3)", "symbol must be"),
    ] {
        let e = lua.load(call).exec().unwrap_err().to_string();
        assert!(e.contains(want), "{call}: {e}");
    }
}
