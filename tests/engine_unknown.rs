//! Unknown means unknown: with the gateway frozen, an order whose place timed out stays
//! `unknown` (to the strategy and in the engine status) while every lookup fails, is never
//! reported "not placed", and settles to filled — attributed to its strategy — once the gateway
//! wakes and executes the queued request.

mod common;
mod engine_support;

use std::time::Duration;

use common::*;
use engine_support::*;
use moontick::gateway::{Endpoint, TransportOptions};

#[tokio::test]
async fn a_place_during_a_freeze_stays_unknown_then_settles_to_filled() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let script = on_quotes(&["    bot.buy{ symbol = 'MNQ', size = 1 }"]);
    let options = TransportOptions {
        timeout: Duration::from_millis(500),
        max_read_retries: 0,
        ..fast_options()
    };
    let run = start_engine(&sim, dir.path(), &script, options).await;
    // The gateway freezes: every REST call sits 11 s before it runs (the place included, which
    // then executes), and the hubs go silent, so nothing reports the fill meanwhile.
    let freeze = Duration::from_secs(11);
    sim.faults().delay(None, freeze);
    sim.step_quotes(1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.faults().hubs_silent(true);
    let status = run.engine.status();
    eventually("the order to be unknown in the engine status", || {
        let s = status.borrow().clone();
        async move { s.open_orders.iter().any(|o| o.status == "unknown") }
    })
    .await;
    // Well past the point where the old five lookups gave up.
    tokio::time::sleep(freeze).await;
    assert!(
        status
            .borrow()
            .open_orders
            .iter()
            .any(|o| o.id == 1 && o.status == "unknown"),
        "still unknown while every lookup failed: {:?}",
        status.borrow().open_orders
    );
    sim.faults().clear();
    eventually_within("the order to settle", Duration::from_secs(30), || {
        let s = status.borrow().clone();
        async move { s.open_orders.is_empty() && s.positions.len() == 1 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = stop(run).await;
    let log = entries(&state);
    assert!(log.iter().any(|e| e == "order:unknown:0"), "{log:?}");
    assert!(log.iter().any(|e| e == "order:filled:1"), "{log:?}");
    assert!(
        log.iter().any(|e| e.starts_with("fill:buy:1:")),
        "the fill is attributed to the strategy: {log:?}"
    );
    assert!(
        !log.iter()
            .any(|e| e.contains("rejected") || e.contains("not placed")),
        "{log:?}"
    );
    assert_eq!(sim.stats().calls(Endpoint::OrderPlace), 1, "never resent");
}
