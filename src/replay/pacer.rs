//! The replay's [`Pace`]: holds each step of the backtest until the scaled wall clock reaches
//! its recorded time, answering the operator (and webhooks) and republishing the engine's
//! status while it waits. It only waits: the steps, and so the fills, are the backtest's.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::shared::{Handle, Shared, Speed};
use crate::backtest::{Pace, Pump};
use crate::engine::SteppedEngine;

/// The longest sleep between two looks at the operator's commands and the stop flag.
const SLICE: Duration = Duration::from_millis(20);
/// How often the status `/status` and the dashboard read is republished.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

pub(super) struct Pacer {
    speed: Speed,
    shared: Arc<Shared>,
    /// Taken when the engine has started: the HTTP server's view of it.
    handle: Option<oneshot::Sender<Handle>>,
    /// Wall time at the first event, and that event's recorded time.
    origin: (Instant, i64),
    published: Instant,
}

impl Pacer {
    pub(super) fn new(speed: Speed, shared: Arc<Shared>, handle: oneshot::Sender<Handle>) -> Self {
        let now = Instant::now();
        Pacer {
            speed,
            shared,
            handle: Some(handle),
            origin: (now, 0),
            published: now,
        }
    }

    pub(super) fn speed(&self) -> Speed {
        self.speed
    }

    /// When `ms` (recorded time) is due on the wall clock.
    fn due(&self, ms: i64) -> Option<Instant> {
        let Speed::Times(x) = self.speed else {
            return None;
        };
        let recorded = (ms - self.origin.1).max(0) as f64 / 1000.0;
        // A speed so slow the time overflows: it is never due (the operator stops it).
        let far = || Instant::now() + Duration::from_secs(3600);
        Some(
            Duration::try_from_secs_f64(recorded / x)
                .ok()
                .and_then(|d| self.origin.0.checked_add(d))
                .unwrap_or_else(far),
        )
    }

    fn publish_if_due(&mut self, engine: &mut SteppedEngine, pump: &mut Pump<'_>) {
        if self.published.elapsed() >= PUBLISH_EVERY {
            engine.settle(pump);
            engine.publish();
            self.published = Instant::now();
        }
    }
}

impl Pace for Pacer {
    fn started(&mut self, engine: &SteppedEngine, first_ms: i64) {
        self.origin = (Instant::now(), first_ms);
        self.shared.clock_ms.store(first_ms, Ordering::Relaxed);
        if let Some(tx) = self.handle.take() {
            let _ = tx.send(Handle {
                host: engine.host(),
                status: engine.engine_status(),
                halter: crate::engine::Halter::of_stepped(engine),
                metrics: engine.metrics(),
            });
        }
    }

    fn until(&mut self, ms: i64, engine: &mut SteppedEngine, pump: &mut Pump<'_>) -> bool {
        let due = self.due(ms);
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            self.publish_if_due(engine, pump);
            let Some(wait) = due.and_then(|d| d.checked_duration_since(Instant::now())) else {
                break;
            };
            if wait.is_zero() {
                break;
            }
            std::thread::sleep(wait.min(SLICE));
            // What the operator (or a webhook) sent meanwhile, answered as live would.
            engine.settle(pump);
        }
        self.shared.clock_ms.store(ms, Ordering::Relaxed);
        true
    }

    fn done(&mut self, engine: &mut SteppedEngine, pump: &mut Pump<'_>) {
        engine.settle(pump);
        engine.publish();
    }
}
