//! Market hub payloads: quotes with the sparse merge ([`QuoteBook`]), trades, depth, their
//! decoders, and the stale-quote clock. Pure: no I/O, no tasks.
//!
//! Quotes arrive sparse (only changed fields), so a quote is only meaningful merged into the last
//! one for its contract, and a missing or null field keeps its last value instead of becoming 0
//! (a 0 bid would look like a crash to a strategy).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::gateway::wire::{DomType, Timestamp, TradeLogType};

/// A `GatewayQuote` payload: every field optional, because updates carry only what changed.
/// After [`Quote::merge`] it is the latest known state of the contract.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
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
/// quote: one odd field must not cost us the bid and ask beside it.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
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

impl Quote {
    /// Overlays the fields `update` carries; a missing, null, non-finite or (for prices) zero
    /// field keeps the value it had.
    pub fn merge(&mut self, update: &Quote) {
        fn keep<T: Clone>(slot: &mut Option<T>, new: Option<T>) {
            if new.is_some() {
                *slot = new;
            }
        }
        keep(&mut self.symbol, update.symbol.clone());
        keep(&mut self.symbol_name, update.symbol_name.clone());
        keep(&mut self.last_price, real_price(update.last_price));
        keep(&mut self.best_bid, real_price(update.best_bid));
        keep(&mut self.best_ask, real_price(update.best_ask));
        keep(&mut self.open, real_price(update.open));
        keep(&mut self.high, real_price(update.high));
        keep(&mut self.low, real_price(update.low));
        // A change of 0 is real (unchanged on the day); only non-finite values are dropped.
        keep(&mut self.change, update.change.filter(|c| c.is_finite()));
        keep(
            &mut self.change_percent,
            update.change_percent.filter(|c| c.is_finite()),
        );
        keep(&mut self.volume, update.volume);
        keep(&mut self.last_updated, update.last_updated);
        keep(&mut self.timestamp, update.timestamp);
    }
}

/// The merged quote of every contract seen.
#[derive(Debug, Default, Clone)]
pub struct QuoteBook {
    quotes: HashMap<String, Quote>,
}

