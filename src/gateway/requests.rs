//! Request bodies and response payloads of each REST endpoint (gateway §2–3). Payloads are the
//! fields beside `success`/`errorCode` in the [`Envelope`](super::wire::Envelope).

use serde::{Deserialize, Serialize};

use super::wire::{
    Account, Bar, BarUnit, Contract, Order, OrderSide, OrderStatus, OrderType, Position, Timestamp,
    Trade, null_as_default,
};
use crate::risk::RiskApproved;
use crate::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginKeyRequest {
    pub user_name: String,
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub api_key: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginAppRequest {
    pub user_name: String,
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub password: Secret,
    pub device_id: String,
    pub app_id: String,
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub verify_key: Secret,
}

/// `Auth/loginKey` and `Auth/loginApp`: `token` is null on failure.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginPayload {
    #[serde(default, serialize_with = "Secret::serialize_exposed_opt")]
    pub token: Option<Secret>,
}

/// `Auth/validate`: a fresh token for the still-valid one presented.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatePayload {
    #[serde(
        default,
        serialize_with = "Secret::serialize_exposed_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub new_token: Option<Secret>,
}

/// Payload of calls that return nothing beside the envelope (cancel, modify, close, logout).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSearchRequest {
    pub only_active_accounts: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountsPayload {
    #[serde(default, deserialize_with = "null_as_default")]
    pub accounts: Vec<Account>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractSearchRequest {
    pub search_text: String,
    pub live: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractByIdRequest {
    pub contract_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractAvailableRequest {
    pub live: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractsPayload {
    #[serde(default, deserialize_with = "null_as_default")]
    pub contracts: Vec<Contract>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<Contract>,
}

/// `History/retrieveBars`: all eight fields are required by the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetrieveBarsRequest {
    /// A string, whatever one docs table says.
    pub contract_id: String,
    pub live: bool,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    pub unit: BarUnit,
    pub unit_number: i32,
    /// At most 20,000; the most recent bars of the window are kept.
    pub limit: i32,
    pub include_partial_bar: bool,
}

/// Bars, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BarsPayload {
    #[serde(default, deserialize_with = "null_as_default")]
    pub bars: Vec<Bar>,
}

/// Body of the calls that take only an account: `Order/searchOpen`, `Position/searchOpen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRequest {
    pub account_id: i32,
}

/// `Order/search` and `Trade/search`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeRangeRequest {
    pub account_id: i32,
    pub start_timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_timestamp: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderByIdRequest {
    pub account_id: i32,
    pub order_id: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrdersPayload {
    #[serde(default, deserialize_with = "null_as_default")]
    pub orders: Vec<Order>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
}

/// `Order/v2/query` (newer swagger).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderQueryRequest {
    pub filter: OrderQueryFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_offset: Option<i32>,
    /// 0 CreatedAt, 1 Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<i32>,
    /// 0 ascending, 1 descending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_direction: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_total_count: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderQueryFilter {
    pub account_id: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<OrderStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<Timestamp>,
}

/// A bracket leg on `Order/place`; `ticks` are signed relative to the entry (a long's stop loss
/// is negative).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BracketLeg {
    pub ticks: i32,
    #[serde(rename = "type")]
    pub order_type: OrderType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderRequest {
    pub account_id: i32,
    pub contract_id: String,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub side: OrderSide,
    pub size: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    /// For trailing stops: an absolute price level the gateway turns into a tick distance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_price: Option<f64>,
    /// Unique per account; the engine uses it to find an order whose place outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss_bracket: Option<BracketLeg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit_bracket: Option<BracketLeg>,
}

/// What an order needs besides what the risk guard approves (contract, side, size). The
/// client builds the `Order/place` body from an approved [`OrderTerms`]
/// ([`PlaceOrderRequest::approved`]), so the size sent is the size approved.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTerms {
    pub account_id: i32,
    pub order_type: OrderType,
    pub limit_price: Option<f64>,
    pub stop_price: Option<f64>,
    pub trail_price: Option<f64>,
    pub custom_tag: Option<String>,
    pub stop_loss_bracket: Option<BracketLeg>,
    pub take_profit_bracket: Option<BracketLeg>,
}

impl PlaceOrderRequest {
    /// The `Order/place` body of an approved order: contract, side and size as approved, the
    /// domain side turned into the wire's here and nowhere else.
    pub fn approved(order: &RiskApproved<OrderTerms>) -> Self {
        let t = order.payload();
        PlaceOrderRequest {
            account_id: t.account_id,
            contract_id: order.contract_id().to_string(),
            order_type: t.order_type,
            side: OrderSide::from(order.side()),
            size: i32::try_from(order.size()).unwrap_or(i32::MAX),
            limit_price: t.limit_price,
            stop_price: t.stop_price,
            trail_price: t.trail_price,
            custom_tag: t.custom_tag.clone(),
            stop_loss_bracket: t.stop_loss_bracket,
            take_profit_bracket: t.take_profit_bracket,
        }
    }
}

/// `Order/place`: a rejected place can still carry a real `orderId`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifyOrderRequest {
    pub account_id: i32,
    pub order_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_price: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseContractRequest {
    pub account_id: i32,
    pub contract_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartialCloseRequest {
    pub account_id: i32,
    pub contract_id: String,
    pub size: i32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionsPayload {
    #[serde(default, deserialize_with = "null_as_default")]
    pub positions: Vec<Position>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradesPayload {
    #[serde(default, deserialize_with = "null_as_default")]
    pub trades: Vec<Trade>,
}
