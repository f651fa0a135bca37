//! The wall-clock watchdog: a callback running longer than allowed marks its strategy `stuck`
//! (which handler, since when) and has its webhooks refused until it returns; if it is still
//! running Lua a check later, it is interrupted at the next instruction hook.
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
    /// The budget's ticks when it was marked stuck: fewer later means Lua is running.
    ticks_at_stuck: Option<u32>,
    interrupted: bool,
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
    /// The watchdog interrupted it (it was running Lua).
    pub interrupted: bool,
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
            ticks_at_stuck: None,
            interrupted: false,
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
            interrupted: busy.interrupted,
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

    /// Marks the strategy stuck when its callback has run for `limit` or more, and interrupts
    /// it when, one check later, it is still running Lua. A callback waiting in Rust (a slow
    /// `bot` call) is left to finish: interrupting it as it returns would lose what the call
    /// did, such as an order's handle.
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
        let Some(b) = busy.as_mut() else {
            return;
        };
        if b.stuck_from.is_some() {
            let running_lua = matches!(
                (&b.budget, b.ticks_at_stuck),
                (Some(budget), Some(then)) if budget.ticks_left() < then
            );
            if running_lua && !b.interrupted {
                b.interrupted = true;
                if let Some(budget) = &b.budget {
                    budget.exhaust();
                }
                tracing::warn!(strategy = %name, handler = b.handler, "interrupting a stuck callback that is still running Lua");
            }
            return;
        }
        let ran = b.since.elapsed();
        if ran < limit {
            return;
        }
        b.ticks_at_stuck = b.budget.as_ref().map(Budget::ticks_left);
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