impl QuoteBook {
    /// Merges a sparse update into the contract's quote and returns the result.
    pub fn apply(&mut self, contract_id: &str, update: &Quote) -> &Quote {
        // get_mut first: the contract is almost always known, and this avoids allocating its id.
        if !self.quotes.contains_key(contract_id) {
            self.quotes
                .insert(contract_id.to_string(), Quote::default());
        }
        let quote = self.quotes.get_mut(contract_id).expect("inserted above");
        quote.merge(update);
        quote
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
pub fn decode_quote(args: &[Value]) -> Result<(&str, Quote), String> {
    let (id, data) = contract_args(args)?;
    if !data.is_object() {
        return Err("quote data is not an object".into());
    }
    let quote = Quote::deserialize(data).map_err(|e| e.to_string())?;
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

/// Tracks, per subscribed contract, when its last quote came, to report silence.
#[derive(Debug)]
pub struct StaleTracker {
    after: Duration,
    contracts: HashMap<String, Freshness>,
}

#[derive(Debug)]
struct Freshness {
    last: Instant,
    stale: bool,
}

impl StaleTracker {
    pub fn new(after: Duration) -> Self {
        Self {
            after,
            contracts: HashMap::new(),
        }
    }

    /// Starts the clock for a contract (from `now`, as if a quote had just come); a contract
    /// already watched keeps its clock.
    pub fn watch(&mut self, contract_id: &str, now: Instant) {
        self.contracts
            .entry(contract_id.to_string())
            .or_insert(Freshness {
                last: now,
                stale: false,
            });
    }

    pub fn unwatch(&mut self, contract_id: &str) {
        self.contracts.remove(contract_id);
    }

    /// Records a quote; `true` when the contract had been reported stale (it has resumed).
    pub fn on_quote(&mut self, contract_id: &str, now: Instant) -> bool {
        match self.contracts.get_mut(contract_id) {
            Some(f) => {
                f.last = now;
                std::mem::replace(&mut f.stale, false)
            }
            None => false,
        }
    }

    /// Contracts that became stale since the last check, with how long they have been silent.
    /// Each silence is reported once.
    pub fn check(&mut self, now: Instant) -> Vec<(String, Duration)> {
        let mut out = Vec::new();
        for (id, f) in &mut self.contracts {
            let silent = now.saturating_duration_since(f.last);
            if !f.stale && silent >= self.after {
                f.stale = true;
                out.push((id.clone(), silent));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(v: Value) -> Quote {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sparse_updates_keep_the_last_value() {
        let mut book = QuoteBook::default();
        book.apply("C", &q(json!({"symbol":"F.US.MNQ","lastPrice":100.25,"bestBid":100.0,"bestAsk":100.5,"volume":10})));
        let m = book.apply("C", &q(json!({"bestBid":100.25,"bestAsk":null,"timestamp":"2025-12-01T15:30:00.2490000+00:00"})));
        assert_eq!(m.best_bid, Some(100.25));
        assert_eq!(m.best_ask, Some(100.5), "null keeps the last value");
        assert_eq!(m.last_price, Some(100.25), "missing keeps the last value");
        assert_eq!(m.volume, Some(10));
        assert_eq!(m.symbol.as_deref(), Some("F.US.MNQ"));
        assert!(m.timestamp.is_some());
    }

    #[test]
    fn zero_or_garbage_prices_never_replace_a_real_one() {
        let mut book = QuoteBook::default();
        book.apply("C", &q(json!({"bestBid":5.0,"change":1.5})));
        let m = book.apply(
            "C",
            &q(json!({"bestBid":0,"lastPrice":"x","change":0,"timestamp":"not a time"})),
        );
        assert_eq!(m.best_bid, Some(5.0));
        assert_eq!(m.last_price, None);
        assert_eq!(m.change, Some(0.0), "a zero change is real");
        assert_eq!(m.timestamp, None);
    }

    #[test]
    fn contracts_are_merged_separately() {
        let mut book = QuoteBook::default();
        book.apply("A", &q(json!({"bestBid":1.0})));
        book.apply("B", &q(json!({"bestAsk":2.0})));
        assert_eq!(book.get("A").unwrap().best_ask, None);
        assert_eq!(book.get("B").unwrap().best_bid, None);
        assert_eq!(book.len(), 2);
    }

    #[test]
    fn volume_accepts_integral_floats() {
        assert_eq!(q(json!({"volume": 412337.0})).volume, Some(412337));
        assert_eq!(q(json!({"volume": 1.5})).volume, None);
    }

    #[test]
    fn decode_quote_needs_contract_and_object() {
        let args = vec![json!("CON.F.US.MNQ.Z25"), json!({"bestBid": 1.25})];
        let (id, quote) = decode_quote(&args).unwrap();
        assert_eq!((id, quote.best_bid), ("CON.F.US.MNQ.Z25", Some(1.25)));
        assert!(decode_quote(&[json!({"bestBid": 1})]).is_err());
        assert!(decode_quote(&[json!("C"), json!([1])]).is_err());
    }

    #[test]
    fn trades_and_depth_accept_arrays_or_one_object() {
        let arr = vec![
            json!("C"),
            json!([{"symbolId":"F.US.MNQ","price":1.0,"type":0,"volume":2},{"price":2.0,"type":1,"volume":1}]),
        ];
        let (_, trades): (_, Vec<MarketTrade>) = decode_items(&arr).unwrap();
        assert_eq!(trades.len(), 2);
        assert_eq!(trades[1].side, Some(TradeLogType::Sell));
        let one = vec![
            json!("C"),
            json!({"type":2,"price":1.0,"volume":3,"currentVolume":14,"timestamp":"0001-01-01T00:00:00+00:00"}),
        ];
        let (_, depth): (_, Vec<DepthEntry>) = decode_items(&one).unwrap();
        assert_eq!(depth[0].kind, Some(DomType::Bid));
        assert_eq!(depth[0].current_volume, Some(14));
    }

    #[test]
    fn stale_is_reported_once_per_silence_and_resumes() {
        let t0 = Instant::now();
        let mut s = StaleTracker::new(Duration::from_secs(5));
        s.watch("A", t0);
        s.watch("B", t0);
        assert!(s.check(t0 + Duration::from_secs(4)).is_empty());
        assert!(!s.on_quote("A", t0 + Duration::from_secs(4)));
        let stale = s.check(t0 + Duration::from_secs(6));
        assert_eq!(stale, vec![("B".to_string(), Duration::from_secs(6))]);
        assert!(
            s.check(t0 + Duration::from_secs(7)).is_empty(),
            "reported once"
        );
        assert!(s.on_quote("B", t0 + Duration::from_secs(8)), "resumed");
        assert_eq!(
            s.check(t0 + Duration::from_secs(9)).len(),
            1,
            "A is stale now"
        );
        s.unwatch("A");
        assert!(!s.on_quote("A", t0 + Duration::from_secs(9)));
        assert!(!s.on_quote("unknown", t0));
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever the order of sparse updates, each price is the last real one sent: a missing,
        /// null or zero field never overwrites it.
        #[test]
        fn merge_keeps_the_last_real_value(
            updates in prop::collection::vec(
                prop::option::of(prop_oneof![
                    Just(0.0),
                    (1u32..100_000).prop_map(|t| f64::from(t) * 0.25),
                ]),
                0..20,
            )
        ) {
            let mut book = QuoteBook::default();
            let mut expected = None;
            for bid in &updates {
                let update = Quote { best_bid: *bid, ..Quote::default() };
                let merged = book.apply("C", &update);
                if let Some(b) = bid.filter(|b| *b != 0.0) {
                    expected = Some(b);
                }
                prop_assert_eq!(merged.best_bid, expected);
                prop_assert_ne!(merged.best_bid, Some(0.0));
            }
        }
    }
}
