//! Unit tests of the market hub payloads: the sparse quote merge, lenient fields, trades and
//! depth decoding, the conversion to domain types.

use super::*;
use serde_json::json;

fn q(v: Value) -> QuoteUpdate {
    serde_json::from_value(v).unwrap()
}

fn apply<'a>(book: &'a mut QuoteBook, id: &str, update: &QuoteUpdate) -> &'a Quote {
    book.apply(id, None, update, || 7)
}

#[test]
fn sparse_updates_keep_the_last_value() {
    let mut book = QuoteBook::default();
    let mnq: Arc<str> = "MNQ".into();
    book.apply(
        "C",
        Some(&mnq),
        &q(json!({"symbol":"F.US.MNQ","lastPrice":100.25,"bestBid":100.0,"bestAsk":100.5,"volume":10})),
        || 7,
    );
    let m = apply(
        &mut book,
        "C",
        &q(
            json!({"bestBid":100.25,"bestAsk":null,"timestamp":"2025-12-01T15:30:00.2490000+00:00"}),
        ),
    );
    assert_eq!(m.bid, Some(100.25));
    assert_eq!(m.ask, Some(100.5), "null keeps the last value");
    assert_eq!(m.last, Some(100.25), "missing keeps the last value");
    assert_eq!(m.volume, Some(10));
    assert_eq!((&*m.contract, &*m.symbol), ("C", "MNQ"));
    assert_eq!(m.time_ms, 1_764_603_000_249);
    assert_eq!(
        apply(&mut book, "C", &q(json!({}))).time_ms,
        7,
        "no time: now"
    );
}

#[test]
fn fields_never_sent_stay_absent() {
    let mut book = QuoteBook::default();
    let m = apply(&mut book, "C", &q(json!({"bestBid": 5.0})));
    assert_eq!(m.bid, Some(5.0));
    assert_eq!(
        (m.ask, m.last, m.volume, m.open, m.high, m.low, m.change),
        (None, None, None, None, None, None, None)
    );
    assert_eq!(&*m.symbol, "C", "unnamed contracts are called by their id");
}

#[test]
fn a_field_of_the_wrong_json_type_reads_as_absent_and_spares_the_rest() {
    let (_, u) = decode_quote(&[
        json!("C"),
        json!({"bestBid": {"v": 1}, "bestAsk": [1, 2], "lastPrice": true, "open": null,
               "high": 7, "symbol": 3, "timestamp": 5, "lastUpdated": "2025-12-01T15:30:00Z"}),
    ])
    .unwrap();
    assert_eq!(
        (u.best_bid, u.best_ask, u.last_price, u.open),
        (None, None, None, None)
    );
    assert_eq!(u.high, Some(7.0), "an integer is a price");
    assert_eq!((u.symbol, u.timestamp), (None, None));
    assert!(u.last_updated.is_some());
    let (_, depth) = decode_items::<DepthEntry>(&[
        json!("C"),
        json!({"type": "bid", "index": 2.5, "price": 1.25}),
    ])
    .unwrap();
    assert_eq!(
        (depth[0].kind, depth[0].index, depth[0].price),
        (None, None, Some(1.25))
    );
}

#[test]
fn zero_or_garbage_prices_never_replace_a_real_one() {
    let mut book = QuoteBook::default();
    apply(&mut book, "C", &q(json!({"bestBid":5.0,"change":1.5})));
    let m = apply(
        &mut book,
        "C",
        &q(json!({"bestBid":0,"lastPrice":"x","change":0,"timestamp":"not a time"})),
    );
    assert_eq!(m.bid, Some(5.0));
    assert_eq!(m.last, None);
    assert_eq!(m.change, Some(0.0), "a zero change is real");
    assert_eq!(m.time_ms, 7);
}

#[test]
fn contracts_are_merged_separately() {
    let mut book = QuoteBook::default();
    apply(&mut book, "A", &q(json!({"bestBid":1.0})));
    apply(&mut book, "B", &q(json!({"bestAsk":2.0})));
    assert_eq!(book.get("A").unwrap().ask, None);
    assert_eq!(book.get("B").unwrap().bid, None);
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
        json!([{"symbolId":"F.US.MNQ","price":1.0,"type":0,"volume":2},{"price":2.0,"type":1,"volume":1},{"price":3.0}]),
    ];
    let (_, trades): (_, Vec<MarketTrade>) = decode_items(&arr).unwrap();
    assert_eq!(trades.len(), 3);
    assert_eq!(trades[1].side, Some(TradeLogType::Sell));
    let (c, s): (Arc<str>, Arc<str>) = ("C".into(), "MNQ".into());
    let t = trades[1].to_domain(&c, &s, 9).unwrap();
    assert_eq!(
        (t.price, t.size, t.side, t.time_ms),
        (2.0, 1.0, Some(Side::Sell), 9)
    );
    assert_eq!(trades[2].to_domain(&c, &s, 9), None, "no size: no trade");
    let one = vec![
        json!("C"),
        json!([{"type":2,"price":1.0,"volume":3,"currentVolume":14,"timestamp":"0001-01-01T00:00:00+00:00"},
               {"type":6,"price":0.0}, {"type":1,"price":1.25,"volume":2}]),
    ];
    let (_, depth): (_, Vec<DepthEntry>) = decode_items(&one).unwrap();
    assert_eq!(depth[0].kind, Some(DomType::Bid));
    assert_eq!(depth[0].current_volume, Some(14));
    let d = depth_to_domain(&depth, &c, &s, 9);
    assert_eq!(
        d.levels,
        vec![
            DepthLevel {
                side: Side::Buy,
                price: 1.0,
                size: 14.0
            },
            DepthLevel {
                side: Side::Sell,
                price: 1.25,
                size: 2.0
            },
        ]
    );
    assert_eq!(d.time_ms, 9);
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
            let update = QuoteUpdate { best_bid: *bid, ..QuoteUpdate::default() };
            let merged = apply(&mut book, "C", &update);
            if let Some(b) = bid.filter(|b| *b != 0.0) {
                expected = Some(b);
            }
            prop_assert_eq!(merged.bid, expected);
            prop_assert_ne!(merged.bid, Some(0.0));
        }
    }
}
