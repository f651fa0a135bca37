//! The simulator's market hub: `SubscribeContractQuotes` / `Trades` / `MarketDepth` and their
//! unsubscribes, and the `GatewayQuote` (full first, then sparse), `GatewayTrade` and
//! `GatewayDepth` events it forwards from the simulator's quote stream.
//!
//! Records are written by hand into the outgoing frame instead of through `serde_json::Value`:
//! a benchmark pushes 100,000 quotes a second through here, and a `Value` per quote (a map and
//! a dozen small allocations) would cost more than everything else together.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::broadcast;

use super::events::{QuoteChange, QuoteEvent};
use super::faults::HubFaults;
use super::hub::{CallError, Hub, binding_error};
use super::shared::Shared;
use crate::gateway::hub_names::{
    DEPTH_EVENT, MARKET_TRADE_EVENT as TRADE_EVENT, QUOTE_EVENT as DEFAULT_QUOTE_EVENT,
    SUBSCRIBE_DEPTH, SUBSCRIBE_MARKET_TRADES as SUBSCRIBE_TRADES, SUBSCRIBE_QUOTES,
    UNSUBSCRIBE_DEPTH, UNSUBSCRIBE_MARKET_TRADES as UNSUBSCRIBE_TRADES, UNSUBSCRIBE_QUOTES,
};
use crate::gateway::wire::OrderSide;

/// The values a client was last sent for one contract, so the next quote carries only what
/// differs. Kept per session (not taken from `QuoteEvent::changed` alone) so a client that
/// lagged and skipped quotes still ends up with every field right.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sent {
    bid: f64,
    ask: f64,
    last: f64,
    volume: i64,
    open: f64,
    high: f64,
    low: f64,
}

impl Sent {
    fn of(q: &QuoteEvent) -> Self {
        Self {
            bid: q.bid,
            ask: q.ask,
            last: q.last,
            volume: q.volume,
            open: q.open,
            high: q.high,
            low: q.low,
        }
    }
}

/// One contract this client subscribed to, in some way.
struct Sub {
    contract_id: Arc<str>,
    /// `"CON.F.US.MNQ.Z25"`, escaped once.
    id_json: String,
    quotes: bool,
    trades: bool,
    depth: bool,
    /// What the last quote told the client; `None` until the first (full) quote.
    sent: Option<Sent>,
    /// The bid and ask the last depth update showed.
    depth_sent: Option<(f64, f64)>,
}

#[derive(Default)]
pub(crate) struct MarketSession {
    subs: Vec<Sub>,
    /// The last formatted timestamp: every quote of one simulator step shares its time.
    time_cache: Option<(DateTime<Utc>, String)>,
    /// Quote records written, summed over every client (benchmarks compare it with what a
    /// strategy saw).
    sent: Arc<AtomicU64>,
}

#[derive(Clone, Copy)]
enum Kind {
    Quotes,
    Trades,
    Depth,
}

impl MarketSession {
    /// A session that adds the quotes it writes to `sent`.
    pub(crate) fn counting(sent: Arc<AtomicU64>) -> Self {
        Self {
            sent,
            ..Self::default()
        }
    }

    fn sub_mut(&mut self, contract_id: &str) -> Option<&mut Sub> {
        self.subs
            .iter_mut()
            .find(|s| &*s.contract_id == contract_id)
    }

    fn set(&mut self, contract_id: &str, kind: Kind, on: bool) {
        if self.sub_mut(contract_id).is_none() {
            if !on {
                return;
            }
            self.subs.push(Sub {
                contract_id: contract_id.into(),
                id_json: serde_json::to_string(contract_id).expect("a string serializes"),
                quotes: false,
                trades: false,
                depth: false,
                sent: None,
                depth_sent: None,
            });
        }
        let sub = self.sub_mut(contract_id).expect("just ensured");
        match kind {
            Kind::Quotes => {
                sub.quotes = on;
                // A later subscribe starts again with a full quote.
                sub.sent = None;
            }
            Kind::Trades => sub.trades = on,
            Kind::Depth => {
                sub.depth = on;
                sub.depth_sent = None;
            }
        }
        self.subs.retain(|s| s.quotes || s.trades || s.depth);
    }

