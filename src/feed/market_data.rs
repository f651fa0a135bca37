//! Market hub payloads: the wire shapes of quotes, trades and depth, their decoders, the one
//! quote merge ([`QuoteBook`]) into the domain [`Quote`], and the conversion of trades and depth
//! into domain values. Pure: no I/O, no tasks.
//!
//! Quotes arrive sparse (only changed fields), so a quote is only meaningful merged into the last
//! one for its contract, and a missing or null field keeps its last value instead of becoming 0
//! (a 0 bid would look like a crash to a strategy). A field never sent stays `None`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::gateway::wire::{DomType, Timestamp, TradeLogType};
use crate::market::{Depth, DepthLevel, Quote, Side, Trade};

/// A `GatewayQuote` payload as it comes off the wire: every field optional, because updates
/// carry only what changed. [`QuoteBook::apply`] merges it into the contract's [`Quote`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteUpdate {
    /// `F.US.MNQ` form.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub symbol: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub symbol_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_price: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub best_bid: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub best_ask: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub change: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub change_percent: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub open: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub high: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub low: Option<f64>,
    /// Session total.
    #[serde(
        default,
        deserialize_with = "lenient_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub volume: Option<i64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_updated: Option<Timestamp>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<Timestamp>,
}

/// A field that does not parse becomes `None` (keep the last value) instead of failing the whole
/// quote: one odd field must not cost us the bid and ask beside it. Read straight off the
/// decoder, without building a `Value` per field: the quote path decodes every field of every
/// quote.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Lenient,
{
    d.deserialize_any(LenientVisitor(std::marker::PhantomData))
}

/// The JSON scalars a field type takes; every other value reads as absent (`None`), as
/// `serde_json::from_value` would refuse it.
trait Lenient: Sized {
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_str(_: &str) -> Option<Self> {
        None
    }
}

impl Lenient for f64 {
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
}

impl Lenient for i32 {
    fn from_i64(v: i64) -> Option<Self> {
        i32::try_from(v).ok()
    }
    fn from_u64(v: u64) -> Option<Self> {
        i32::try_from(v).ok()
    }
}

impl Lenient for String {
    fn from_str(v: &str) -> Option<Self> {
        Some(v.to_owned())
    }
}

impl Lenient for Timestamp {
    fn from_str(v: &str) -> Option<Self> {
        chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| Timestamp(t.with_timezone(&chrono::Utc)))
    }
}

/// Wire enums sent as integers (`type` of trades and depth).
impl Lenient for TradeLogType {
    fn from_i64(v: i64) -> Option<Self> {
        serde_json::from_value(Value::from(v)).ok()
    }
    fn from_u64(v: u64) -> Option<Self> {
        serde_json::from_value(Value::from(v)).ok()
    }
}

impl Lenient for DomType {
    fn from_i64(v: i64) -> Option<Self> {
        serde_json::from_value(Value::from(v)).ok()
    }
    fn from_u64(v: u64) -> Option<Self> {
        serde_json::from_value(Value::from(v)).ok()
    }
}

struct LenientVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Lenient> serde::de::Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(T::from_i64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(T::from_u64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(T::from_f64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::from_str(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(None)
    }
}

/// A count sent as `412337` or `412337.0`.
fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0)
            .map(|f| f as i64)
    }))
}

/// A price that can stand for the market: finite and not 0 (no ProjectX futures contract trades
/// at 0, so a 0 is a placeholder, and taking it would show a strategy a crashed market).
fn real_price(p: Option<f64>) -> Option<f64> {
    p.filter(|p| p.is_finite() && *p != 0.0)
}

/// The merged quote of every contract seen: the only place a quote is merged.
#[derive(Debug, Default, Clone)]
pub struct QuoteBook {
    quotes: HashMap<Arc<str>, Quote>,
}

impl QuoteBook {
    /// Merges a sparse update into the contract's quote and returns the result. A missing, null,
    /// non-finite or (for prices) zero field keeps the value it had. `symbol` names the contract
    /// for strategies; a changed name replaces the old one. `now_ms` stamps an update that
    /// carries no time of its own.
    pub fn apply(
        &mut self,
        contract_id: &str,
        symbol: Option<&Arc<str>>,
        update: &QuoteUpdate,
        now_ms: impl FnOnce() -> i64,
    ) -> &Quote {
        // get_mut first: the contract is almost always known, and this avoids allocating its id.
        if !self.quotes.contains_key(contract_id) {
            let id: Arc<str> = contract_id.into();
            let name = symbol.cloned().unwrap_or_else(|| id.clone());
            self.quotes.insert(id.clone(), Quote::empty(id, name));
        }
        let q = self.quotes.get_mut(contract_id).expect("inserted above");
        if let Some(s) = symbol
            && !Arc::ptr_eq(s, &q.symbol)
        {
            q.symbol = s.clone();
        }
        fn keep<T>(slot: &mut Option<T>, new: Option<T>) {
            if new.is_some() {
                *slot = new;
            }
        }
        keep(&mut q.last, real_price(update.last_price));
        keep(&mut q.bid, real_price(update.best_bid));
        keep(&mut q.ask, real_price(update.best_ask));
        keep(&mut q.open, real_price(update.open));
        keep(&mut q.high, real_price(update.high));
        keep(&mut q.low, real_price(update.low));
        // A change of 0 is real (unchanged on the day); only non-finite values are dropped.
        keep(&mut q.change, update.change.filter(|c| c.is_finite()));
        keep(&mut q.volume, update.volume);
        q.time_ms = update
            .timestamp
            .or(update.last_updated)
            .map_or_else(now_ms, |t| t.0.timestamp_millis());
        q
    }

