//! The fault suite: the real `moontick run` binary trades against the simulator while faults
//! are switched on through `POST /sim/faults` (5xx before and after executing, dropped replies,
//! delays, a freeze, a 429 storm, hub drops and refusals). After each scenario the strategy's
//! own ledger (its log lines) is checked against the simulator's orders: every order asked for
//! was sent or refused, every sent order reached a final state the strategy knows and that
//! matches the simulator's, no customTag is at the simulator twice, and no order the engine
//! called "not placed" exists there.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use moontick::gateway::Endpoint;
use moontick::gateway::wire::{Order, OrderStatus};
use moontick::sim::Simulator;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;

/// Orders each scenario's strategy asks for.
const ASKS: usize = 6;

/// Asks for one market order every 0.25 s once quotes flow, alternating buy and sell so the
/// position stays small whatever the faults do, and logs every outcome as a `LEDGER` line.
const PROBE: &str = r#"
local M = { symbols = { "MNQ" } }
local ASKS = __ASKS__
local asked, live = 0, false
local function ask()
  if not live or asked >= ASKS then return end
  asked = asked + 1
  local place = (asked % 2 == 1) and bot.buy or bot.sell
  local h, why = place{ symbol = "MNQ", size = 1 }
  if h then
    bot.log.info("LEDGER sent " .. asked .. " " .. h.id)
  else
    bot.log.info("LEDGER refused " .. asked .. " " .. tostring(why))
  end
end
function M.on_start(ctx) bot.every(0.25, ask) end
function M.on_quote(q) live = true end
function M.on_order(o)
  bot.log.info("LEDGER order " .. o.id .. " " .. o.status .. " " .. o.filled .. " " .. tostring(o.reason))
end
return M
"#;

/// One scenario: a simulator, the engine binary trading against it, and its log lines.
struct Scenario {
    sim: Simulator,
    http: reqwest::Client,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// Removes ANSI colour sequences (`ESC [ … letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.lock().unwrap().push(strip_ansi(&line));
        }
    });
}

