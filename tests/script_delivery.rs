//! Quote delivery into strategies through the real host: every quote reaches `on_quote` in
//! order, coalescing starts only past the bound (counted, logged once per episode), `quotes =
//! "latest"` coalesces, and events are never dropped nor reordered against quotes.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::fixture::*;
use moontick::script::HostConfig;

/// Every log line of this test binary, for the "logged once per episode" checks.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("moontick=info")
            .with_writer(move || Capture(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_lines(strategy: &str, containing: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains(&format!("strategy={strategy}")) && l.contains(containing))
        .map(str::to_owned)
        .collect()
}

fn fixture() -> Fixture {
    logs();
    Fixture::new()
}

/// Bounds no test machine reaches by accident, so that only the test decides.
fn roomy(mut cfg: HostConfig) -> HostConfig {
    cfg.quote_backlog = 1_000_000;
    cfg.quote_backlog_age = Duration::from_secs(600);
    cfg
}

/// Counts quotes and checks they arrive in order (`bid` carries the sequence number).
const COUNTER: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q)
  local n = (state.n or 0) + 1
  if q.bid ~= n then state.out_of_order = (state.out_of_order or 0) + 1 end
  state.n = n
end
return M
"#;

#[test]
fn every_quote_of_a_fast_burst_reaches_on_quote_in_order() {
    let fx = fixture();
    fx.write("count", COUNTER);
    let host = fx.start(roomy(fx.config()));
    let n = 50_000u64;
    // As fast as the producer can go: the old mailbox delivered about one quote per wake-up.
    for i in 1..=n {
        host.dispatch(quote("CON.F.US.MNQ.Z25", i as f64));
    }
    wait_until("all handled", || status(&host, "count").handled >= n);
    let st = status(&host, "count");
    host.shutdown();
    let state = fx.saved_state("count");
    assert_eq!(state["n"], n);
    assert!(state["out_of_order"].is_null(), "{state}");
    assert_eq!(st.quotes_coalesced, 0);
}

#[test]
fn past_the_bound_quotes_coalesce_counted_and_logged_once_and_fills_all_arrive_in_order() {
    let fx = fixture();
    fx.write(
        "behind",
        r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q)
  if q.bid == 1 then
    local t = os.clock()
    while os.clock() - t < 0.3 do end
  end
  if q.bid <= (state.last or 0) then state.out_of_order = true end
  state.last = q.bid
  state.quotes = (state.quotes or 0) + 1
end
function M.on_fill(f)
  state.fills = state.fills or {}
  table.insert(state.fills, f.order_id)
end
return M
"#,
    );
    let mut cfg = roomy(fx.config());
    cfg.quote_backlog = 100;
    let host = fx.start(cfg);
    let (quotes, fills) = (5_000u64, 50u64);
    for i in 1..=quotes {
        host.dispatch(quote("CON.F.US.MNQ.Z25", i as f64));
        if i % 100 == 0 {
            host.send("behind", fill(i / 100));
        }
    }
    wait_until("all delivered or coalesced", || {
        let s = status(&host, "behind");
        s.handled + s.quotes_coalesced == quotes + fills
    });
    // The next delivery finds the strategy caught up and ends the episode.
    host.dispatch(quote("CON.F.US.MNQ.Z25", (quotes + 1) as f64));
    wait_until("last quote", || {
        let s = status(&host, "behind");
        s.handled + s.quotes_coalesced == quotes + fills + 1
    });
    let coalesced = status(&host, "behind").quotes_coalesced;
    wait_until("episode end logged", || {
        !log_lines("behind", "caught up").is_empty()
    });
    host.shutdown();
    let state = fx.saved_state("behind");
    assert!(
        coalesced > 0,
        "a 300 ms stall behind 5,000 quotes passes a bound of 100"
    );
    assert!(
        coalesced < quotes - 100,
        "the first 100 waiting quotes were kept"
    );
    assert_eq!(state["quotes"].as_u64().unwrap() + coalesced, quotes + 1);
    assert_eq!(state["last"].as_f64(), Some((quotes + 1) as f64));
    assert!(state["out_of_order"].is_null());
    let got: Vec<u64> = serde_json::from_value(state["fills"].clone()).unwrap();
    assert_eq!(got, (1..=fills).collect::<Vec<u64>>());
    assert_eq!(log_lines("behind", "quotes now coalesce").len(), 1);
    let ended = log_lines("behind", "caught up");
    assert_eq!(ended.len(), 1);
    assert!(
        ended[0].contains(&format!("coalesced={coalesced}")),
        "{}",
        ended[0]
    );
}