    pub fn get(&self, contract_id: &str) -> Option<&Quote> {
        self.quotes.get(contract_id)
    }

    pub fn remove(&mut self, contract_id: &str) -> Option<Quote> {
        self.quotes.remove(contract_id)
    }

    pub fn len(&self) -> usize {
        self.quotes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.quotes.is_empty()
    }
}

/// One market trade from `GatewayTrade`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketTrade {
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub symbol_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<Timestamp>,
    /// The aggressor: buy or sell.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub side: Option<TradeLogType>,
    #[serde(
        default,
        deserialize_with = "lenient_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub volume: Option<i64>,
}

/// One depth (DOM) update from `GatewayDepth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepthEntry {
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<Timestamp>,
    #[serde(
        rename = "type",
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<DomType>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<f64>,
    /// Incremental change at this price (per community clients; semantics not documented).
    #[serde(
        default,
        deserialize_with = "lenient_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub volume: Option<i64>,
    /// Resting size after the update.
    #[serde(
        default,
        deserialize_with = "lenient_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub current_volume: Option<i64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub index: Option<i32>,
}

/// Splits `[contractId, data]`.
///
/// # Errors
/// A message naming what is missing, when the arguments have another shape.
pub fn contract_args(args: &[Value]) -> Result<(&str, &Value), String> {
    match args {
        [Value::String(id), data, ..] => Ok((id, data)),
        _ => Err(format!(
            "expected [contractId, data], got {} argument(s)",
            args.len()
        )),
    }
}

/// Decodes a `GatewayQuote` `[contractId, quote]`.
///
/// # Errors
/// When the arguments are not `[string, object]`.
pub fn decode_quote(args: &[Value]) -> Result<(&str, QuoteUpdate), String> {
    let (id, data) = contract_args(args)?;
    if !data.is_object() {
        return Err("quote data is not an object".into());
    }
    let quote = QuoteUpdate::deserialize(data).map_err(|e| e.to_string())?;
    Ok((id, quote))
}

/// Decodes `[contractId, [item, ...]]`, also accepting a single object for the list.
///
/// # Errors
/// When the arguments are not `[string, object|array]` or an item does not decode.
pub fn decode_items<T: serde::de::DeserializeOwned>(
    args: &[Value],
) -> Result<(&str, Vec<T>), String> {
    let (id, data) = contract_args(args)?;
    let items = match data {
        Value::Array(items) => items
            .iter()
            .map(T::deserialize)
            .collect::<Result<Vec<_>, _>>(),
        Value::Object(_) => T::deserialize(data).map(|t| vec![t]),
        Value::Null => Ok(Vec::new()),
        _ => return Err("data is neither an object nor an array".into()),
    };
    Ok((id, items.map_err(|e| e.to_string())?))
}

impl MarketTrade {
    /// The domain trade, or `None` when the print lacks a price or a size (never a made-up 0).
    pub fn to_domain(&self, contract: &Arc<str>, symbol: &Arc<str>, now_ms: i64) -> Option<Trade> {
        Some(Trade {
            contract: contract.clone(),
            symbol: symbol.clone(),
            price: real_price(self.price)?,
            size: self.volume? as f64,
            side: self.side.and_then(|s| match s {
                TradeLogType::Buy => Some(Side::Buy),
                TradeLogType::Sell => Some(Side::Sell),
                #[allow(unreachable_patterns)]
                _ => None,
            }),
            time_ms: self.timestamp.map_or(now_ms, |t| t.0.timestamp_millis()),
        })
    }
}

/// The domain depth update: bid and ask levels with their resting size; entries that are not a
/// price level (trades, resets, session highs and lows) or lack a price are left out.
pub fn depth_to_domain(
    entries: &[DepthEntry],
    contract: &Arc<str>,
    symbol: &Arc<str>,
    now_ms: i64,
) -> Depth {
    let levels = entries
        .iter()
        .filter_map(|e| {
            let side = match e.kind? {
                DomType::Bid | DomType::BestBid | DomType::NewBestBid => Side::Buy,
                DomType::Ask | DomType::BestAsk | DomType::NewBestAsk => Side::Sell,
                _ => return None,
            };
            Some(DepthLevel {
                side,
                price: real_price(e.price)?,
                size: e.current_volume.or(e.volume)? as f64,
            })
        })
        .collect();
    let time_ms = entries
        .iter()
        .filter_map(|e| e.timestamp)
        .map(|t| t.0.timestamp_millis())
        .find(|ms| *ms > 0)
        .unwrap_or(now_ms);
    Depth {
        contract: contract.clone(),
        symbol: symbol.clone(),
        levels,
        time_ms,
    }
}

#[cfg(test)]
#[path = "market_data_tests.rs"]
mod tests;
