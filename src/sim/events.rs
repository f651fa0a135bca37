//! What the simulator publishes on its broadcast channels: market quotes and user (account, order,
//! position, trade) changes, so the SignalR hubs only have to forward them.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::gateway::wire::{Account, Order, OrderSide, Position, Trade};

/// Which fields of a [`QuoteEvent`] changed since the previous quote of the same contract. The
/// market hub sends sparse quotes (only changed fields), so it needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuoteChange(u8);

impl QuoteChange {
    pub const BID: Self = Self(1);
    pub const ASK: Self = Self(1 << 1);
    pub const LAST: Self = Self(1 << 2);
    pub const VOLUME: Self = Self(1 << 3);
    pub const HIGH: Self = Self(1 << 4);
    pub const LOW: Self = Self(1 << 5);
    pub const ALL: Self = Self(0b11_1111);

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for QuoteChange {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for QuoteChange {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// One quote of one contract. Cheap to clone (two `Arc<str>` and plain numbers), because a
/// benchmark pushes up to 100,000 of them a second through the channel.
#[derive(Debug, Clone)]
pub struct QuoteEvent {
    /// `CON.F.US.MNQ.Z25` form.
    pub contract_id: Arc<str>,
    /// `F.US.MNQ` form (the hub's `symbol` field).
    pub symbol_id: Arc<str>,
    pub bid: f64,
    pub ask: f64,
    pub last: f64,
    /// Size of the trade that printed at `last` with this quote (0 when none did).
    pub last_size: i64,
    /// Side of the aggressor of that trade (`Bid` = a buyer lifted the ask).
    pub aggressor: OrderSide,
    /// Session volume.
    pub volume: i64,
    /// Session open, high and low (the first quote of the run opens the session).
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub time: DateTime<Utc>,
    pub changed: QuoteChange,
}

/// A change to the user's account, in the wire model the user hub sends.
#[derive(Debug, Clone)]
pub enum UserEvent {
    Account(Account),
    Order(Order),
    /// A position that went flat is sent with `size: 0` and type `Undefined`.
    Position(Position),
    Trade(Trade),
}

impl UserEvent {
    pub fn account_id(&self) -> i32 {
        match self {
            Self::Account(a) => a.id,
            Self::Order(o) => o.account_id,
            Self::Position(p) => p.account_id,
            Self::Trade(t) => t.account_id,
        }
    }
}
