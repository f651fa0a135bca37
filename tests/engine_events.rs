//! The engine's event broadcast on the simulator: a halt and its resume, a hub dropped and back,
//! a strategy paused by its failing handler and a save that does not load (with `file:line`)
//! each reach a subscriber as they happen.

mod common;
mod engine_support;

use std::time::Duration;

use common::{fast_options, start_sim};
use engine_support::start_engine;
use moontick::engine::EngineEvent;
use tokio::sync::broadcast::{self, error::RecvError};

/// The first event `want` accepts (others are skipped), within 15 s.
async fn next(
    rx: &mut broadcast::Receiver<EngineEvent>,
    what: &str,
    want: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if want(&e) => return e,
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => panic!("the engine stopped before {what}"),
            Err(_) => panic!("no {what} event within 15 s"),
        }
    }
}

const QUIET: &str = "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q) end\nreturn M\n";
const FAILING: &str =
    "local M = { symbols = { 'MNQ' } }\nfunction M.on_quote(q)\n  error('boom')\nend\nreturn M\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halts_the_feed_a_paused_strategy_and_a_failed_reload_are_announced() {
    let sim = start_sim(|c| c.quote_rate = 20.0).await;
    let tmp = tempfile::tempdir().unwrap();
    let run = start_engine(&sim, tmp.path(), QUIET, fast_options()).await;
    let mut rx = run.engine.events();

    run.engine.halt("test halt");
    let e = next(&mut rx, "halted", |e| {
        matches!(e, EngineEvent::Halted { .. })
    })
    .await;
    assert_eq!(
        e,
        EngineEvent::Halted {
            reason: "test halt".into()
        }
    );
    run.engine.halter().resume().unwrap();
    let e = next(&mut rx, "resumed", |e| {
        matches!(e, EngineEvent::Resumed { .. })
    })
    .await;
    assert_eq!(
        e,
        EngineEvent::Resumed {
            was: Some("test halt".into())
        }
    );

    sim.faults().drop_hub_connections();
    next(&mut rx, "market feed down", |e| {
        matches!(e, EngineEvent::FeedDown { hub: "market", .. })
    })
    .await;
    next(&mut rx, "market feed up", |e| {
        matches!(e, EngineEvent::FeedUp { hub: "market" })
    })
    .await;

    std::fs::write(run.strategies.join("probe.lua"), FAILING).unwrap();
    let e = next(&mut rx, "paused", |e| {
        matches!(
            e,
            EngineEvent::Strategy {
                state: "paused",
                ..
            }
        )
    })
    .await;
    let EngineEvent::Strategy { name, detail, .. } = e else {
        unreachable!()
    };
    assert_eq!(name, "probe");
    let detail = detail.expect("why it paused");
    assert!(
        detail.contains("probe.lua:3:") && detail.contains("boom"),
        "{detail}"
    );

    std::fs::write(run.strategies.join("probe.lua"), "local M = {\nreturn M\n").unwrap();
    let e = next(&mut rx, "reload failed", |e| {
        matches!(e, EngineEvent::ReloadFailed { .. })
    })
    .await;
    let EngineEvent::ReloadFailed { strategy, error } = e else {
        unreachable!()
    };
    assert_eq!(strategy, "probe");
    assert!(error.contains("probe.lua:"), "file:line: {error}");
    run.engine.shutdown().await;
}