#[test]
fn a_strategy_declaring_latest_gets_the_newest_quote_only() {
    let fx = fixture();
    fx.write(
        "latest",
        r#"
local M = { symbols = { "MNQ" }, quotes = "latest" }
function M.on_quote(q)
  if q.bid == 1 then
    bot.log.info("stalling on the first quote")
    local t = os.clock()
    while os.clock() - t < 0.2 do end
  end
  state.seen = (state.seen or 0) + 1
  state.last = q.bid
end
return M
"#,
    );
    let host = fx.start(roomy(fx.config()));
    host.dispatch(quote("CON.F.US.MNQ.Z25", 1.0));
    // Only once the strategy is busy with quote 1: sent earlier, "latest" may replace quote 1
    // itself before the strategy takes it, and then nothing stalls.
    wait_until("the strategy stalls", || {
        !log_lines("latest", "stalling on the first quote").is_empty()
    });
    let n = 1_000u64;
    for i in 2..=n {
        host.dispatch(quote("CON.F.US.MNQ.Z25", i as f64));
    }
    wait_until("all accounted", || {
        let s = status(&host, "latest");
        s.handled + s.quotes_coalesced == n
    });
    let coalesced = status(&host, "latest").quotes_coalesced;
    host.shutdown();
    let state = fx.saved_state("latest");
    assert_eq!(state["last"].as_f64(), Some(n as f64));
    assert!(coalesced >= n - 10, "only a few of {n} ran: {state}");
    assert!(log_lines("latest", "quotes now coalesce").is_empty());
}

#[test]
fn events_are_never_dropped_and_keep_their_place_among_quotes_even_when_quotes_coalesce() {
    let fx = fixture();
    fx.write(
        "order",
        r#"
local M = { symbols = { "MNQ" } }
-- Quote b was queued after fill floor((b - 1) / 100) and before the next one.
function M.on_quote(q)
  local want = (q.bid - 1) // 100
  if (state.fills or 0) ~= want then state.misplaced = (state.misplaced or 0) + 1 end
  if q.bid <= (state.last or 0) then state.backwards = (state.backwards or 0) + 1 end
  state.last = q.bid
end
function M.on_fill(f)
  if f.order_id ~= (state.fills or 0) + 1 then state.gap = f.order_id end
  state.fills = f.order_id
end
return M
"#,
    );
    // Default bounds: on a busy machine some quotes may coalesce; the order must hold anyway.
    let host = fx.start(fx.config());
    let (quotes, fills) = (50_000u64, 500u64);
    for i in 1..=quotes {
        host.dispatch(quote("CON.F.US.MNQ.Z25", i as f64));
        if i % 100 == 0 {
            host.send("order", fill(i / 100));
        }
    }
    wait_until("all delivered or coalesced", || {
        let s = status(&host, "order");
        s.handled + s.quotes_coalesced == quotes + fills
    });
    host.shutdown();
    let state = fx.saved_state("order");
    assert_eq!(state["fills"], fills);
    assert_eq!(state["last"].as_f64(), Some(quotes as f64));
    for bad in ["misplaced", "backwards", "gap"] {
        assert!(state[bad].is_null(), "{bad}: {state}");
    }
}
