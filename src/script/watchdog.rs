//! The wall-clock watchdog: a callback running longer than allowed marks its strategy `stuck`
//! (which handler, since when), interrupts it at the next instruction hook if it is still in
//! Lua, and has its webhooks refused until it returns.
//!
//! The instruction budget stops runaway Lua, but not time spent where the hook does not run: a
//! slow `bot` call, a long C function, Lua run with the hook off. Those are seen here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::mailbox::Mailbox;
use super::sandbox::Budget;
use super::status::{RunState, Stall, StrategyStatus};

/// The callback a strategy's thread is in.
struct Busy {
    handler: &'static str,
    since: Instant,
    budget: Option<Budget>,
    /// The state before the watchdog marked it stuck; `None` while it is not.
    stuck_from: Option<RunState>,
}

/// What one strategy's thread is doing, as the watchdog sees it.
#[derive(Default)]
pub struct Watched {
    busy: Mutex<Option<Busy>>,
}

/// A callback that was stuck and has returned.
pub struct Recovered {
    pub handler: &'static str,
    pub ran: Duration,
}

impl Watched {
    fn lock(&self) -> MutexGuard<'_, Option<Busy>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A callback starts; `budget` is the VM's, for the interrupt.
    pub fn begin(&self, handler: &'static str, budget: Option<&Budget>) {
        *self.lock() = Some(Busy {
            handler,
            since: Instant::now(),
            budget: budget.cloned(),
            stuck_from: None,
        });
    }

    /// The callback returned. When the watchdog had marked it stuck, the strategy's state and
    /// webhooks are restored and the stall is returned.
    pub fn end(&self, status: &Mutex<StrategyStatus>, mailbox: &Mailbox) -> Option<Recovered> {
        let busy = self.lock().take()?;
        let prev = busy.stuck_from?;
        mailbox.refuse_webhooks(None);
        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
        if s.state == RunState::Stuck {
            s.state = prev;
        }
        s.stalled = None;
        Some(Recovered {
            handler: busy.handler,
            ran: busy.since.elapsed(),
        })
    }

    /// Forgets the callback without restoring anything (the thread panicked).
    pub fn clear(&self) {
        self.lock().take();
    }

    /// The stall, while the watchdog has it marked stuck.
    pub fn stalled(&self) -> Option<Stall> {
        let busy = self.lock();
        let b = busy.as_ref().filter(|b| b.stuck_from.is_some())?;
        Some(Stall {
            handler: b.handler,
            for_ms: b.since.elapsed().as_millis() as u64,
        })
    }

    /// Marks the strategy stuck when its callback has run for `limit` or more.
    ///
    /// Everything happens under the busy lock, which [`Watched::end`] takes first: so the
    /// interrupt can never reach the next callback, and the strategy is never left marked stuck
    /// after its callback returned.
    pub fn check(
        &self,
        name: &str,
        limit: Duration,
        status: &Mutex<StrategyStatus>,
        mailbox: &Mailbox,
    ) {
        let mut busy = self.lock();
        let Some(b) = busy.as_mut().filter(|b| b.stuck_from.is_none()) else {
            return;
        };
        let ran = b.since.elapsed();
        if ran < limit {
            return;
        }
        if let Some(budget) = &b.budget {
            budget.exhaust();
        }
        let prev = {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            let prev = s.state;
            s.state = RunState::Stuck;
            s.stalled = Some(Stall {
                handler: b.handler,
                for_ms: ran.as_millis() as u64,
            });
            prev
        };
        b.stuck_from = Some(prev);
        mailbox.refuse_webhooks(Some(format!(
            "strategy is stuck: {} has been running for over {:.1} s",
            b.handler,
            limit.as_secs_f64()
        )));
        tracing::warn!(
            strategy = %name,
            handler = b.handler,
            running_ms = ran.as_millis() as u64,
            "strategy is STUCK: a callback is running past the watchdog limit; its webhooks are refused until it returns"
        );
    }
}

/// Runs `check` every `period` on its own thread until `stop` is set or `check` says the host
/// is gone.
pub fn spawn(
    period: Duration,
    stop: Arc<AtomicBool>,
    mut check: impl FnMut() -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("strategy-watchdog".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) && check() {
                std::thread::sleep(period);
            }
        })
}
