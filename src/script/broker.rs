//! The seam between strategies and the engine: order intents, the `Broker` trait every `bot.*`
//! call goes through, the clock, and an in-memory broker for tests and `moontick check`.

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

/// Everything a strategy can ask of the engine. Calls are synchronous because the risk guard
/// answers at once; only approved orders go on to the gateway, asynchronously, and their fate
/// comes back as [`Event::Order`](super::Event::Order) / [`Event::Fill`](super::Event::Fill).
///
/// `strategy` is the strategy's name, so the engine can attribute orders and apply its limits.
pub trait Broker: Send + Sync + 'static {
    /// # Errors
    /// A [`Refusal`] when the order may not be sent (limits, halt, unknown symbol...).
    fn submit(&self, strategy: &str, intent: OrderIntent) -> Result<OrderHandle, Refusal>;
    /// # Errors
    /// A [`Refusal`] when the order is unknown, not the strategy's, or no longer working.
    fn cancel(&self, strategy: &str, id: u64) -> Result<(), Refusal>;
    /// # Errors
    /// As for `cancel`, or when the change is refused by the risk guard.
    fn modify(&self, strategy: &str, id: u64, change: OrderChange) -> Result<(), Refusal>;
    /// Closes the strategy's positions (on `symbol`, or all) and cancels its working orders.
    ///
    /// # Errors
    /// A [`Refusal`] when flattening cannot be started.
    fn flatten(&self, strategy: &str, symbol: Option<&str>) -> Result<(), Refusal>;
    /// Closes every position and cancels every working order on the account, whoever owns it.
    ///
    /// # Errors
    /// A [`Refusal`] when it cannot be started.
    fn flatten_all(&self, strategy: &str) -> Result<(), Refusal>;
    /// The kill switch: no new orders, working orders cancelled, positions flattened.
    fn halt(&self, strategy: &str, reason: &str);
    fn position(&self, strategy: &str, symbol: &str) -> PositionView;
    fn orders(&self, strategy: &str, symbol: Option<&str>) -> Vec<OrderView>;
    fn quote(&self, symbol: &str) -> Option<Quote>;
    fn account(&self) -> Option<AccountView>;
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

/// Something a strategy did, as the in-memory broker recorded it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Submit {
        strategy: String,
        intent: OrderIntent,
    },
    Cancel {
        strategy: String,
        id: u64,
    },
    Modify {
        strategy: String,
        id: u64,
        change: OrderChange,
    },
    Flatten {
        strategy: String,
        symbol: Option<String>,
    },
    FlattenAll {
        strategy: String,
    },
    Halt {
        strategy: String,
        reason: String,
    },
}

#[derive(Debug, Default)]
struct Book {
    calls: Vec<Call>,
    next_id: u64,
    refuse: Option<String>,
    positions: HashMap<String, PositionView>,
    quotes: HashMap<String, Quote>,
}

/// A broker that accepts (or, when told, refuses) everything and remembers every call. Used by
/// tests, benchmarks and `moontick check`; it never trades.
#[derive(Debug, Default)]
pub struct MemoryBroker {
    book: Mutex<Book>,
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

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The intents submitted so far (accepted or refused), oldest first.
    pub fn submitted(&self) -> Vec<(String, OrderIntent)> {
        self.lock()
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Submit { strategy, intent } => Some((strategy.clone(), intent.clone())),
                _ => None,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Broker for MemoryBroker {
    fn submit(&self, strategy: &str, intent: OrderIntent) -> Result<OrderHandle, Refusal> {
        let mut b = self.lock();
        b.calls.push(Call::Submit {
            strategy: strategy.to_owned(),
            intent,
        });
        if let Some(reason) = &b.refuse {
            return Err(Refusal::new(reason.clone()));
        }
        b.next_id += 1;
        Ok(OrderHandle { id: b.next_id })
    }

    fn cancel(&self, strategy: &str, id: u64) -> Result<(), Refusal> {
        self.lock().calls.push(Call::Cancel {
            strategy: strategy.to_owned(),
            id,
        });
        Ok(())
    }

    fn modify(&self, strategy: &str, id: u64, change: OrderChange) -> Result<(), Refusal> {
        self.lock().calls.push(Call::Modify {
            strategy: strategy.to_owned(),
            id,
            change,
        });
        Ok(())
    }

    fn flatten(&self, strategy: &str, symbol: Option<&str>) -> Result<(), Refusal> {
        self.lock().calls.push(Call::Flatten {
            strategy: strategy.to_owned(),
            symbol: symbol.map(str::to_owned),
        });
        Ok(())
    }

    fn flatten_all(&self, strategy: &str) -> Result<(), Refusal> {
        self.lock().calls.push(Call::FlattenAll {
            strategy: strategy.to_owned(),
        });
        Ok(())
    }

    fn halt(&self, strategy: &str, reason: &str) {
        self.lock().calls.push(Call::Halt {
            strategy: strategy.to_owned(),
            reason: reason.to_owned(),
        });
    }

    fn position(&self, _strategy: &str, symbol: &str) -> PositionView {
        self.lock()
            .positions
            .get(symbol)
            .cloned()
            .unwrap_or_default()
    }

    fn orders(&self, _strategy: &str, _symbol: Option<&str>) -> Vec<OrderView> {
        Vec::new()
    }

    fn quote(&self, symbol: &str) -> Option<Quote> {
        self.lock().quotes.get(symbol).cloned()
    }

    fn account(&self) -> Option<AccountView> {
        Some(AccountView {
            id: 1,
            name: "memory".to_owned(),
            balance: 50_000.0,
            can_trade: true,
        })
    }
}
