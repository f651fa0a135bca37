//! The backtest's exchange: the simulator's matching engine (pure state) in process, seeing
//! the recorded quotes, answering the engine's order calls at once on the simulated clock.
//! Its outcomes (REST results and user-hub events) wait in an outbox the driver hands back to
//! the engine, so nothing is re-entered while the engine calls it.

use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::engine::{EngineInput, Exchange, Mutation};
use crate::gateway::requests::{ModifyOrderRequest, OrderTerms, PlaceOrderRequest};
use crate::gateway::wire::{Account, Order, Position, Trade};
use crate::gateway::{Endpoint, GatewayError};
use crate::market::Quote;
use crate::risk::RiskApproved;
use crate::sim::events::UserEvent;
use crate::sim::market::{ContractSpec, MarketView, Touch};
use crate::sim::orders::{Engine, Refusal};

/// The one account a backtest trades.
pub(crate) const ACCOUNT_ID: i32 = 1;

/// What the exchange has for the engine: a call's outcome, or a user-hub event.
pub(crate) enum Outcome {
    Input(EngineInput),
    User(UserEvent),
}

/// The recorded touch of each contract, as the matching engine sees it: widened by the
/// slippage on both sides, so a market order (or a stop once triggered) pays it.
struct Touches {
    specs: Vec<ContractSpec>,
    touch: FxHashMap<Arc<str>, Touch>,
    slippage_ticks: f64,
}

impl MarketView for Touches {
    fn spec(&self, contract_id: &str) -> Option<&ContractSpec> {
        self.specs.iter().find(|s| &*s.id == contract_id)
    }

    fn touch(&self, contract_id: &str) -> Option<Touch> {
        let t = *self.touch.get(contract_id)?;
        let slip = self.slippage_ticks * self.spec(contract_id)?.tick_size;
        Some(Touch {
            bid: t.bid - slip,
            ask: t.ask + slip,
            last: t.last,
        })
    }
}

struct Inner {
    engine: Engine,
    market: Touches,
    /// The simulated clock, in ms: made a `DateTime` only when an order needs it, not per event.
    now_ms: i64,
    out: VecDeque<Outcome>,
    events: Vec<UserEvent>,
    /// Realised P&L minus fees so far, kept as fills happen (marked after every event).
    realised: f64,
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms).unwrap_or_default()
    }

    /// Moves what the matching engine reported into the outbox.
    fn flush(&mut self) {
        let events = std::mem::take(&mut self.events);
        for e in &events {
            if let UserEvent::Trade(t) = e {
                self.realised += t.profit_and_loss.unwrap_or(0.0) - t.fees;
            }
        }
        self.out.extend(events.into_iter().map(Outcome::User));
    }
}

/// The simulated exchange (see the module documentation).
pub(crate) struct SimExchange {
    inner: Mutex<Inner>,
}

impl SimExchange {
    /// An exchange for `specs` (commission already in their `fee_per_contract`).
    pub fn new(specs: Vec<ContractSpec>, slippage_ticks: u32, balance: f64) -> Self {
        let account = Account {
            id: ACCOUNT_ID,
            name: "BACKTEST".into(),
            balance,
            can_trade: true,
            is_visible: true,
            simulated: true,
        };
        SimExchange {
            inner: Mutex::new(Inner {
                engine: Engine::new(vec![account], true),
                market: Touches {
                    specs,
                    touch: FxHashMap::default(),
                    slippage_ticks: f64::from(slippage_ticks),
                },
                now_ms: 0,
                out: VecDeque::new(),
                events: Vec::new(),
                realised: 0.0,
            }),
        }
    }

    pub fn account(&self) -> Account {
        self.lock().engine.accounts()[0].clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_now(&self, now_ms: i64) {
        self.lock().now_ms = now_ms;
    }

    /// A recorded quote: the touch moves, and working orders it makes marketable fill.
    pub fn quote(&self, q: &Quote) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(old) = inner.market.touch.get(&q.contract).copied().or_else(|| {
            Some(Touch {
                bid: q.bid?,
                ask: q.ask?,
                last: q.last.or(q.bid)?,
            })
        }) else {
            return;
        };
        let new = Touch {
            bid: q.bid.unwrap_or(old.bid),
            ask: q.ask.unwrap_or(old.ask),
            last: q.last.unwrap_or(old.last),
        };
        match inner.market.touch.get_mut(&q.contract) {
            Some(t) => *t = new,
            None => {
                inner.market.touch.insert(q.contract.clone(), new);
            }
        }
        if inner.engine.has_working() {
            let now = inner.now();
            inner
                .engine
                .on_quote(&q.contract, &inner.market, now, &mut inner.events);
        }
        inner.flush();
    }