    fn time(&mut self, t: DateTime<Utc>) -> String {
        match &self.time_cache {
            Some((at, s)) if *at == t => s.clone(),
            _ => {
                // .NET's round-trip format, as the gateway sends it.
                // chrono has no 7-digit fraction; .NET ticks are 100 ns.
                let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
                let _ = write!(s, ".{:07}+00:00", t.timestamp_subsec_nanos() / 100);
                self.time_cache = Some((t, s.clone()));
                s
            }
        }
    }
}

/// `-0` and anything non-finite must never reach the JSON.
fn num(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{}", if v == 0.0 { 0.0 } else { v });
    } else {
        out.push('0');
    }
}

fn field(out: &mut String, name: &str, v: f64) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    num(out, v);
}

fn event_head(out: &mut String, target: &str, id_json: &str) {
    out.push_str("{\"type\":1,\"target\":\"");
    out.push_str(target);
    out.push_str("\",\"arguments\":[");
    out.push_str(id_json);
    out.push(',');
}

fn event_tail(out: &mut String) {
    out.push_str("]}\u{1e}");
}

/// Writes one `GatewayQuote`: every field when `prev` is `None`, else only what changed (or is
/// flagged changed), always with `symbol`, `lastUpdated` and `timestamp`.
fn write_quote(out: &mut String, id_json: &str, q: &QuoteEvent, prev: Option<Sent>, time: &str) {
    event_head(out, DEFAULT_QUOTE_EVENT, id_json);
    out.push_str("{\"symbol\":\"");
    out.push_str(&q.symbol_id);
    out.push('"');
    let full = prev.is_none();
    let p = prev.unwrap_or(Sent {
        bid: f64::NAN,
        ask: f64::NAN,
        last: f64::NAN,
        volume: -1,
        open: f64::NAN,
        high: f64::NAN,
        low: f64::NAN,
    });
    let flagged = |c: QuoteChange| q.changed.contains(c);
    if full {
        let ticker = q.symbol_id.rsplit('.').next().unwrap_or(&q.symbol_id);
        out.push_str(",\"symbolName\":\"/");
        out.push_str(ticker);
        out.push('"');
    }
    if full || q.last != p.last || flagged(QuoteChange::LAST) {
        field(out, "lastPrice", q.last);
    }
    if full || q.bid != p.bid || flagged(QuoteChange::BID) {
        field(out, "bestBid", q.bid);
    }
    if full || q.ask != p.ask || flagged(QuoteChange::ASK) {
        field(out, "bestAsk", q.ask);
    }
    // Change is measured against the session open (the simulator has no prior close).
    if (full || q.last != p.last || q.open != p.open) && q.open > 0.0 {
        let change = q.last - q.open;
        field(out, "change", change);
        field(
            out,
            "changePercent",
            (change / q.open * 10_000.0).round() / 100.0,
        );
    }
    if full || q.open != p.open {
        field(out, "open", q.open);
    }
    if full || q.high != p.high || flagged(QuoteChange::HIGH) {
        field(out, "high", q.high);
    }
    if full || q.low != p.low || flagged(QuoteChange::LOW) {
        field(out, "low", q.low);
    }
    // A contract that has not traded yet has no volume to report; 0 would read as a value.
    if q.volume > 0 && (full || q.volume != p.volume || flagged(QuoteChange::VOLUME)) {
        let _ = write!(out, ",\"volume\":{}", q.volume);
    }
    out.push_str(",\"lastUpdated\":\"");
    out.push_str(time);
    out.push_str("\",\"timestamp\":\"");
    out.push_str(time);
    out.push_str("\"}");
    event_tail(out);
}

