//! Live fills agree with the backtest: a deterministic strategy trades on `moontick run`'s
//! embedded simulator while the run records the feed; the same file backtested on that
//! recording makes the same trades (same sequence of entries and exits, sides and sizes) at the
//! prices the fill model promises.
//!
//! The fill model's one tolerance, explained: a backtest fills a market order at the touch of
//! the quote the strategy decided on (no latency). Live, the order reaches the exchange a few
//! milliseconds later and fills at the touch standing then: the decision quote's, unless the
//! simulator quoted again in between. So each live price must be the touch of a recorded quote
//! from the decision quote up to the fill's time, and the backtest's exactly the decision quote's.

mod common;
mod run_support;

use std::path::Path;
use std::time::Duration;

use moontick::backtest::{self, BacktestConfig};
use moontick::config::Config;
use moontick::feed::record::{self, Recorded};
use run_support::{start, strategies, strategy, vars};
use serde_json::Value;

/// Trades only in `[FROM, TO)` (exchange time of the quote, seconds): on the first quote of an
/// even second it buys one if flat, on the first of an odd second it sells if long; after `TO`
/// it closes. A function of the quotes alone, never of when it started or of `bot.now()`.
const ALTERNATE: &str = r#"
local M = { symbols = { "MNQ" } }
local holding = false
function M.on_quote(q)
  local t = q.time
  if not t or t < FROM then return end
  local even = math.floor(t) % 2 == 0
  if t < TO and even and not holding then
    holding = bot.buy{ symbol = "MNQ", size = 1 } ~= nil
  elseif holding and (t >= TO or not even) then
    holding = not bot.sell{ symbol = "MNQ", size = 1 }
  end
end
return M
"#;

/// A recorded quote: exchange time, touch.
#[derive(Debug, Clone, Copy)]
struct Q {
    recv_ms: i64,
    time_ms: i64,
    bid: f64,
    ask: f64,
}

fn recorded_quotes(data: &Path) -> Vec<Q> {
    let (mut bid, mut ask) = (None, None);
    record::events(data)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let recv_ms = e.recv_ms();
            match e.event {
                Recorded::Quote(q) if &*q.symbol == "MNQ" => {
                    bid = q.bid.or(bid);
                    ask = q.ask.or(ask);
                    Some(Q {
                        recv_ms,
                        time_ms: q.time_ms,
                        bid: bid?,
                        ask: ask?,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// The strategy's decisions on `quotes`, worked out here: (buy?, index of the decision quote).
fn decisions(quotes: &[Q], from: i64, to: i64) -> Vec<(bool, usize)> {
    let mut holding = false;
    let mut out = Vec::new();
    for (i, q) in quotes.iter().enumerate() {
        let t = q.time_ms as f64 / 1000.0;
        if t < from as f64 {
            continue;
        }
        let even = (q.time_ms / 1000) % 2 == 0;
        if t < to as f64 && even && !holding {
            holding = true;
            out.push((true, i));
        } else if holding && (t >= to as f64 || !even) {
            holding = false;
            out.push((false, i));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fills_on_the_simulator_agree_with_the_backtest_of_their_recording() {
    common::logs();
    let dir = tempfile::tempdir().unwrap();
    // An even second a few seconds ahead (the run is up and quoting by then), for ten seconds.
    let now = chrono::Utc::now().timestamp();
    let from = (now + 4) + (now + 4) % 2;
    let to = from + 10;
    let source = ALTERNATE
        .replace("FROM", &from.to_string())
        .replace("TO", &to.to_string());
    strategy(dir.path(), "alternate", &source);
    let vars = vars(dir.path(), &[]);
    let running = start(&vars).await;
    // Past the window, and flat again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let live = loop {
        let s = running.status().await;
        let past = chrono::Utc::now().timestamp() > to + 1;
        if past && s["positions"].as_array().is_some_and(|p| p.is_empty()) {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "never flat: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    running.stop().await.unwrap();
    let live: Vec<Value> = live["fills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["strategy"] == "alternate")
        .cloned()
        .collect();

    let data = dir.path().join("data");
    let quotes = recorded_quotes(&data);
    let want = decisions(&quotes, from, to);
    assert!(
        want.len() >= 6 && want.len().is_multiple_of(2),
        "a few round trips in the window: {want:?}"
    );

    // Live: the same sides, sizes and order; each at a touch between decision and fill.
    let sides: Vec<&str> = live.iter().map(|f| f["side"].as_str().unwrap()).collect();
    let want_sides: Vec<&str> = want
        .iter()
        .map(|&(buy, _)| if buy { "buy" } else { "sell" })
        .collect();
    assert_eq!(sides, want_sides, "live fills {live:?}");
    let mut at_decision = 0;
    for (f, &(buy, d)) in live.iter().zip(&want) {
        assert_eq!(f["size"], 1, "{f}");
        let price = f["price"].as_f64().unwrap();
        let fill_ms = f["time_ms"].as_i64().unwrap();
        let touch = |q: &Q| if buy { q.ask } else { q.bid };
        let standing: Vec<f64> = quotes[d..]
            .iter()
            .enumerate()
            .take_while(|(k, q)| *k == 0 || q.time_ms <= fill_ms)
            .map(|(_, q)| touch(q))
            .collect();
        assert!(
            standing.contains(&price),
            "live fill {f} is not at a touch standing between its decision quote {:?} and \
             its fill: {standing:?}",
            quotes[d]
        );
        at_decision += usize::from(price == standing[0]);
    }

    // The backtest of the same file on the recording: the decision quote's touch, exactly.
    let config = Config::from_vars(&vars).unwrap();
    let cfg = BacktestConfig {
        strategies: vec![strategies(dir.path()).join("alternate.lua")],
        data,
        bars: None,
        commission: None,
        slippage_ticks: 0,
        limits: config.risk.clone(),
        balance: 50_000.0,
        work_dir: dir.path().join("bt/.strategies"),
    };
    let report = tokio::task::spawn_blocking(move || backtest::run(&cfg).unwrap())
        .await
        .unwrap();
    assert_eq!(report.trips.len(), want.len() / 2, "{}", report.summary());
    for (t, pair) in report.trips.iter().zip(want.chunks(2)) {
        let (entry, exit) = (quotes[pair[0].1], quotes[pair[1].1]);
        assert_eq!((t.side, t.size), ("long", 1), "{t:?}");
        assert_eq!(
            (t.entry_ms, t.entry_price, t.exit_ms, t.exit_price),
            (entry.recv_ms, entry.ask, exit.recv_ms, exit.bid),
            "{t:?}"
        );
    }
    // The same fees per fill as the simulator charged.
    let live_fees: f64 = live.iter().map(|f| f["fees"].as_f64().unwrap()).sum();
    let fees: f64 = report.trips.iter().map(|t| t.commission).sum();
    assert!((live_fees - fees).abs() < 1e-9, "{live_fees} vs {fees}");
    eprintln!(
        "{at_decision} of {} live fills at the decision quote's touch",
        live.len()
    );
}
