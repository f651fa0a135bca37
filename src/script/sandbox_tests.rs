//! Unit tests of the sandbox: what a strategy can and cannot reach, the loaders, `require`, the
//! memory limit and the instruction budget.

use super::*;

fn vm() -> Lua {
    let dir = tempfile::tempdir().unwrap();
    new_vm(dir.path(), Limits::default()).unwrap().0
}

fn fails(lua: &Lua, code: &str) -> String {
    match lua.load(code).exec() {
        Ok(()) => panic!("`{code}` should fail"),
        Err(e) => describe(&e),
    }
}

#[test]
fn io_os_execute_dofile_loadfile_are_absent() {
    let lua = vm();
    for code in [
        "io.open('/etc/passwd')",
        "os.execute('true')",
        "os.exit(1)",
        "os.getenv('HOME')",
        "os.remove('x')",
        "dofile('/etc/passwd')",
        "loadfile('/etc/passwd')",
        "debug.getinfo(1)",
        "package.loadlib('x', 'y')",
    ] {
        fails(&lua, code);
    }
    lua.load("assert(os.time() > 0 and os.clock() >= 0 and os.date('%Y'))")
        .exec()
        .unwrap();
}

#[test]
fn bytecode_from_string_dump_cannot_be_loaded() {
    let lua = vm();
    fails(&lua, "local s = string.dump(function() end)");
    // Even with a dumper from outside, `load` refuses binary chunks.
    let dumped = lua
        .load("return function() return 1 end")
        .eval::<Function>()
        .unwrap()
        .dump(false);
    lua.globals()
        .set("blob", lua.create_string(&dumped).unwrap())
        .unwrap();
    lua.load("local f, err = load(blob); assert(f == nil and err:find('binary'), err)")
        .exec()
        .unwrap();
    lua.load(
        "local f, err = load(blob, 'x', 'b'); assert(f == nil, 'binary mode must be refused')",
    )
    .exec()
    .unwrap();
    lua.load("assert(load('return 1 + 1')() == 2 and load('return string.format')())")
        .exec()
        .unwrap();
}

#[test]
fn require_outside_lib_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let lib = root.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::fs::write(lib.join("util.lua"), "return { x = 7 }").unwrap();
    std::fs::write(root.path().join("secret.lua"), "return 1").unwrap();
    let dir = &lib;
    let (lua, _) = new_vm(dir, Limits::default()).unwrap();
    lua.load("assert(require('util').x == 7 and require('lib.util').x == 7)")
        .exec()
        .unwrap();
    for name in [
        "../secret",
        "secret",
        "/etc/passwd",
        "util/../util",
        "os",
        "nope",
    ] {
        let msg = fails(&lua, &format!("require('{name}')"));
        assert!(msg.contains("require"), "{msg}");
    }
}

#[test]
fn infinite_loop_is_interrupted_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        instructions_per_callback: 1_000_000,
        ..Limits::default()
    };
    let (lua, budget) = new_vm(dir.path(), limits).unwrap();
    budget.reset();
    let f = compile(&lua, "\nwhile true do end", Path::new("spin.lua")).unwrap();
    let msg = describe(&f.call::<()>(()).unwrap_err());
    assert!(
        msg.contains("spin.lua:2") && msg.contains("instruction budget"),
        "{msg}"
    );
    budget.reset();
    lua.load("return 1").exec().unwrap();
}

#[test]
fn budget_cannot_be_swallowed_by_pcall_or_coroutines() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        instructions_per_callback: 1_000_000,
        ..Limits::default()
    };
    let (lua, budget) = new_vm(dir.path(), limits).unwrap();
    for code in [
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        "local co = coroutine.wrap(function() while true do end end) co()",
    ] {
        budget.reset();
        let msg = fails(&lua, code);
        assert!(msg.contains("instruction budget"), "{code}: {msg}");
    }
    budget.reset();
    lua.load("assert(pcall(error, 'x') == false)")
        .exec()
        .unwrap();
}

#[test]
fn memory_bomb_hits_the_limit_and_the_vm_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        memory_bytes: 8 * 1024 * 1024,
        ..Limits::default()
    };
    let (lua, budget) = new_vm(dir.path(), limits).unwrap();
    budget.reset();
    let msg = fails(&lua, "local t = {} for i = 1, 1e8 do t[i] = i end");
    assert!(msg.contains("memory"), "{msg}");
    budget.reset();
    lua.load("local t = {} for i = 1, 1000 do t[i] = i end")
        .exec()
        .unwrap();
}

/// Compiles and runs `code` as a strategy file in a fresh sandbox on its own thread, then collects garbage and closes the
/// VM (where finalizers run), and fails the test if that does not come back: a hang guard,
/// not a timing.
fn ends(code: &'static str) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            instructions_per_callback: 1_000_000,
            ..Limits::default()
        };
        let (lua, budget) = new_vm(dir.path(), limits).unwrap();
        budget.reset();
        let out = compile(&lua, code, Path::new("t.lua"))
            .and_then(|f| f.call::<()>(()))
            .map_err(|e| describe(&e));
        budget.reset();
        let _ = lua.gc_collect();
        drop(lua);
        let _ = tx.send(out);
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("did not return: {code}"))
}

