//! The market vocabulary every part shares: one [`Side`] for the whole domain (the wire's
//! `OrderSide` is converted only in `gateway`), the merged [`Quote`], market [`Trade`] prints and
//! [`Depth`] updates. Plain values with no wire or Lua types: the feed produces them from the
//! gateway's wire shapes, the engine routes them, strategies see them as tables.

use std::sync::Arc;

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// The name strategies see (`"buy"` / `"sell"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    /// +1 for a buy, -1 for a sell: how the side moves a signed position.
    pub fn sign(self) -> i32 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    /// The side that reduces a signed position (`None` when flat).
    pub fn closing(position: i32) -> Option<Side> {
        match position.signum() {
            1 => Some(Side::Sell),
            -1 => Some(Side::Buy),
            _ => None,
        }
    }
}

/// The latest known top of book of one contract, merged once (in the feed) from the gateway's
/// sparse updates. A field the gateway has not sent is `None` (nil in Lua), never 0.
/// `contract` and `symbol` are `Arc<str>` so that fanning one quote out to several strategies
/// clones pointers, not strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The full contract id (`CON.F.US.MNQ.Z25`).
    pub contract: Arc<str>,
    /// What strategies call the contract (`MNQ`, as they list it in `symbols`); the contract id
    /// when nobody named it.
    pub symbol: Arc<str>,
    pub bid: Option<f64>,
    pub ask: Option<f64>,
    pub last: Option<f64>,
    /// Contracts traded in the session so far.
    pub volume: Option<i64>,
    /// The session's open, high and low, and the change on the day: a handful of floats the
    /// gateway sends anyway, cheap to carry and to hand to Lua.
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub change: Option<f64>,
    /// Milliseconds since the Unix epoch of the gateway's timestamp (the arrival time when it
    /// sent none); strategies see seconds (`q.time`).
    pub time_ms: i64,
}

impl Quote {
    /// An empty quote: nothing known yet but the names.
    pub fn empty(contract: Arc<str>, symbol: Arc<str>) -> Self {
        Quote {
            contract,
            symbol,
            bid: None,
            ask: None,
            last: None,
            volume: None,
            open: None,
            high: None,
            low: None,
            change: None,
            time_ms: 0,
        }
    }

    /// The price a position is marked at: the last trade, else the mid, else `None`.
    pub fn mark(&self) -> Option<f64> {
        self.last.or(match (self.bid, self.ask) {
            (Some(b), Some(a)) => Some((b + a) / 2.0),
            _ => None,
        })
    }
}

/// One market trade print.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    pub contract: Arc<str>,
    pub symbol: Arc<str>,
    pub price: f64,
    pub size: f64,
    /// The aggressor, when the gateway says.
    pub side: Option<Side>,
    pub time_ms: i64,
}

/// One price level of a depth update.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthLevel {
    pub side: Side,
    pub price: f64,
    pub size: f64,
}

/// A depth (order book) update.
#[derive(Debug, Clone, PartialEq)]
pub struct Depth {
    pub contract: Arc<str>,
    pub symbol: Arc<str>,
    pub levels: Vec<DepthLevel>,
    pub time_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_prefers_last_then_mid_and_never_invents_a_price() {
        let mut q = Quote::empty("C".into(), "S".into());
        assert_eq!(q.mark(), None);
        q.bid = Some(10.0);
        assert_eq!(q.mark(), None, "half a book is no mid");
        q.ask = Some(11.0);
        assert_eq!(q.mark(), Some(10.5));
        q.last = Some(10.75);
        assert_eq!(q.mark(), Some(10.75));
    }
}
