//! A strategy that stops responding is seen and contained: the watchdog marks it stuck (and
//! interrupts Lua it can reach), its webhooks are refused while stuck, a panic marks it crashed,
//! and shutdown ends within its bound naming the strategies that did not stop.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::fixture::*;
use moontick::script::{
    BotCall, BotReply, Broker, Host, HostConfig, Limits, MemoryBroker, RunState, SystemClock,
    WebhookBody, WebhookRequest,
};

/// A memory broker whose `bot.buy{ tag = "stall" }` blocks until the test opens the gate (a
/// `bot` call stuck in Rust, where no instruction hook runs), and whose `tag = "panic"` panics
/// (a bug in a `bot` call).
#[derive(Default)]
struct Gate {
    memory: MemoryBroker,
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl Broker for Gate {
    fn answer(&self, strategy: &str, call: BotCall) -> BotReply {
        if let BotCall::Submit(intent) = &call {
            match intent.tag.as_deref() {
                Some("stall") => {
                    let open = self.open.lock().unwrap();
                    let _open = self
                        .opened
                        .wait_timeout_while(open, Duration::from_secs(60), |o| !*o)
                        .unwrap();
                }
                Some("panic") => panic!("boom inside a bot call"),
                _ => {}
            }
        }
        self.memory.answer(strategy, call)
    }
}

/// Stalls on a quote with bid 1, panics on bid 2; counts webhooks.
const STALLER: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q)
  if q.bid == 1 then bot.buy{ size = 1, tag = "stall" } end
  if q.bid == 2 then bot.buy{ size = 1, tag = "panic" } end
  state.quotes = (state.quotes or 0) + 1
end
function M.on_webhook(req)
  state.hooks = (state.hooks or 0) + 1
  return { hooks = state.hooks }
end
return M
"#;

fn start(fx: &Fixture, gate: &Arc<Gate>, tweak: impl FnOnce(&mut HostConfig)) -> Host {
    let mut cfg = fx.config();
    cfg.watchdog = Duration::from_millis(200);
    tweak(&mut cfg);
    Host::start(cfg, gate.clone(), Arc::new(SystemClock)).unwrap()
}

fn webhook(host: &Host, name: &str) -> Result<serde_json::Value, String> {
    let (req, rx) = WebhookRequest::new(WebhookBody::Json(serde_json::json!({})));
    assert!(host.webhook(name, req));
    rx.blocking_recv().unwrap().reply
}

#[test]
fn a_stalled_bot_call_is_reported_stuck_and_its_webhooks_are_refused_until_it_returns() {
    let fx = Fixture::new();
    fx.write("slow", STALLER);
    let gate = Arc::new(Gate::default());
    let host = start(&fx, &gate, |_| {});
    assert_eq!(webhook(&host, "slow").unwrap()["hooks"], 1);

    let sent = Instant::now();
    host.dispatch(quote("CON.F.US.MNQ.Z25", 1.0));
    wait_until("stuck", || status(&host, "slow").state == RunState::Stuck);
    // 200 ms limit, checked every 50 ms; generous for a loaded machine.
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    let st = status(&host, "slow");
    let stall = st.stalled.expect("stall details");
    assert_eq!(stall.handler, "on_quote");
    assert!(stall.for_ms >= 200, "{stall:?}");

    // Refused at once while stuck, however many: nothing queues up behind the stall.
    for _ in 0..10_000 {
        let why = webhook(&host, "slow").unwrap_err();
        assert!(why.starts_with("strategy is stuck: on_quote"), "{why}");
    }
    assert_eq!(status(&host, "slow").webhooks_refused, 10_000);
    // Events still queue (and quotes conflate under the age bound).
    for i in 0..1_000 {
        host.dispatch(quote("CON.F.US.MNQ.Z25", 10.0 + f64::from(i)));
    }
    host.send("slow", fill(1));

    gate.open();
    wait_until("running again", || {
        status(&host, "slow").state == RunState::Running
    });
    assert_eq!(webhook(&host, "slow").unwrap()["hooks"], 2);
    // The stalled call returned and its handler finished: it was waiting in Rust, not running
    // Lua, so it was not interrupted.
    assert!(
        gate.memory
            .submitted()
            .iter()
            .any(|(_, i)| i.tag.as_deref() == Some("stall"))
    );
    let st = status(&host, "slow");
    assert!(st.stalled.is_none() && st.quotes_coalesced > 0, "{st:?}");
    assert!(st.last_error.is_none(), "{st:?}");
    host.shutdown();
}

