//! Market vocabulary shared by the strategies, the engine, the risk guard and the gateway edge:
//! one [`Side`] for the whole domain (the wire's `OrderSide` is converted only in `gateway`).

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