/// The trade that printed with a quote: `[contractId, [{symbolId, price, timestamp, type,
/// volume}]]`, type 0 when a buyer lifted the ask, 1 when a seller hit the bid.
fn write_trade(out: &mut String, id_json: &str, q: &QuoteEvent, time: &str) {
    event_head(out, TRADE_EVENT, id_json);
    out.push_str("[{\"symbolId\":\"");
    out.push_str(&q.symbol_id);
    out.push('"');
    field(out, "price", q.last);
    out.push_str(",\"timestamp\":\"");
    out.push_str(time);
    let side = if q.aggressor == OrderSide::Bid { 0 } else { 1 };
    let _ = write!(out, "\",\"type\":{side},\"volume\":{}}}]", q.last_size);
    event_tail(out);
}

/// A resting size for a price level: deterministic, never 0.
fn level_size(price: f64) -> i64 {
    let key = (price * 100.0).round() as i64;
    3 + key.rem_euclid(23)
}

/// The touch as depth entries: the bid (DomType 2) and the ask (DomType 1) at the quote's
/// prices. The first update after a subscribe starts with a Reset (DomType 6).
fn write_depth(out: &mut String, id_json: &str, q: &QuoteEvent, reset: bool, time: &str) {
    event_head(out, DEPTH_EVENT, id_json);
    out.push('[');
    let entry = |out: &mut String, kind: i32, price: f64, size: i64| {
        out.push_str("{\"timestamp\":\"");
        out.push_str(time);
        let _ = write!(out, "\",\"type\":{kind}");
        field(out, "price", price);
        let _ = write!(out, ",\"volume\":{size},\"currentVolume\":{size}}}");
    };
    if reset {
        entry(out, 6, 0.0, 0);
        out.push(',');
    }
    entry(out, 2, q.bid, level_size(q.bid));
    out.push(',');
    entry(out, 1, q.ask, level_size(q.ask));
    out.push(']');
    event_tail(out);
}

impl Hub for MarketSession {
    type Item = QuoteEvent;

    fn feed(shared: &Shared) -> broadcast::Receiver<QuoteEvent> {
        shared.quotes.subscribe()
    }

    fn call(
        &mut self,
        shared: &Shared,
        faults: &HubFaults,
        target: &str,
        args: &[Value],
        after: &mut String,
    ) -> Result<(), CallError> {
        let (kind, on) = match target {
            SUBSCRIBE_QUOTES => (Kind::Quotes, true),
            UNSUBSCRIBE_QUOTES => (Kind::Quotes, false),
            SUBSCRIBE_TRADES => (Kind::Trades, true),
            UNSUBSCRIBE_TRADES => (Kind::Trades, false),
            SUBSCRIBE_DEPTH => (Kind::Depth, true),
            UNSUBSCRIBE_DEPTH => (Kind::Depth, false),
            _ => return Err(CallError::Unknown),
        };
        let contract_id = match args {
            [Value::String(id)] => id.as_str(),
            [_] => {
                return Err(binding_error(
                    target,
                    "Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
                ));
            }
            _ => {
                return Err(binding_error(
                    target,
                    &format!(
                        "Invocation provides {} argument(s) but target expects 1.",
                        args.len()
                    ),
                ));
            }
        };
        // An unknown contract is accepted and simply never quotes: what the gateway does with
        // one is not documented, and refusing would be a guess.
        self.set(contract_id, kind, on);
        if on && !faults.quotes_off && matches!(kind, Kind::Quotes | Kind::Depth) {
            // The first full quote (and the touch) at once, so a subscriber of a quiet market
            // is not left without a price.
            if let Some(q) = shared.quote_snapshot(contract_id) {
                let time = self.time(q.time);
                let sub = self.sub_mut(contract_id).expect("just subscribed");
                match kind {
                    Kind::Quotes => {
                        write_quote(after, &sub.id_json, &q, None, &time);
                        sub.sent = Some(Sent::of(&q));
                        self.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        write_depth(after, &sub.id_json, &q, true, &time);
                        sub.depth_sent = Some((q.bid, q.ask));
                    }
                }
            }
        }
        Ok(())
    }