#[test]
fn lua_spinning_past_the_watchdog_is_interrupted_and_the_next_event_is_handled() {
    let fx = Fixture::new();
    fx.write(
        "spin",
        "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  if q.bid == 1 then\n    while true do end\n  end\n  state.ok = q.bid\nend\nreturn M\n",
    );
    let gate = Arc::new(Gate::default());
    // A budget that would take hours to spend: only the watchdog can end the loop.
    let host = start(&fx, &gate, |c| {
        c.limits = Limits {
            instructions_per_callback: u64::MAX,
            ..Limits::default()
        }
    });
    host.dispatch(quote("A", 1.0));
    host.dispatch(quote("A", 2.0));
    wait_until("next quote handled", || status(&host, "spin").handled >= 1);
    let st = status(&host, "spin");
    assert_eq!(st.state, RunState::Running);
    let err = st.last_error.unwrap();
    assert!(
        err.contains("interrupted by the watchdog") && err.contains("spin.lua:4"),
        "{err}"
    );
    host.shutdown();
    assert_eq!(fx.saved_state("spin")["ok"].as_f64(), Some(2.0));
}

#[test]
fn a_panic_in_a_strategy_thread_marks_it_crashed_and_it_gets_nothing_more() {
    let fx = Fixture::new();
    fx.write("bad", STALLER);
    fx.write("good", STALLER.replace("bid == 2", "bid == -2").as_str());
    let gate = Arc::new(Gate::default());
    let host = start(&fx, &gate, |_| {});
    host.dispatch(quote("A", 2.0));
    wait_until("crashed", || {
        status(&host, "bad").state == RunState::Crashed
    });
    let st = status(&host, "bad");
    assert!(
        st.crash
            .as_deref()
            .unwrap()
            .contains("boom inside a bot call"),
        "{st:?}"
    );
    let why = webhook(&host, "bad").unwrap_err();
    assert!(why.starts_with("strategy crashed"), "{why}");
    host.dispatch(quote("A", 3.0));
    host.send("bad", fill(1));
    wait_until("the other strategy carries on", || {
        status(&host, "good").handled >= 2
    });
    assert_eq!(status(&host, "bad").handled, st.handled);
    let last = host.shutdown();
    let bad = last.iter().find(|s| s.name == "bad").unwrap();
    assert_eq!(bad.state, RunState::Crashed);
}

#[test]
fn shutdown_with_a_stuck_strategy_ends_within_its_bound_and_names_it() {
    let fx = Fixture::new();
    fx.write("stuck", STALLER);
    fx.write("fine", STALLER.replace("bid == 1", "bid == -1").as_str());
    let gate = Arc::new(Gate::default());
    let host = start(&fx, &gate, |c| {
        c.shutdown_timeout = Duration::from_millis(500);
        c.state_flush_every = Duration::from_millis(50);
    });
    host.send("stuck", fill(1));
    host.send("fine", fill(1));
    wait_until("saved once", || fx.state_dir.join("stuck.json").exists());
    host.send("stuck", fill(2));
    let (req, _never) = WebhookRequest::new(WebhookBody::Text("x".into()));
    host.webhook("stuck", req);
    wait_until("in the stall", || {
        host.dispatch(quote("A", 1.0));
        status(&host, "stuck").state == RunState::Stuck
    });
    let t0 = Instant::now();
    let last = host.shutdown();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    let by_name = |n: &str| last.iter().find(|s| s.name == n).unwrap().state;
    assert_eq!(by_name("fine"), RunState::Stopped);
    assert_eq!(by_name("stuck"), RunState::Stuck);
    // Its last periodic save is still there (the stuck VM could not be asked for a new one).
    assert!(fx.state_dir.join("stuck.json").exists());
    gate.open();
}