#[test]
fn finalizers_are_refused_so_none_can_spin_with_the_hook_off() {
    for code in [
        "setmetatable({}, { __gc = function() while true do end end }) collectgarbage()",
        // Marked by a non-nil `__gc`, armed later: refused at the mark.
        "local mt = { __gc = false } setmetatable({}, mt) mt.__gc = function() while true do end end",
        "rawget = function() end setmetatable({}, { __gc = function() while true do end end })",
    ] {
        let msg = ends(code).unwrap_err();
        assert!(
            msg.contains("__gc finalizers are not available"),
            "{code}: {msg}"
        );
    }
    // Added after the metatable was set, `__gc` is never called: the program just ends.
    ends(
        "local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end collectgarbage()",
    )
    .unwrap();
    ends("setmetatable({}, { __index = {} }) setmetatable({}, nil)").unwrap();
}

#[test]
fn c_loops_without_allocation_are_bounded() {
    ends("assert(string.rep('', math.maxinteger) == '' and (''):rep(1e18) == '')").unwrap();
    ends("assert(string.rep('ab', 3, ',') == 'ab,ab,ab' and string.rep(5, 2) == '55')").unwrap();
    let msg = ends("string.rep('x', 1e12)").unwrap_err();
    assert!(msg.contains("memory") || msg.contains("too large"), "{msg}");
    for code in [
        "table.move({}, 1, math.maxinteger - 1, 2)",
        "table.move({}, 1, 2^62, 2)",
        "table.move({}, '1', '9000000000000000', 2)",
    ] {
        let msg = ends(code).unwrap_err();
        assert!(msg.contains("table.move: at most"), "{code}: {msg}");
    }
    ends("local t = table.move({1, 2, 3}, 1, 3, 2) assert(t[4] == 3 and t[2] == 1)").unwrap();
}

#[test]
fn every_other_way_to_run_lua_from_c_is_under_the_budget() {
    for code in [
        "xpcall(error, function() while true do end end)",
        "xpcall(function() local function f() return 1 + f() end return f() end, function() while true do end end)",
        "while true do load(function() while true do end end) end",
        "table.sort({3, 2, 1}, function() while true do end end)",
        "string.gsub('abc', '%w', function() while true do end end)",
        "local t = setmetatable({}, { __index = function() while true do end end }) return t.x",
        "error(setmetatable({}, { __tostring = function() while true do end end }))",
        "error = function() end while true do pcall(function() while true do end end) end",
    ] {
        let msg = ends(code).expect_err(code);
        assert!(
            msg.contains("instruction budget") || msg.contains("error in error handling"),
            "{code}: {msg}"
        );
    }
}

#[test]
fn to_be_closed_variables_are_refused_everywhere() {
    for code in [
        // Interrupted by the budget, the frame's `__close` would run with hooks off.
        "local x <close> = setmetatable({}, { __close = function() while true do end end }) while true do end",
        "local co = coroutine.create(function() local x < close > = nil while true do end end) coroutine.resume(co)",
    ] {
        let msg = ends(code).unwrap_err();
        assert!(
            msg.contains("to-be-closed variables (<close>) are not available"),
            "{code}: {msg}"
        );
    }
    for code in [
        // Split so that this chunk itself does not declare one.
        "local f, err = load('local x <' .. 'close> = nil') assert(f == nil and err:find('to%-be%-closed'))",
        "local parts = { 'local x <', 'close> = nil' } local i = 0 local f, err = load(function() i = i + 1 return parts[i] end) assert(f == nil and err:find('to%-be%-closed'))",
        "local f = load(function() return nil end) assert(f)",
    ] {
        ends(code).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (lua, _) = new_vm(dir.path(), Limits::default()).unwrap();
    let err = compile(
        &lua,
        "local a = 1\nlocal b <const> = 2\nlocal c <close> = nil\n",
        Path::new("s.lua"),
    )
    .unwrap_err();
    assert!(
        describe(&err).starts_with("s.lua:3: to-be-closed"),
        "{}",
        describe(&err)
    );
    compile(
        &lua,
        "local b <const> = 2\nif a < b then end",
        Path::new("s.lua"),
    )
    .unwrap();
}

#[test]
fn coroutines_and_message_handlers_still_work() {
    ends("local co = coroutine.create(function() coroutine.yield() end) coroutine.resume(co) assert(coroutine.close(co))").unwrap();
    ends("local f = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end) assert(f(1) == 2 and f(5) == 10)").unwrap();
    let msg = ends("coroutine.wrap(function() error('boom') end)()").unwrap_err();
    assert!(msg.contains("boom"), "{msg}");
    ends("local ok, m = xpcall(error, function(m) return 'handled ' .. m end, 'x') assert(not ok and m == 'handled x')").unwrap();
    ends("local f, err = load('return +') assert(f == nil and err:find('unexpected'))").unwrap();
}
