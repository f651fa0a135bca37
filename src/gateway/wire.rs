//! ProjectX wire model: the enums, records and response envelope of the REST API (gateway §2–3).
//!
//! Decoding is tolerant, because a trading program must not stop on a field the gateway added or
//! nulled: unknown fields are ignored, an unknown enum value decodes as `Other(n)`, missing or null
//! lists and strings decode as empty. Encoding omits `None` fields (the hubs omit nulls too).

use std::fmt;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines an integer-coded wire enum that keeps unknown values instead of failing.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A code this build does not know, kept as sent.
            Other(i32),
        }

        impl $name {
            pub fn code(self) -> i32 {
                match self { $(Self::$variant => $code,)+ Self::Other(c) => c }
            }

            pub fn from_code(code: i32) -> Self {
                match code { $($code => Self::$variant,)+ c => Self::Other(c) }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i32(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                i32::deserialize(d).map(Self::from_code)
            }
        }
    };
}

wire_enum!(
    /// Which side of the book an order or fill is on.
    OrderSide { Bid = 0, Ask = 1 }
);
wire_enum!(OrderType {
    Unknown = 0,
    Limit = 1,
    Market = 2,
    StopLimit = 3,
    Stop = 4,
    TrailingStop = 5,
    JoinBid = 6,
    JoinAsk = 7,
});
wire_enum!(OrderStatus {
    None = 0,
    Open = 1,
    Filled = 2,
    Cancelled = 3,
    Expired = 4,
    Rejected = 5,
    Pending = 6,
    PendingCancellation = 7,
    /// A bracket child waiting for its entry to fill.
    Suspended = 8,
});
wire_enum!(
    /// A position's direction; its size is always positive.
    PositionType { Undefined = 0, Long = 1, Short = 2 }
);
wire_enum!(BarUnit {
    Unspecified = 0,
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
    Week = 5,
    Month = 6,
    Tick = 7,
});

wire_enum!(
    /// What a market-depth (DOM) update describes (gateway §3).
    DomType {
        Unknown = 0,
        Ask = 1,
        Bid = 2,
        BestAsk = 3,
        BestBid = 4,
        Trade = 5,
        Reset = 6,
        Low = 7,
        High = 8,
        NewBestBid = 9,
        NewBestAsk = 10,
        Fill = 11,
    }
);
wire_enum!(
    /// The aggressor side of a market trade.
    TradeLogType { Buy = 0, Sell = 1 }
);

impl OrderStatus {
    /// Statuses after which an order can no longer fill.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Cancelled | Self::Expired | Self::Rejected
        )
    }
}

/// The wire edge of the domain's side: a buy is a bid, a sell an ask.
impl From<crate::market::Side> for OrderSide {
    fn from(side: crate::market::Side) -> Self {
        match side {
            crate::market::Side::Buy => OrderSide::Bid,
            crate::market::Side::Sell => OrderSide::Ask,
        }
    }
}

/// And back: an ask is a sell, anything else a buy (an unknown code reads as the engine always
/// read it).
impl From<OrderSide> for crate::market::Side {
    fn from(side: OrderSide) -> Self {
        match side {
            OrderSide::Ask => crate::market::Side::Sell,
            _ => crate::market::Side::Buy,
        }
    }
}

impl OrderSide {
    pub fn opposite(self) -> Self {
        match self {
            Self::Bid => Self::Ask,
            Self::Ask => Self::Bid,
            Self::Other(c) => Self::Other(c),
        }
    }

    /// +1 for a buy, -1 for a sell: the sign of the position change a fill makes.
    pub fn sign(self) -> i32 {
        if self == Self::Ask { -1 } else { 1 }
    }
}

/// An instant on the wire. Reads any ISO-8601 offset and any number of fractional digits (REST
/// sends 6, the hubs 7, requests may use `Z`); writes `+00:00` with microseconds, as REST does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, false))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::<FixedOffset>::parse_from_rfc3339(&text)
            .map(|t| Self(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format!("bad timestamp {text:?}: {e}")))
    }
}

/// Deserializes `null` as the type's default, for lists and strings the gateway may null out.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The envelope around every REST response: business failures are HTTP 200 with
/// `success: false` and a per-endpoint `errorCode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    #[serde(flatten)]
    pub payload: T,
    pub success: bool,
    #[serde(default)]
    pub error_code: i32,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl<T> Envelope<T> {
    pub fn ok(payload: T) -> Self {
        Self {
            payload,
            success: true,
            error_code: 0,
            error_message: None,
        }
    }

    pub fn error(payload: T, code: i32, message: Option<String>) -> Self {
        Self {
            payload,
            success: false,
            error_code: code,
            error_message: message,
        }
    }
}

/// Decodes a response body, naming what failed to decode without echoing the body (it may hold
/// a token).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Account {
    pub id: i32,
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub balance: f64,
    pub can_trade: bool,
    pub is_visible: bool,
    pub simulated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Contract {
    #[serde(deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub description: String,
    pub tick_size: f64,
    pub tick_value: f64,
    pub active_contract: bool,
    /// `F.US.<root>`; its root is what a ticker like `MNQ` resolves against.
    #[serde(deserialize_with = "null_as_default")]
    pub symbol_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub t: Timestamp,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    #[serde(default)]
    pub v: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: i64,
    pub account_id: i32,
    pub contract_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol_id: Option<String>,
    pub creation_timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_timestamp: Option<Timestamp>,
    pub status: OrderStatus,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub side: OrderSide,
    pub size: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    #[serde(default)]
    pub fill_volume: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_distance: Option<i32>,
    /// On read-back, the trail distance in price units (not the absolute level sent on place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_order_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_order_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub id: i32,
    pub account_id: i32,
    pub contract_id: String,
    pub creation_timestamp: Timestamp,
    #[serde(rename = "type")]
    pub position_type: PositionType,
    pub size: i32,
    pub average_price: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_display_name: Option<String>,
}

impl Position {
    /// Signed size: positive long, negative short.
    pub fn net_size(&self) -> i32 {
        match self.position_type {
            PositionType::Short => -self.size,
            PositionType::Long => self.size,
            _ => 0,
        }
    }
}

/// One fill (a half-turn). `profit_and_loss` is `None` on an opening half-turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trade {
    pub id: i64,
    pub account_id: i32,
    pub contract_id: String,
    pub creation_timestamp: Timestamp,
    pub price: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profit_and_loss: Option<f64>,
    #[serde(default)]
    pub fees: f64,
    pub side: OrderSide,
    pub size: i32,
    #[serde(default)]
    pub voided: bool,
    pub order_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commissions: Option<f64>,
}
