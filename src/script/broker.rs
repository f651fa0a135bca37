//! The one message between strategies and the engine: every `bot.*` call is a [`BotCall`],
//! answered by a [`BotReply`] through a [`Broker`] (the engine, or [`MemoryBroker`] for tests,
//! benchmarks and `moontick check`); plus the clock behind `bot.now()`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::events::{Quote, Side};

/// How an order is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    Market,
    Limit,
    Stop,
    Trailing,
    JoinBid,
    JoinAsk,
}

impl OrderType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "market" => OrderType::Market,
            "limit" => OrderType::Limit,
            "stop" => OrderType::Stop,
            "trailing" => OrderType::Trailing,
            "join_bid" => OrderType::JoinBid,
            "join_ask" => OrderType::JoinAsk,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "market",
            OrderType::Limit => "limit",
            OrderType::Stop => "stop",
            OrderType::Trailing => "trailing",
            OrderType::JoinBid => "join_bid",
            OrderType::JoinAsk => "join_ask",
        }
    }
}

/// What a strategy asked for. Already validated: the price field its type needs is present.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderIntent {
    /// A root (`"MNQ"`) or a full contract id, as the strategy wrote it.
    pub symbol: String,
    pub side: Side,
    pub size: i64,
    pub order_type: OrderType,
    pub price: Option<f64>,
    pub stop_price: Option<f64>,
    pub trail_price: Option<f64>,
    pub stop_loss_ticks: Option<i64>,
    pub take_profit_ticks: Option<i64>,
    pub tag: Option<String>,
}

/// A change to a working order (`bot.modify`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderChange {
    pub price: Option<f64>,
    pub stop_price: Option<f64>,
    pub size: Option<i64>,
}

/// The local handle of an accepted intent; `id` is what `bot.cancel`/`bot.modify` take.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderHandle {
    pub id: u64,
}

/// Why the engine (risk guard, halt, unknown symbol...) refused a request. The strategy receives
/// `reason` as the second return value of `bot.buy` and friends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub reason: String,
}

impl Refusal {
    pub fn new(reason: impl Into<String>) -> Self {
        Refusal {
            reason: reason.into(),
        }
    }
}

/// `bot.position(symbol)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PositionView {
    pub size: i64,
    pub avg_price: f64,
    pub open_pnl: f64,
}

/// One working order, for `bot.orders`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderView {
    pub id: u64,
    pub symbol: String,
    pub side: Side,
    pub size: i64,
    pub order_type: OrderType,
    pub price: Option<f64>,
    pub stop_price: Option<f64>,
    pub status: String,
    pub tag: Option<String>,
    /// `"entry"`, or `"stop_loss"`/`"take_profit"` for a bracket leg.
    pub kind: &'static str,
    /// For a bracket leg: the entry's id.
    pub parent: Option<u64>,
}

/// `bot.account()`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    pub id: i64,
    pub name: String,
    pub balance: f64,
    pub can_trade: bool,
}

/// `bot.contract(symbol)`: what the engine resolved a declared symbol to.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractView {
    /// The gateway's contract id (`CON.F.US.MNQ.Z26`).
    pub id: String,
    /// The name the strategy declared (`MNQ`).
    pub symbol: String,
    /// The exchange code (`MNQZ6`).
    pub name: String,
    pub description: String,
    pub tick_size: f64,
    /// Dollars per tick per contract.
    pub tick_value: f64,
}

impl ContractView {
    /// Dollars per point per contract (0 without a tick size).
    pub fn point_value(&self) -> f64 {
        if self.tick_size > 0.0 {
            self.tick_value / self.tick_size
        } else {
            0.0
        }
    }
}

/// Everything a strategy can ask of the engine, one variant per `bot.*` call.
#[derive(Debug, Clone, PartialEq)]
pub enum BotCall {
    /// `bot.buy` / `bot.sell`: answered [`BotReply::Placed`] or [`BotReply::Refused`].
    Submit(OrderIntent),
    Cancel {
        id: u64,
    },
    Modify {
        id: u64,
        change: OrderChange,
    },
    /// Closes the strategy's positions (on `symbol`, or all) and cancels its working orders.
    Flatten {
        symbol: Option<String>,
    },
    /// Closes every position and cancels every working order on the account, whoever owns it.
    FlattenAll,
    /// The kill switch: no new orders, working orders cancelled, positions flattened.
    Halt {
        reason: String,
    },
    Position {
        symbol: String,
    },
    Orders {
        symbol: Option<String>,
    },
    Quote {
        symbol: String,
    },
    Account,
    /// `bot.contract`, `bot.round_price`: answered [`BotReply::Contract`], or refused for a
    /// symbol the strategy did not declare or that is not resolved yet.
    Contract {
        symbol: String,
    },
}

