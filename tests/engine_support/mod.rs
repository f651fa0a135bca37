//! Shared by the engine integration tests: an engine on the simulator over loopback with one
//! probe strategy, and reading back what the probe saved in `state`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use moontick::config::RiskLimits;
use moontick::engine::{Engine, EngineParams};
use moontick::feed::MarketFeedConfig;
use moontick::gateway::{GatewayClient, TransportOptions};
use moontick::risk::RiskGuard;
use moontick::script::HostConfig;
use moontick::sim::Simulator;
use serde_json::Value;

use crate::common::{credentials, session_with};

pub fn limits() -> RiskLimits {
    RiskLimits {
        max_order_size: 5,
        max_position: 5,
        daily_loss_limit: 1000.0,
        max_orders_per_minute: 30,
    }
}

pub struct Run {
    pub engine: Engine,
    pub state_dir: PathBuf,
    pub strategies: PathBuf,
    pub client: GatewayClient,
    pub account: i32,
}

pub async fn start_engine(
    sim: &Simulator,
    dir: &Path,
    script: &str,
    options: TransportOptions,
) -> Run {
    start_engine_with(sim, dir, script, limits(), options).await
}

/// [`start_engine`] under other risk limits.
pub async fn start_engine_with(
    sim: &Simulator,
    dir: &Path,
    script: &str,
    limits: RiskLimits,
    options: TransportOptions,
) -> Run {
    let strategies = dir.join("strategies");
    std::fs::create_dir_all(&strategies).unwrap();
    std::fs::write(strategies.join("probe.lua"), script).unwrap();
    let state_dir = dir.join("state");
    let client = GatewayClient::new(session_with(sim, None, Some(credentials()), options));
    let account = client.accounts(true).await.unwrap().remove(0);
    let account_id = account.id;
    let guard = RiskGuard::open(limits, Some(&state_dir), chrono::Utc::now()).unwrap();
    let mut host = HostConfig::new(&strategies);
    host.state_dir = Some(state_dir.clone());
    let engine = Engine::start(EngineParams {
        client: client.clone(),
        account,
        guard,
        market_hub: MarketFeedConfig::new(sim.market_hub_url()),
        user_hub_url: sim.user_hub_url(),
        host,
        watch: true,
        metrics: std::sync::Arc::new(moontick::metrics::Metrics::new()),
        not_placed_grace: moontick::engine::NOT_PLACED_GRACE,
        events: Default::default(),
        journal_dir: None,
    })
    .await
    .expect("engine starts");
    engine
        .wait_ready(Duration::from_secs(15))
        .await
        .expect("engine ready");
    Run {
        engine,
        state_dir,
        strategies,
        client,
        account: account_id,
    }
}

/// Stops the engine and returns the `state` the probe strategy saved.
pub async fn stop(run: Run) -> Value {
    run.engine.shutdown().await;
    let text =
        std::fs::read_to_string(run.state_dir.join("probe.json")).expect("state saved on stop");
    serde_json::from_str(&text).unwrap()
}

pub async fn eventually_within<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(15), check).await;
}

/// Records every handler call into `state.log` as short strings.
pub const RECORDER: &str = r#"
local M = { symbols = { "MNQ" } }
local function log(s) state.log = state.log or {}; table.insert(state.log, s) end
function M.on_order(o) log("order:" .. o.status .. ":" .. o.filled .. (o.reason and (":" .. o.reason) or "")) end
function M.on_fill(f) log("fill:" .. f.side .. ":" .. f.size .. ":" .. f.price) end
function M.on_position(p) log("position:" .. p.size) end
"#;

/// The recorder plus an `on_quote` that runs the `n`th body on the `n`th quote.
pub fn on_quotes(bodies: &[&str]) -> String {
    let mut s = format!("{RECORDER}\nfunction M.on_quote(q)\n  state.n = (state.n or 0) + 1\n");
    for (i, b) in bodies.iter().enumerate() {
        s.push_str(&format!("  if state.n == {} then\n{b}\n  end\n", i + 1));
    }
    s.push_str("end\nreturn M\n");
    s
}

pub fn entries(state: &Value) -> Vec<String> {
    state["log"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Working orders and open positions at the simulator.
pub async fn at_broker(run: &Run) -> (usize, usize) {
    let orders = run.client.open_orders(run.account).await.unwrap().len();
    let positions = run.client.open_positions(run.account).await.unwrap().len();
    (orders, positions)
}

/// The recorder plus: on the first quote run `entry`; once `bot.orders()` shows both bracket
/// legs open, record them in `state.orders` (`kind:status:parent:side:type:has_price`) and run
/// `action` `delay` seconds later (time for the test to look and to set faults).
pub fn once_protected(entry: &str, delay: f64, action: &str) -> String {
    format!(
        r#"{RECORDER}
function M.on_quote(q)
  if state.bought then return end
  state.bought = true
  {entry}
end
local function poll()
  if state.armed then return end
  local legs = {{}}
  for _, o in ipairs(bot.orders('MNQ')) do
    if o.kind ~= 'entry' and o.status == 'open' then
      table.insert(legs, o.kind .. ':' .. o.status .. ':' .. tostring(o.parent) .. ':' .. o.side .. ':' .. o.type .. ':' .. tostring(o.price ~= nil))
    end
  end
  if #legs < 2 then return end
  state.armed = true
  state.orders = legs
  bot.after({delay}, function()
    {action}
  end)
end
function M.on_start() bot.every(0.1, poll) end
return M
"#
    )
}