    /// The next outcome for the engine, in the order they happened.
    pub fn pop(&self) -> Option<Outcome> {
        self.lock().out.pop_front()
    }

    /// Every fill so far, in order.
    pub fn trades(&self) -> Vec<Trade> {
        self.lock().engine.trades(ACCOUNT_ID).cloned().collect()
    }

    /// Net equity (realised P&L minus fees, plus open P&L) and whether a position is open.
    pub fn equity(&self) -> (f64, bool) {
        let inner = self.lock();
        let positions = inner.engine.positions(ACCOUNT_ID);
        (
            inner.realised + open_pnl(&inner, &positions),
            !positions.is_empty(),
        )
    }

    /// Open P&L of the open positions at the recorded mid (without slippage).
    pub fn open_pnl(&self) -> f64 {
        let inner = self.lock();
        open_pnl(&inner, &inner.engine.positions(ACCOUNT_ID))
    }

    fn outcome(&self, f: impl FnOnce(&mut Inner) -> EngineInput) {
        let mut inner = self.lock();
        let input = f(&mut inner);
        // The REST answer first, then what the hub reports, as a caller usually sees them.
        inner.out.push_back(Outcome::Input(input));
        inner.flush();
    }
}

/// Open P&L of `positions` at the recorded mid (without slippage).
fn open_pnl(inner: &Inner, positions: &[Position]) -> f64 {
    positions
        .iter()
        .filter_map(|p| {
            let spec = inner.market.spec(&p.contract_id)?;
            let t = inner.market.touch.get(p.contract_id.as_str())?;
            let mid = (t.bid + t.ask) / 2.0;
            let points = (mid - p.average_price) * f64::from(p.net_size());
            Some(points / spec.tick_size * spec.tick_value)
        })
        .sum()
}

fn rejected(endpoint: Endpoint, r: Refusal) -> GatewayError {
    GatewayError::Rejected {
        endpoint,
        code: endpoint.error_code(r.name).unwrap_or(-1),
        code_name: r.name,
        message: r.message,
        order_id: r.order_id,
    }
}

fn mutated(what: Mutation, endpoint: Endpoint, r: Result<(), Refusal>) -> EngineInput {
    EngineInput::Mutated {
        what,
        result: r.map_err(|e| rejected(endpoint, e)),
    }
}

impl Exchange for SimExchange {
    fn place(&self, _: &mpsc::Sender<EngineInput>, local_id: u64, order: RiskApproved<OrderTerms>) {
        let req = PlaceOrderRequest::approved(&order);
        self.outcome(|i| {
            let result = i.engine.place(&req, &i.market, i.now(), &mut i.events);
            EngineInput::Placed {
                local_id,
                result: result.map_err(|e| rejected(Endpoint::OrderPlace, e)),
            }
        });
    }

    fn cancel(&self, _: &mpsc::Sender<EngineInput>, account_id: i32, broker_id: i64) {
        self.outcome(|i| {
            let r = i
                .engine
                .cancel(account_id, broker_id, i.now(), &mut i.events);
            mutated(Mutation::Cancel(broker_id), Endpoint::OrderCancel, r)
        });
    }

    fn modify(&self, _: &mpsc::Sender<EngineInput>, change: RiskApproved<ModifyOrderRequest>) {
        let req: &ModifyOrderRequest = change.payload();
        self.outcome(|i| {
            let r = i.engine.modify(req, &i.market, i.now(), &mut i.events);
            mutated(Mutation::Modify(req.order_id), Endpoint::OrderModify, r)
        });
    }

    fn close(&self, _: &mpsc::Sender<EngineInput>, account_id: i32, contract_id: String) {
        self.outcome(|i| {
            let r = i.engine.close(
                account_id,
                &contract_id,
                None,
                &i.market,
                i.now(),
                &mut i.events,
            );
            mutated(
                Mutation::Close(contract_id.clone()),
                Endpoint::PositionClose,
                r,
            )
        });
    }

    fn snapshot(&self, _: &mpsc::Sender<EngineInput>, account_id: i32, _since: DateTime<Utc>) {
        self.outcome(|i| {
            let orders: Vec<Order> = i.engine.orders(account_id).cloned().collect();
            let positions: Vec<Position> = i.engine.positions(account_id);
            let trades: Vec<Trade> = i.engine.trades(account_id).cloned().collect();
            EngineInput::Snapshot {
                orders,
                positions,
                trades,
            }
        });
    }
}
