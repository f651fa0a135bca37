//! Bars end to end against the simulator over loopback: a declared series is backfilled from
//! `History/retrieveBars` and continues from live trades without a gap or a jump, every bar
//! `on_bar` sees is exactly the trades the simulator printed in it, and a reload keeps the bars
//! (and backfills a timeframe it adds).

mod common;
mod engine_support;

use std::time::Duration;

use common::*;
use engine_support::*;
use moontick::gateway::TransportOptions;
use serde_json::Value;

const STRATEGY: &str = r#"
local M = { symbols = { "MNQ" }, bars = { "1s" }, bars_history = 30 }
local function row(b) return { b.time, b.open, b.high, b.low, b.close, b.volume } end
function M.on_start(ctx) state.reason = ctx.reason end
function M.on_bar(b)
  state.live = state.live or {}
  table.insert(state.live, row(b))
  state.tf = b.timeframe .. " " .. b.symbol .. " " .. b.contract
  if not state.hist then
    state.hist = {}
    for i, x in ipairs(bot.bars("MNQ", "1s", 100)) do state.hist[i] = row(x) end
  end
end
return M
"#;

const RELOADED: &str = r#"
local M = { symbols = { "MNQ" }, bars = { "1s", MNQ = { "2s" } }, bars_history = 30 }
function M.on_start(ctx) state.reason = ctx.reason end
function M.on_bar(b)
  if b.timeframe == "2s" then state.two = (state.two or 0) + 1 end
  local one = bot.bars("MNQ", "1s", 1000)
  state.after = { #one, #bot.bars("MNQ", "2s", 1000), one[1].time }
end
return M
"#;

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that each 1s bar `[time, o, h, l, c, v]` is exactly the prints of its second.
fn assert_bars_are_the_prints(bars: &[Vec<f64>], prints: &[Print]) {
    for b in bars {
        let from = (b[0] * 1000.0) as i64;
        let made: Vec<&Print> = prints
            .iter()
            .filter(|p| (from..from + 1000).contains(&p.0))
            .collect();
        assert!(!made.is_empty(), "bar {b:?} has prints");
        let want = [
            b[0],
            made[0].1,
            made.iter().map(|p| p.1).fold(f64::MIN, f64::max),
            made.iter().map(|p| p.1).fold(f64::MAX, f64::min),
            made.last().unwrap().1,
            made.iter().map(|p| p.2).sum::<i64>() as f64,
        ];
        assert_eq!(b, &want, "bar vs the prints of its second");
    }
}

/// Asserts that between the first and the last bar, every second in which the simulator printed
/// has its bar (a second with no print has none: under load the simulator may skip one).
fn assert_no_bar_missing(bars: &[Vec<f64>], prints: &[Print]) {
    let (first, last) = (
        bars[0][0] as i64 * 1000,
        bars[bars.len() - 1][0] as i64 * 1000,
    );
    let mut seconds: Vec<i64> = prints
        .iter()
        .map(|p| p.0.div_euclid(1000) * 1000)
        .filter(|s| (first..=last).contains(s))
        .collect();
    seconds.dedup();
    for s in seconds {
        assert!(
            bars.iter().any(|b| b[0] as i64 * 1000 == s),
            "no bar for second {s}, which has prints"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_meets_live_bars_and_on_bar_is_the_trades_that_made_it() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let mnq = sim.contract_id("MNQ").expect("MNQ listed");
    let prints = record_prints(&sim, &mnq);
    let dir = tempfile::tempdir().unwrap();
    let run = start_engine(&sim, dir.path(), STRATEGY, TransportOptions::default()).await;
    let strategies = run.strategies.clone();
    // Four live bars, then a reload that adds "2s".
    tokio::time::sleep(Duration::from_secs(6)).await;
    let host = run.engine.host();
    std::fs::write(strategies.join("probe.lua"), RELOADED).unwrap();
    eventually("the reload", || {
        let host = host.clone();
        async move { host.strategy("probe").is_some_and(|s| s.generation >= 2) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let state = stop(run).await;

    assert_eq!(state["reason"], "reload", "{state}");
    let tf = state["tf"].as_str().unwrap_or_default();
    assert_eq!(tf, format!("1s MNQ {mnq}"));

    // Backfill: `bot.bars` at the first `on_bar` holds the 30 bars kept, history running into
    // the first live bar(s), a bar every second with no gap and no jump where they meet.
    let hist = rows(&state["hist"]);
    let live = rows(&state["live"]);
    assert_eq!(hist.len(), 30, "bars_history bars kept");
    let first_live = live[0][0];
    let join = hist
        .iter()
        .position(|b| b[0] == first_live)
        .expect("history runs into live bars");
    assert!(join >= 25, "history before the first live bar ({join})");
    assert_eq!(
        &hist[join..],
        &live[..30 - join],
        "the newest bars are the live ones"
    );
    let prints = prints.lock().unwrap().clone();
    for w in hist.windows(2) {
        assert!(w[1][0] > w[0][0], "in order: {:?} then {:?}", w[0], w[1]);
        assert!(
            (w[1][1] - w[0][4]).abs() <= 1.0,
            "no jump: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    // History from before the simulator started has a bar every second; from then on, every
    // second with a print has its bar.
    assert!(
        hist[..join.min(10)]
            .windows(2)
            .all(|w| w[1][0] - w[0][0] == 1.0),
        "{hist:?}"
    );
    assert_no_bar_missing(&hist, &prints);
    assert_no_bar_missing(&live, &prints);

    // Each live bar is exactly the simulator's prints of its second.
    assert!(live.len() >= 4, "{} live bars", live.len());
    assert_bars_are_the_prints(&live, &prints);

    // The reload kept the 1s bars and backfilled the 2s series it added.
    let after = rows(&Value::Array(vec![state["after"].clone()]));
    let (n1, n2, oldest) = (after[0][0] as usize, after[0][1] as usize, after[0][2]);
    assert_eq!(n1, 30, "1s bars kept across the reload");
    let before_reload = live.last().unwrap()[0];
    assert!(
        oldest <= before_reload,
        "bars from before the reload are still there"
    );
    assert!(n2 >= 30, "2s series backfilled on reload: {n2}");
    assert!(
        state["two"].as_i64().unwrap_or(0) >= 1,
        "2s bars live after the reload: {state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_missed_while_the_market_hub_was_down_are_rebuilt_from_history() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let mnq = sim.contract_id("MNQ").expect("MNQ listed");
    let prints = record_prints(&sim, &mnq);
    let dir = tempfile::tempdir().unwrap();
    let script = "local M = { symbols = { 'MNQ' }, bars = { '1s' }, bars_history = 2 }\n\
        function M.on_bar(b)\n  state.live = state.live or {}\n\
          table.insert(state.live, { b.time, b.open, b.high, b.low, b.close, b.volume })\nend\n\
        function M.on_feed(s) state.feed = (state.feed or '') .. s .. ' ' end\nreturn M\n";
    let run = start_engine(&sim, dir.path(), script, TransportOptions::default()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Down for three seconds while the market trades on: more bars than `bars_history` asks.
    sim.faults().reject_hub_upgrades(Some(503));
    sim.faults().drop_hub_connections();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.faults().reject_hub_upgrades(None);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let state = stop(run).await;

    let feed = state["feed"].as_str().unwrap_or_default();
    assert!(
        feed.contains("reconnecting") && feed.ends_with("live "),
        "the hub dropped and came back: {feed}"
    );
    let live = rows(&state["live"]);
    assert!(live.len() >= 10, "{} live bars", live.len());
    let prints = prints.lock().unwrap().clone();
    assert_no_bar_missing(&live, &prints);
    assert_bars_are_the_prints(&live, &prints);
}

/// An outage longer than one history request returns (20,000 of the gateway's bars) is
/// rebuilt page by page, backwards from the cut: every second of it, once, in order.
#[tokio::test]
async fn a_backfill_longer_than_one_request_pages_back_without_a_gap_or_a_repeat() {
    let sim = start_sim(|_| {}).await;
    let client = client(&sim);
    let contract = sim.contract_id("MNQ").unwrap();
    let tf = moontick::bars::Timeframe::parse("1s").unwrap();
    // A minute before now: the simulator's synthetic history, a trade in every second.
    let cut = (chrono::Utc::now().timestamp() - 60) * 1000;
    let bars = moontick::feed::bars::backfill(&client, &contract, tf, 25_000, cut)
        .await
        .unwrap();
    // 25,000 closed bars and the one the cut falls in (none here: the cut is a whole second).
    assert_eq!(bars.len(), 25_001, "one request returns 20,000");
    assert_eq!(bars.last().unwrap().time_ms, cut - 1000, "ends at the cut");
    for w in bars.windows(2) {
        assert_eq!(
            w[1].time_ms - w[0].time_ms,
            1000,
            "a gap or a repeat at {}",
            w[0].time_ms
        );
    }
}