impl BotCall {
    /// Whether an accepted answer to this call sends orders to the gateway (`bot.buy`/`sell`,
    /// and `bot.flatten`, which sends closing orders). The webhook relay must never answer 5xx
    /// once a handler made one of these: TradingView would resend and trade again.
    pub fn places_orders(&self) -> bool {
        matches!(
            self,
            BotCall::Submit(_) | BotCall::Flatten { .. } | BotCall::FlattenAll
        )
    }
}

/// The engine's answer to a [`BotCall`].
#[derive(Debug, Clone, PartialEq)]
pub enum BotReply {
    /// An order was accepted and is on its way to the gateway.
    Placed(OrderHandle),
    /// A cancel, modify, flatten or halt was accepted.
    Done,
    Refused(Refusal),
    Position(PositionView),
    Orders(Vec<OrderView>),
    Quote(Option<Quote>),
    Account(Option<AccountView>),
    Contract(ContractView),
}

impl BotReply {
    /// Whether the call was accepted (anything but [`BotReply::Refused`]).
    pub fn accepted(&self) -> bool {
        !matches!(self, BotReply::Refused(_))
    }
}

/// What answers the strategies' `bot.*` calls. Answers are synchronous because the risk guard
/// decides at once; only approved orders go on to the gateway, asynchronously, and their fate
/// comes back as [`Event::Order`](super::Event::Order) / [`Event::Fill`](super::Event::Fill).
///
/// `strategy` is the caller's name, so the engine can attribute orders and apply its limits.
/// A reply of the wrong kind for the call (which no answerer should give) reads as a refusal
/// or an empty view.
pub trait Broker: Send + Sync + 'static {
    fn answer(&self, strategy: &str, call: BotCall) -> BotReply;
}

/// The engine clock behind `bot.now()`; replay substitutes simulated time.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(ms: i64) -> Self {
        ManualClock(AtomicI64::new(ms))
    }
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
struct Memory {
    calls: Vec<(String, BotCall)>,
    next_id: u64,
    refuse: Option<String>,
    positions: HashMap<String, PositionView>,
    quotes: HashMap<String, Quote>,
    contracts: HashMap<String, ContractView>,
}

/// An answerer that accepts (or, when told, refuses) every order and remembers every call with
/// its strategy. Used by tests, benchmarks and `moontick check`; it never trades.
#[derive(Debug, Default)]
pub struct MemoryBroker {
    memory: Mutex<Memory>,
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on refuse every order with `reason` (`None` accepts again).
    pub fn refuse_all(&self, reason: Option<&str>) {
        self.lock().refuse = reason.map(str::to_owned);
    }

    pub fn set_position(&self, symbol: &str, position: PositionView) {
        self.lock().positions.insert(symbol.to_owned(), position);
    }

    pub fn set_quote(&self, quote: Quote) {
        self.lock().quotes.insert(quote.symbol.to_string(), quote);
    }

    /// Answers `bot.contract(view.symbol)` with `view` from now on.
    pub fn set_contract(&self, view: ContractView) {
        self.lock().contracts.insert(view.symbol.clone(), view);
    }

    /// Every call so far with the strategy that made it, oldest first.
    pub fn calls(&self) -> Vec<(String, BotCall)> {
        self.lock().calls.clone()
    }

    /// The intents submitted so far (accepted or refused), oldest first.
    pub fn submitted(&self) -> Vec<(String, OrderIntent)> {
        self.lock()
            .calls
            .iter()
            .filter_map(|(s, c)| match c {
                BotCall::Submit(intent) => Some((s.clone(), intent.clone())),
                _ => None,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Broker for MemoryBroker {
    fn answer(&self, strategy: &str, call: BotCall) -> BotReply {
        let mut m = self.lock();
        m.calls.push((strategy.to_owned(), call.clone()));
        match call {
            BotCall::Submit(_) => match &m.refuse {
                Some(reason) => BotReply::Refused(Refusal::new(reason.clone())),
                None => {
                    m.next_id += 1;
                    BotReply::Placed(OrderHandle { id: m.next_id })
                }
            },
            BotCall::Cancel { .. }
            | BotCall::Modify { .. }
            | BotCall::Flatten { .. }
            | BotCall::FlattenAll
            | BotCall::Halt { .. } => BotReply::Done,
            BotCall::Position { symbol } => {
                BotReply::Position(m.positions.get(&symbol).cloned().unwrap_or_default())
            }
            BotCall::Orders { .. } => BotReply::Orders(Vec::new()),
            BotCall::Quote { symbol } => BotReply::Quote(m.quotes.get(&symbol).cloned()),
            BotCall::Account => BotReply::Account(Some(AccountView {
                id: 1,
                name: "memory".to_owned(),
                balance: 50_000.0,
                can_trade: true,
            })),
            BotCall::Contract { symbol } => match m.contracts.get(&symbol) {
                Some(c) => BotReply::Contract(c.clone()),
                None => BotReply::Refused(Refusal::new(format!("unknown symbol {symbol}"))),
            },
        }
    }
}
