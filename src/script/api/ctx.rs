//! What every `bot` function shares: the strategy's name and version, the engine it asks, its
//! clock and the timers of its version ([`TimerSet`], on that clock; `timers` registers the Lua
//! side), and the count of orders it placed.

use chrono::{DateTime, NaiveTime};
use mlua::{Lua, Table};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::script::broker::{BotCall, BotReply, Broker, Clock};

/// What the `bot` functions need from the host, shared with the runner.
pub struct Ctx {
    pub name: String,
    pub generation: u64,
    pub broker: Arc<dyn Broker>,
    pub clock: Arc<dyn Clock>,
    pub timers: Arc<Mutex<TimerSet>>,
    /// `symbols[1]` of the strategy, the default for `symbol=`; known only after the file ran.
    pub default_symbol: Arc<Mutex<Option<String>>>,
    /// Accepted order-placing calls of this version so far (see [`BotCall::places_orders`]).
    /// The runner reads it around each delivery to know which orders that delivery placed.
    pub placed: AtomicU64,
    /// The engine's bars, read by `bot.bars` without asking the engine loop.
    pub bars: crate::bars::BarStore,
    /// The (symbol, timeframe) pairs the version declared in `bars`; known after the file ran.
    pub bar_series: Mutex<Vec<(String, crate::bars::Timeframe)>>,
}

impl Ctx {
    /// Asks the engine, and counts an accepted order-placing call.
    pub fn ask(&self, call: BotCall) -> BotReply {
        let places = call.places_orders();
        let reply = self.broker.answer(&self.name, call);
        if places && reply.accepted() {
            self.placed.fetch_add(1, Ordering::AcqRel);
        }
        reply
    }

    /// Orders placed by this version so far; the difference of two readings is what one
    /// delivery placed (a strategy runs one delivery at a time).
    pub fn orders_placed(&self) -> u64 {
        self.placed.load(Ordering::Acquire)
    }

    pub(super) fn default_symbol(&self) -> Option<String> {
        self.default_symbol
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A pending `bot.every` / `bot.after` / `bot.at`, due at a time of the engine clock (so a
/// simulated clock drives it). The generation ties it to the version that created it.
#[derive(Debug)]
pub struct Timer {
    pub id: i64,
    /// Engine-clock milliseconds since the epoch.
    pub due_ms: i64,
    pub repeat: Repeat,
    pub generation: u64,
}

/// What a timer does after it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// `bot.after`: nothing; it is gone.
    Once,
    /// `bot.every`: again this many milliseconds later.
    EveryMs(i64),
    /// `bot.at`: again the next time the Chicago wall clock reads this.
    Daily(NaiveTime),
}

impl Timer {
    /// Moves a repeating timer that fired at `now_ms` to its next time; `false` when it is done
    /// (a one-shot, or a daily time past chrono's range).
    pub fn reschedule(&mut self, now_ms: i64) -> bool {
        match self.repeat {
            Repeat::Once => false,
            // Missed ticks are skipped instead of firing as a burst after a stall.
            Repeat::EveryMs(every) => {
                self.due_ms = self.due_ms.saturating_add(every).max(now_ms);
                true
            }
            Repeat::Daily(time) => {
                let next = DateTime::from_timestamp_millis(self.due_ms.max(now_ms))
                    .and_then(|after| crate::cme::next_daily(after, time));
                match next {
                    Some(t) => {
                        self.due_ms = t.timestamp_millis();
                        true
                    }
                    None => false,
                }
            }
        }
    }
}

/// The timers of one version; the Lua functions live in `fns`, keyed by timer id.
#[derive(Debug)]
pub struct TimerSet {
    pub(super) next_id: i64,
    pub timers: Vec<Timer>,
    pub fns: Table,
}

impl TimerSet {
    /// The earliest due time, in engine-clock milliseconds.
    pub fn next_due(&self) -> Option<i64> {
        self.timers.iter().map(|t| t.due_ms).min()
    }
}

/// Creates the timer set of a new version (its function table lives in that VM).
pub fn new_timers(lua: &Lua) -> mlua::Result<Arc<Mutex<TimerSet>>> {
    Ok(Arc::new(Mutex::new(TimerSet {
        next_id: 0,
        timers: Vec::new(),
        fns: lua.create_table()?,
    })))
}