    fn render(&mut self, q: &QuoteEvent, faults: &HubFaults, out: &mut String) {
        if faults.quotes_off {
            return;
        }
        let Some(i) = self.subs.iter().position(|s| {
            Arc::ptr_eq(&s.contract_id, &q.contract_id) || s.contract_id == q.contract_id
        }) else {
            return;
        };
        let time = self.time(q.time);
        let sub = &mut self.subs[i];
        if sub.quotes {
            write_quote(out, &sub.id_json, q, sub.sent, &time);
            sub.sent = Some(Sent::of(q));
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        if sub.trades && q.last_size > 0 {
            write_trade(out, &sub.id_json, q, &time);
        }
        if sub.depth && sub.depth_sent != Some((q.bid, q.ask)) {
            write_depth(out, &sub.id_json, q, sub.depth_sent.is_none(), &time);
            sub.depth_sent = Some((q.bid, q.ask));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn quote(bid: f64, last: f64, volume: i64, changed: QuoteChange) -> QuoteEvent {
        QuoteEvent {
            contract_id: "CON.F.US.MNQ.Z25".into(),
            symbol_id: "F.US.MNQ".into(),
            bid,
            ask: bid + 0.25,
            last,
            last_size: 2,
            aggressor: OrderSide::Bid,
            volume,
            open: 100.0,
            high: 101.0,
            low: 99.0,
            time: Utc.with_ymd_and_hms(2025, 12, 1, 15, 30, 0).unwrap(),
            changed,
        }
    }

    fn args(record: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(record.trim_end_matches('\u{1e}')).unwrap();
        v["arguments"].as_array().unwrap().clone()
    }

    #[test]
    fn first_quote_is_full_later_ones_sparse() {
        let mut s = MarketSession::default();
        s.set("CON.F.US.MNQ.Z25", Kind::Quotes, true);
        let faults = HubFaults::default();
        let mut out = String::new();
        s.render(
            &quote(100.0, 100.25, 10, QuoteChange::ALL),
            &faults,
            &mut out,
        );
        let a = args(&out);
        assert_eq!(a[0], "CON.F.US.MNQ.Z25");
        for f in [
            "symbol",
            "bestBid",
            "bestAsk",
            "lastPrice",
            "volume",
            "open",
            "high",
            "low",
            "change",
            "timestamp",
            "lastUpdated",
        ] {
            assert!(a[1].get(f).is_some(), "{f} missing in {out}");
        }
        assert_eq!(a[1]["timestamp"], "2025-12-01T15:30:00.0000000+00:00");

        out.clear();
        s.render(
            &quote(100.0, 100.25, 12, QuoteChange::VOLUME),
            &faults,
            &mut out,
        );
        let a = args(&out);
        let mut keys: Vec<&str> = a[1]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["lastUpdated", "symbol", "timestamp", "volume"],
            "{out}"
        );
    }

    #[test]
    fn trades_and_depth_follow_the_quote() {
        let mut s = MarketSession::default();
        s.set("CON.F.US.MNQ.Z25", Kind::Trades, true);
        s.set("CON.F.US.MNQ.Z25", Kind::Depth, true);
        let mut out = String::new();
        s.render(
            &quote(100.0, 100.25, 10, QuoteChange::ALL),
            &HubFaults::default(),
            &mut out,
        );
        let records: Vec<&str> = out.split_terminator('\u{1e}').collect();
        assert_eq!(records.len(), 2, "{out}");
        let trade = args(records[0]);
        assert_eq!(trade[1][0]["price"], 100.25);
        assert_eq!(trade[1][0]["type"], 0);
        let depth = args(records[1]);
        let entries = depth[1].as_array().unwrap();
        assert_eq!(entries[0]["type"], 6);
        assert_eq!(entries[1]["type"], 2);
        assert_eq!(entries[1]["price"].as_f64(), Some(100.0));
        assert_eq!(entries[2]["price"], 100.25);
    }
}
