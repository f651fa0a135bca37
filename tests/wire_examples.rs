//! The documented ProjectX examples (gateway §2–3, §5 payloads) decode into the wire model and
//! encode back to the same JSON.

use moontick::gateway::requests::*;
use moontick::gateway::wire::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Decodes `text`, re-encodes it, and checks the result equals the input (ignoring `null`
/// fields, which the model omits).
fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> T {
    let value: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let back = serde_json::to_value(&value).unwrap();
    assert_eq!(
        strip_nulls(back),
        strip_nulls(serde_json::from_str(text).unwrap()),
        "{text}"
    );
    value
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        // Numbers compare as f64 so that `6335.25` and `6335.250000000` are equal.
        Value::Number(n) => json!(n.as_f64().unwrap()),
        // Timestamps compare as instants: `15:00:00+00:00` and `15:00:00.000000+00:00` agree.
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(&s) {
            Ok(t) => json!(t.timestamp_nanos_opt()),
            Err(_) => Value::String(s),
        },
        other => other,
    }
}

#[test]
fn login_and_validate_envelopes() {
    let ok: Envelope<LoginPayload> = round_trip(
        r#"{"token":"eyJhbGciOi.x.y","success":true,"errorCode":0,"errorMessage":null}"#,
    );
    assert!(ok.success);
    assert_eq!(ok.payload.token.unwrap().expose(), "eyJhbGciOi.x.y");
    let bad: Envelope<LoginPayload> =
        round_trip(r#"{"token":null,"success":false,"errorCode":3,"errorMessage":null}"#);
    assert!(!bad.success && bad.error_code == 3 && bad.payload.token.is_none());
    let v: Envelope<ValidatePayload> = round_trip(
        r#"{"success":true,"errorCode":0,"errorMessage":null,"newToken":"eyJhbGciOi.a.b"}"#,
    );
    assert_eq!(v.payload.new_token.unwrap().expose(), "eyJhbGciOi.a.b");
    let req = round_trip::<LoginKeyRequest>(r#"{"userName":"trader","apiKey":"k-123"}"#);
    assert!(!format!("{req:?}").contains("k-123"), "Debug shows the key");
}

#[test]
fn documented_order_example() {
    let order: Order = round_trip(
        r#"{"id":36598,"accountId":704,"contractId":"CON.F.US.EP.U25","symbolId":"F.US.EP","creationTimestamp":"2025-07-18T21:00:01.268009+00:00","updateTimestamp":"2025-07-18T21:00:01.268009+00:00","status":2,"type":2,"side":0,"size":1,"limitPrice":null,"stopPrice":null,"fillVolume":1,"filledPrice":6335.25,"customTag":null}"#,
    );
    assert_eq!(order.status, OrderStatus::Filled);
    assert_eq!(order.order_type, OrderType::Market);
    assert_eq!(order.side, OrderSide::Bid);
    assert_eq!(order.filled_price, Some(6335.25));
    assert_eq!(
        order.creation_timestamp.to_string(),
        "2025-07-18T21:00:01.268009+00:00"
    );
}

#[test]
fn hub_payloads_decode_with_seven_fraction_digits_and_extra_fields() {
    let order: Order = serde_json::from_str(
        r#"{"id":2934939764,"accountId":123,"contractId":"CON.F.US.MNQ.Z25","symbolId":"F.US.MNQ","creationTimestamp":"2025-12-01T15:30:03.4962794+00:00","updateTimestamp":"2025-12-01T15:30:03.4962794+00:00","status":8,"type":4,"side":1,"size":1,"fillVolume":0,"customTag":"s1-0001-SL","parentOrderId":2934939763,"trailDistance":101,"someFutureField":{"x":1}}"#,
    )
    .unwrap();
    assert_eq!(order.status, OrderStatus::Suspended);
    assert_eq!(order.parent_order_id, Some(2934939763));
    let position: Position = round_trip(
        r#"{"id":6124,"accountId":123,"contractId":"CON.F.US.MNQ.Z25","creationTimestamp":"2025-12-01T15:30:03.51+00:00","type":1,"size":1,"averagePrice":25513.0,"contractDisplayName":"MNQZ25"}"#,
    );
    assert_eq!(position.net_size(), 1);
    let trade: Trade = round_trip(
        r#"{"id":8604,"accountId":123,"contractId":"CON.F.US.MNQ.Z25","creationTimestamp":"2025-12-01T15:30:03.5+00:00","price":25513.0,"fees":0.37,"side":0,"size":1,"voided":false,"orderId":2934939764}"#,
    );
    assert_eq!(
        trade.profit_and_loss, None,
        "omitted P&L means an opening half-turn"
    );
    let account: Account = round_trip(
        r#"{"id":123,"name":"50KTC-V2-123-456","balance":50210.5,"canTrade":true,"isVisible":true,"simulated":true}"#,
    );
    assert!(account.can_trade);
}

#[test]
fn unknown_enum_values_are_kept_not_fatal() {
    let order: Order = serde_json::from_str(
        r#"{"id":1,"accountId":1,"contractId":"C","creationTimestamp":"2025-01-01T00:00:00Z","status":42,"type":9,"side":0,"size":1}"#,
    )
    .unwrap();
    assert_eq!(order.status, OrderStatus::Other(42));
    assert_eq!(order.order_type, OrderType::Other(9));
    assert_eq!(serde_json::to_value(order.status).unwrap(), json!(42));
}

#[test]
fn bars_request_and_reply() {
    let req: RetrieveBarsRequest = round_trip(
        r#"{"contractId":"CON.F.US.MNQ.Z25","live":false,"startTime":"2025-12-01T00:00:00+00:00","endTime":"2025-12-01T15:00:00+00:00","unit":2,"unitNumber":5,"limit":2,"includePartialBar":false}"#,
    );
    assert_eq!(req.unit, BarUnit::Minute);
    // Requests may use `Z`; it reads as the same instant.
    let z: RetrieveBarsRequest = serde_json::from_str(
        r#"{"contractId":"X","live":false,"startTime":"2025-12-01T00:00:00Z","endTime":"2025-12-01T15:00:00Z","unit":2,"unitNumber":5,"limit":2,"includePartialBar":false}"#,
    )
    .unwrap();
    assert_eq!(z.start_time, req.start_time);
    let bars: Envelope<BarsPayload> = round_trip(
        r#"{"bars":[{"t":"2025-12-01T14:55:00+00:00","o":25510.25,"h":25514.0,"l":25506.5,"c":25512.75,"v":1843},{"t":"2025-12-01T14:50:00+00:00","o":25502.0,"h":25511.0,"l":25500.25,"c":25510.25,"v":2011}],"success":true,"errorCode":0,"errorMessage":null}"#,
    );
    assert_eq!(bars.payload.bars.len(), 2);
    assert!(
        bars.payload.bars[0].t > bars.payload.bars[1].t,
        "newest first"
    );
}

#[test]
fn place_order_with_brackets_and_rejection_with_order_id() {
    let req: PlaceOrderRequest = round_trip(
        r#"{"accountId":465,"contractId":"CON.F.US.DA6.M25","type":2,"side":1,"size":1,"customTag":"s1-7","stopLossBracket":{"ticks":10,"type":4},"takeProfitBracket":{"ticks":-20,"type":1}}"#,
    );
    assert_eq!(req.stop_loss_bracket.unwrap().order_type, OrderType::Stop);
    let ok: Envelope<PlaceOrderPayload> =
        round_trip(r#"{"orderId":9056,"success":true,"errorCode":0,"errorMessage":null}"#);
    assert_eq!(ok.payload.order_id, Some(9056));
    let rejected: Envelope<PlaceOrderPayload> = round_trip(
        r#"{"orderId":9057,"success":false,"errorCode":2,"errorMessage":"Ticks should be less than zero when longing"}"#,
    );
    assert_eq!(rejected.payload.order_id, Some(9057));
}

#[test]
fn search_payloads_tolerate_nulls_and_missing_lists() {
    let e: Envelope<OrdersPayload> = serde_json::from_str(
        r#"{"orders":null,"success":false,"errorCode":1,"errorMessage":null}"#,
    )
    .unwrap();
    assert!(e.payload.orders.is_empty());
    let e: Envelope<ContractsPayload> =
        serde_json::from_str(r#"{"success":true,"errorCode":0}"#).unwrap();
    assert!(e.payload.contracts.is_empty());
    let contracts: Envelope<ContractsPayload> = round_trip(
        r#"{"contracts":[{"id":"CON.F.US.ENQ.U25","name":"NQU5","description":"E-mini NASDAQ-100: September 2025","tickSize":0.25,"tickValue":5.0,"activeContract":true,"symbolId":"F.US.ENQ"}],"success":true,"errorCode":0,"errorMessage":null}"#,
    );
    assert_eq!(contracts.payload.contracts[0].symbol_id, "F.US.ENQ");
    let accounts: Envelope<AccountsPayload> = round_trip(
        r#"{"accounts":[{"id":1,"name":"TEST_ACCOUNT_1","balance":50000,"canTrade":true,"isVisible":true,"simulated":false}],"success":true,"errorCode":0,"errorMessage":null}"#,
    );
    assert_eq!(accounts.payload.accounts[0].balance, 50000.0);
    let _: Envelope<PositionsPayload> = round_trip(
        r#"{"positions":[{"id":6124,"accountId":536,"contractId":"CON.F.US.GMET.J25","creationTimestamp":"2025-04-21T19:52:32.175721+00:00","type":1,"size":2,"averagePrice":1575.75}],"success":true,"errorCode":0,"errorMessage":null}"#,
    );
    let _: Envelope<TradesPayload> = round_trip(
        r#"{"trades":[{"id":8604,"accountId":203,"contractId":"CON.F.US.EP.H25","creationTimestamp":"2025-01-21T16:13:52.523293+00:00","price":6065.25,"profitAndLoss":50.0,"fees":1.4,"side":1,"size":1,"voided":false,"orderId":14328}],"success":true,"errorCode":0,"errorMessage":null}"#,
    );
    let _: ModifyOrderRequest = round_trip(
        r#"{"accountId":465,"orderId":26974,"size":1,"limitPrice":null,"stopPrice":1604.5,"trailPrice":null}"#,
    );
    let _: PartialCloseRequest =
        round_trip(r#"{"accountId":536,"contractId":"CON.F.US.GMET.J25","size":1}"#);
    let _: OrderQueryRequest = round_trip(
        r#"{"filter":{"accountId":1,"statuses":[1,6],"contractId":"CON.F.US.MNQ.Z25","createdAfter":"2025-12-01T00:00:00+00:00"},"pageSize":50,"pageOffset":0,"sortBy":0,"sortDirection":1,"includeTotalCount":true}"#,
    );
}