impl Scenario {
    /// Starts a simulator and lets `before` set faults on it before the engine starts.
    async fn start(before: &[&str]) -> Scenario {
        let sim = start_sim(|c| c.quote_rate = 10.0).await;
        let http = reqwest::Client::new();
        let dir = tempfile::tempdir().unwrap();
        let strategies = dir.path().join("strategies");
        std::fs::create_dir_all(&strategies).unwrap();
        std::fs::write(
            strategies.join("probe.lua"),
            PROBE.replace("__ASKS__", &ASKS.to_string()),
        )
        .unwrap();
        for f in before {
            post_fault(&http, &sim, f).await;
        }
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"))
            .arg("run")
            .current_dir(dir.path())
            .env_clear()
            .env("RUST_LOG", "info")
            .env("PROJECT_X_API_URL", sim.url())
            .env("PROJECT_X_MARKET_HUB_URL", sim.market_hub_url())
            .env("PROJECT_X_USER_HUB_URL", sim.user_hub_url())
            .env("PROJECT_X_USERNAME", USER)
            .env("PROJECT_X_API_KEY", KEY)
            .env("PROJECT_X_ACCOUNT_ID", sim.account_id().to_string())
            .env("PROJECT_X_TIMEOUT_SECS", "1")
            // Short, so "not placed" settles within a scenario; the freeze scenario shows that a
            // lookup must also have succeeded after the gateway came back, whatever the grace.
            .env("NOT_PLACED_GRACE_SECS", "3")
            .env("STRATEGIES_DIR", &strategies)
            .env("STATE_DIR", dir.path().join("state"))
            .env("PORT", "0")
            .env("BIND_ADDR", "127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = Arc::<Mutex<Vec<String>>>::default();
        collect(child.stdout.take().unwrap(), lines.clone());
        collect(child.stderr.take().unwrap(), lines.clone());
        Scenario {
            sim,
            http,
            child,
            lines,
            _dir: dir,
        }
    }

    /// Switches a fault through the control endpoint, as a user outside the process would.
    async fn fault(&self, json: &str) {
        post_fault(&self.http, &self.sim, json).await;
    }

    /// What `GET /sim/faults` lists as active.
    async fn active(&self) -> Vec<serde_json::Value> {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/sim/faults", self.sim.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["active"].as_array().cloned().unwrap_or_default()
    }

    fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn ledger(&self) -> Ledger {
        Ledger::parse(&self.log())
    }

    fn logged(&self, text: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// Polls `done` every 50 ms until it holds; fails after `within` with the log.
    async fn until(&self, what: &str, within: Duration, mut done: impl FnMut(&Scenario) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out after {within:?} waiting for {what}; log:\n{}",
                    self.log().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for every ask to have an answer and every sent order a final state.
    async fn settled(&self, within: Duration) {
        self.until("every order settled", within, |s| s.ledger().settled())
            .await;
    }

    /// SIGTERMs the engine, waits for it to exit, then checks the ledger against the simulator.
    async fn finish(mut self) -> Ledger {
        let pid = self.child.id().unwrap() as i32;
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the engine exits within 20 s of SIGTERM")
            .unwrap();
        let ledger = self.ledger();
        let orders = self.sim.orders(self.sim.account_id());
        let problems = ledger.problems(&orders);
        assert!(
            problems.is_empty(),
            "ledger does not match the simulator:\n- {}\nledger: {ledger:#?}\nsimulator: {:#?}\nlog:\n{}",
            problems.join("\n- "),
            orders
                .iter()
                .map(|o| (o.custom_tag.clone(), o.status, o.fill_volume))
                .collect::<Vec<_>>(),
            self.log().join("\n")
        );
        assert!(status.success(), "engine exit status {status}");
        ledger
    }
}

async fn post_fault(http: &reqwest::Client, sim: &Simulator, json: &str) {
    let r = http
        .post(format!("{}/sim/faults", sim.url()))
        .body(json.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{json}: {}", r.text().await.unwrap());
}

/// What the strategy logged: each ask's answer, and each order's status changes.
#[derive(Debug, Default)]
struct Ledger {
    /// Ask number → `Ok(order id)` or `Err(refusal)`.
    asks: BTreeMap<usize, Result<u64, String>>,
    /// Order id → every `(status, filled, reason)` it was reported with, in order.
    orders: BTreeMap<u64, Vec<(String, i64, String)>>,
}

fn terminal(status: &str) -> bool {
    matches!(status, "filled" | "cancelled" | "rejected" | "expired")
}

fn label(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Filled => "filled",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Expired => "expired",
        OrderStatus::Rejected => "rejected",
        OrderStatus::Open => "open",
        _ => "pending",
    }
}

impl Ledger {
    fn parse(lines: &[String]) -> Ledger {
        let mut l = Ledger::default();
        for line in lines {
            let Some((_, rest)) = line.split_once("LEDGER ") else {
                continue;
            };
            // The log line ends with the strategy's field.
            let rest = rest
                .trim_end()
                .trim_end_matches("strategy=probe")
                .trim_end();
            let words: Vec<&str> = rest.splitn(5, ' ').collect();
            let num = |i: usize| words.get(i).and_then(|w| w.trim().parse().ok());
            match words.first().copied() {
                Some("sent") => {
                    if let (Some(n), Some(id)) = (num(1), num(2)) {
                        l.asks.insert(n as usize, Ok(id));
                    }
                }
                Some("refused") => {
                    if let Some(n) = num(1) {
                        l.asks.insert(
                            n as usize,
                            Err(rest.splitn(3, ' ').nth(2).unwrap_or("").to_string()),
                        );
                    }
                }
                Some("order") => {
                    if let (Some(id), Some(status), Some(filled)) = (
                        num(1),
                        words.get(2),
                        words.get(3).and_then(|w| w.parse().ok()),
                    ) {
                        let reason = words.get(4).unwrap_or(&"").trim().to_string();
                        l.orders
                            .entry(id)
                            .or_default()
                            .push((status.to_string(), filled, reason));
                    }
                }
                _ => {}
            }
        }
        l
    }

    fn sent(&self) -> impl Iterator<Item = u64> + '_ {
        self.asks.values().filter_map(|a| a.as_ref().ok().copied())
    }

    fn last(&self, id: u64) -> Option<&(String, i64, String)> {
        self.orders.get(&id).and_then(|v| v.last())
    }

    fn settled(&self) -> bool {
        self.asks.len() == ASKS
            && self
                .sent()
                .all(|id| self.last(id).is_some_and(|(s, _, _)| terminal(s)))
    }

    fn not_placed(&self) -> usize {
        self.sent()
            .filter(|&id| {
                self.last(id)
                    .is_some_and(|(_, _, r)| r.contains("not placed"))
            })
            .count()
    }

    fn filled(&self) -> usize {
        self.sent()
            .filter(|&id| self.last(id).is_some_and(|(s, _, _)| s == "filled"))
            .count()
    }

    /// Every way the ledger disagrees with the simulator's `orders`.
    fn problems(&self, orders: &[Order]) -> Vec<String> {
        let mut problems = Vec::new();
        let asked: Vec<usize> = self.asks.keys().copied().collect();
        if asked != (1..=ASKS).collect::<Vec<_>>() {
            problems.push(format!(
                "asked {ASKS} orders but answers were logged for {asked:?} (asked != sent + refused)"
            ));
        }
        let mut at_sim: BTreeMap<u64, Vec<&Order>> = BTreeMap::new();
        for o in orders {
            let tag = o.custom_tag.as_deref().unwrap_or("");
            match tag
                .strip_prefix("probe.")
                .and_then(|t| t.rsplit('.').next())
                .and_then(|id| id.parse::<u64>().ok())
            {
                Some(id) => at_sim.entry(id).or_default().push(o),
                None => problems.push(format!("order {} at the simulator has tag {tag:?}", o.id)),
            }
        }
        for (id, os) in &at_sim {
            if os.len() > 1 {
                problems.push(format!("order {id} is at the simulator {} times", os.len()));
            }
            if !self.sent().any(|s| s == *id) {
                problems.push(format!(
                    "order {id} is at the simulator but the strategy never got it"
                ));
            }
        }
        for id in self.sent() {
            let Some((status, filled, reason)) = self.last(id) else {
                problems.push(format!("order {id}: on_order never called"));
                continue;
            };
            if !terminal(status) {
                problems.push(format!("order {id}: left {status} (not final)"));
            }
            match at_sim.get(&id).and_then(|v| v.first()) {
                None if status != "rejected" => problems.push(format!(
                    "order {id}: strategy says {status}, the simulator never got it"
                )),
                None => {}
                Some(o) if reason.contains("not placed") => problems.push(format!(
                    "order {id}: reported \"{reason}\" but it is {:?} at the simulator (filled {})",
                    o.status, o.fill_volume
                )),
                Some(o) if label(o.status) != status || i64::from(o.fill_volume) != *filled => {
                    problems.push(format!(
                        "order {id}: strategy says {status} ({filled} filled), the simulator {:?} ({} filled)",
                        o.status, o.fill_volume
                    ))
                }
                Some(_) => {}
            }
        }
        problems
    }
}

const SETTLE: Duration = Duration::from_secs(30);

/// Waits until the first order filled, so the faults that follow meet a running engine.
async fn first_fill(s: &Scenario) {
    s.until("the first fill", SETTLE, |s| s.ledger().filled() >= 1)
        .await;
}

#[tokio::test]
async fn server_errors_before_executing_are_not_placed_and_never_resent() {
    let s =
        Scenario::start(&[r#"{"fault":"fail_next","endpoint":"Order/place","n":2,"reply":"500"}"#])
            .await;
    s.settled(SETTLE).await;
    assert!(s.active().await.is_empty(), "both 500s were given");
    let ledger = s.finish().await;
    assert_eq!(ledger.not_placed(), 2, "{ledger:#?}");
    assert_eq!(ledger.filled(), ASKS - 2, "{ledger:#?}");
}

#[tokio::test]
async fn server_errors_after_executing_are_found_not_resent() {
    let s = Scenario::start(&[
        r#"{"fault":"execute_then","endpoint":"Order/place","n":2,"reply":"500"}"#,
    ])
    .await;
    s.settled(SETTLE).await;
    assert!(s.active().await.is_empty());
    assert!(s.logged("looking for it at the broker"));
    let ledger = s.finish().await;
    assert_eq!(ledger.filled(), ASKS, "{ledger:#?}");
}

#[tokio::test]
async fn dropped_replies_before_and_after_executing_are_told_apart() {
    let s = Scenario::start(&[
        r#"{"fault":"fail_next","endpoint":"Order/place","n":1,"reply":"drop"}"#,
        r#"{"fault":"execute_then","endpoint":"Order/place","n":1,"reply":"drop"}"#,
    ])
    .await;
    s.settled(SETTLE).await;
    assert!(s.active().await.is_empty());
    let ledger = s.finish().await;
    assert_eq!(ledger.not_placed(), 1, "{ledger:#?}");
    assert_eq!(ledger.filled(), ASKS - 1, "{ledger:#?}");
}

#[tokio::test]
async fn replies_slower_than_the_client_timeout_are_reconciled() {
    // Each place executes 1.5 s after it arrived, half a second after the client gave up.
    let s = Scenario::start(&[r#"{"fault":"delay","endpoint":"Order/place","ms":1500}"#]).await;
    s.settled(SETTLE).await;
    assert!(s.logged("looking for it at the broker"));
    s.finish().await;
}

#[tokio::test]
async fn a_frozen_gateway_never_turns_orders_it_later_fills_into_not_placed() {
    let s = Scenario::start(&[]).await;
    first_fill(&s).await;
    // Longer than the engine's whole lookup of an unknown order (5 searches, each retried).
    s.fault(r#"{"fault":"freeze","ms":30000}"#).await;
    s.until(
        "the freeze to end and every frozen place to execute",
        Duration::from_secs(60),
        |s| {
            let executed = s.sim.orders(s.sim.account_id()).len() as u64;
            s.ledger().asks.len() == ASKS
                && executed == s.sim.stats().calls(Endpoint::OrderPlace)
                && executed > 1
        },
    )
    .await;
    s.settled(Duration::from_secs(30)).await;
    s.finish().await;
}

#[tokio::test]
async fn a_rate_limit_storm_delays_orders_without_losing_or_doubling_them() {
    let s = Scenario::start(&[]).await;
    first_fill(&s).await;
    s.fault(r#"{"fault":"rate_limit_storm","secs":3,"retry_after_ms":1000}"#)
        .await;
    s.settled(SETTLE).await;
    assert!(s.logged("HTTP 429"), "the storm was met");
    s.finish().await;
}

#[tokio::test]
async fn hub_drops_lose_no_order_outcome() {
    let s = Scenario::start(&[]).await;
    first_fill(&s).await;
    let connects = s.sim.stats().hub_connects;
    s.fault(r#"{"fault":"drop_hubs"}"#).await;
    s.until("half the asks", SETTLE, |s| {
        s.ledger().asks.len() >= ASKS / 2
    })
    .await;
    s.fault(r#"{"fault":"drop_hubs"}"#).await;
    s.settled(SETTLE).await;
    s.until("the hubs to reconnect", SETTLE, |s| {
        s.sim.stats().hub_connects >= connects + 2
    })
    .await;
    s.finish().await;
}

#[tokio::test]
async fn refused_hub_reconnects_lose_no_order_outcome() {
    let s = Scenario::start(&[]).await;
    first_fill(&s).await;
    let connects = s.sim.stats().hub_connects;
    s.fault(r#"{"fault":"refuse_hubs","status":503}"#).await;
    s.fault(r#"{"fault":"drop_hubs"}"#).await;
    // Every order goes out while the engine cannot hear the hubs.
    s.until("every ask", SETTLE, |s| s.ledger().asks.len() == ASKS)
        .await;
    assert_eq!(
        s.sim.stats().hub_connects,
        connects,
        "upgrades were refused"
    );
    s.fault(r#"{"fault":"clear"}"#).await;
    s.settled(SETTLE).await;
    s.finish().await;
}
