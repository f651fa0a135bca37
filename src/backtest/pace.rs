//! The seam a replay paces a backtest through: called between the backtest's steps, it may
//! wait (scaled real time), answer the operator and publish the engine's status. A backtest
//! paces nothing ([`Unpaced`]), so the two run the same steps and fill the same orders.

use crate::engine::SteppedEngine;

/// Hands the exchange's outcomes to the engine; `true` when it handed any.
pub(crate) type Pump<'a> = dyn FnMut(&mut SteppedEngine) -> bool + 'a;

/// What runs between the steps of a backtest (see the module documentation).
pub(crate) trait Pace {
    /// The engine is up, its strategies loaded, the clock at `first_ms` (the first event).
    fn started(&mut self, _engine: &SteppedEngine, _first_ms: i64) {}

    /// Before the clock moves on to `ms` (an event, a timer or the engine's tick), with every
    /// strategy idle. `false` ends the run there (what was played is reported).
    fn until(&mut self, _ms: i64, _engine: &mut SteppedEngine, _pump: &mut Pump<'_>) -> bool {
        true
    }

    /// Every event was played (or the run was ended): before the strategies stop.
    fn done(&mut self, _engine: &mut SteppedEngine, _pump: &mut Pump<'_>) {}
}

/// A backtest's pace: as fast as it goes.
pub(crate) struct Unpaced;

impl Pace for Unpaced {}
