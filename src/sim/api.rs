//! The simulator's REST endpoint handlers: decode the body, ask the market or the matching
//! engine, answer in the gateway's envelope with each endpoint's own error codes.

use hyper::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::auth::Claims;
use super::market::BarsQuery;
use super::orders::Refusal;
use super::reply::{Reply, json as json_reply};
use super::shared::Shared;
use crate::gateway::Endpoint;
use crate::gateway::requests::*;
use crate::gateway::wire::{Envelope, Order, OrderStatus};

const JSON: &str = "application/json; charset=utf-8";

fn ok<T: Serialize>(payload: T) -> Reply {
    let body = serde_json::to_vec(&Envelope::ok(payload)).expect("payloads serialize");
    json_reply(StatusCode::OK, body, JSON)
}

/// A business failure: HTTP 200, `success:false`, the endpoint's code for `name`.
fn fail<T: Serialize>(ep: Endpoint, payload: T, name: &str, message: Option<String>) -> Reply {
    let code = ep.error_code(name).unwrap_or_else(|| {
        tracing::warn!(
            endpoint = ep.name(),
            name,
            "simulator has no error code for this name"
        );
        ep.error_code("UnknownError").unwrap_or(-1)
    });
    let body =
        serde_json::to_vec(&Envelope::error(payload, code, message)).expect("payloads serialize");
    json_reply(StatusCode::OK, body, JSON)
}

fn refused<T: Serialize>(ep: Endpoint, payload: T, r: Refusal) -> Reply {
    fail(ep, payload, r.name, r.message)
}

/// HTTP 400 with an ASP.NET-style RFC 7807 ProblemDetails body, as model validation answers.
fn problem(errors: Map<String, Value>) -> Reply {
    let body = json!({
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": errors,
        "traceId": format!("00-{:032x}-{:016x}-00", rand::random::<u128>(), rand::random::<u64>()),
    });
    json_reply(
        StatusCode::BAD_REQUEST,
        serde_json::to_vec(&body).expect("json serializes"),
        "application/problem+json; charset=utf-8",
    )
}

/// Decodes a request body, or answers 400 (boxed: a `Response` is large and this is the cold path).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Reply>> {
    serde_json::from_slice(body).map_err(|e| {
        let mut errors = Map::new();
        errors.insert("$".into(), json!([e.to_string()]));
        Box::new(problem(errors))
    })
}

/// Checks that each named field is a string, naming the missing ones as ASP.NET does
/// (`"The ApiKey field is required."`).
fn required_strings(body: &[u8], fields: &[&str]) -> Result<Value, Box<Reply>> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut errors = Map::new();
    for f in fields {
        if !v.get(*f).is_some_and(Value::is_string) {
            let pascal = f[..1].to_uppercase() + &f[1..];
            errors.insert(
                pascal.clone(),
                json!([format!("The {pascal} field is required.")]),
            );
        }
    }
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(Box::new(problem(errors)))
    }
}

pub(crate) fn dispatch(
    shared: &Shared,
    ep: Endpoint,
    body: &[u8],
    claims: Option<&Claims>,
) -> Reply {
    let result = match ep {
        Endpoint::LoginKey => login_key(shared, body),
        Endpoint::LoginApp => login_app(shared, body),
        Endpoint::Validate => Ok(validate(shared, claims)),
        Endpoint::Logout => {
            if let Some(c) = claims {
                shared.tokens.revoke(&c.jti);
            }
            Ok(ok(Empty {}))
        }
        Endpoint::AccountSearch => account_search(shared, body),
        Endpoint::ContractSearch => contract_search(shared, body),
        Endpoint::ContractSearchById => contract_by_id(shared, body),
        Endpoint::ContractAvailable => contract_available(shared, body),
        Endpoint::RetrieveBars => bars(shared, body),
        Endpoint::OrderSearch => order_search(shared, body),
        Endpoint::OrderSearchOpen => order_search_open(shared, body),
        Endpoint::OrderSearchById => order_by_id(shared, body),
        Endpoint::OrderQuery => order_query(shared, body),
        Endpoint::OrderPlace => place(shared, body),
        Endpoint::OrderCancel => cancel(shared, body),
        Endpoint::OrderModify => modify(shared, body),
        Endpoint::PositionSearchOpen => positions(shared, body),
        Endpoint::PositionClose => close(shared, body, false),
        Endpoint::PositionPartialClose => close(shared, body, true),
        Endpoint::TradeSearch => trades(shared, body),
    };
    result.unwrap_or_else(|reply| *reply)
}

fn login_key(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let v = required_strings(body, &["userName", "apiKey"])?;
    let (user, key) = (
        v["userName"].as_str().unwrap_or(""),
        v["apiKey"].as_str().unwrap_or(""),
    );
    let cfg = &shared.config;
    if shared.faults.logins_rejected() || user != cfg.user || !cfg.api_key.ct_eq(key) {
        return Ok(fail(
            Endpoint::LoginKey,
            LoginPayload::default(),
            "InvalidCredentials",
            None,
        ));
    }
    shared.stats().logins += 1;
    Ok(ok(LoginPayload {
        token: Some(shared.tokens.issue(user)),
    }))
}

/// The docs withdrew app login and call API-key login the only supported way, so the simulator
/// knows no apps: `AppNotFound` (4) for any well-formed request, `InvalidCredentials` (3) while
/// logins are being rejected.
fn login_app(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    required_strings(
        body,
        &["userName", "password", "deviceId", "appId", "verifyKey"],
    )?;
    let name = if shared.faults.logins_rejected() {
        "InvalidCredentials"
    } else {
        "AppNotFound"
    };
    Ok(fail(
        Endpoint::LoginApp,
        LoginPayload::default(),
        name,
        None,
    ))
}

fn validate(shared: &Shared, claims: Option<&Claims>) -> Reply {
    let Some(claims) = claims else {
        return fail(
            Endpoint::Validate,
            ValidatePayload::default(),
            "InvalidSession",
            None,
        );
    };
    shared.stats().validates += 1;
    ok(ValidatePayload {
        new_token: Some(shared.tokens.issue(&claims.sub)),
    })
}

fn account_search(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: AccountSearchRequest = parse(body)?;
    let accounts = shared.with_state(|st| {
        st.engine
            .accounts()
            .iter()
            .filter(|a| !req.only_active_accounts || (a.can_trade && a.is_visible))
            .cloned()
            .collect()
    });
    Ok(ok(AccountsPayload { accounts }))
}

/// Fuzzy, like the gateway: "NQ" finds MNQ and NQ (root ENQ) rows; at most 20. Only the active
/// front month of each product is listed, as the gateway does (clients that sort the rows by
/// name and take the first would otherwise trade an expired contract); older contracts stay
/// reachable through `Contract/searchById`.
fn contract_search(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: ContractSearchRequest = parse(body)?;
    let text = req.search_text.trim().to_uppercase();
    let contracts = shared.with_state(|st| {
        st.market
            .contracts()
            .iter()
            .filter(|s| s.active)
            .filter(|s| {
                text.is_empty()
                    || s.name.contains(&text)
                    || s.symbol_id.contains(&text)
                    || s.description.to_uppercase().contains(&text)
            })
            .take(20)
            .map(|s| s.to_wire())
            .collect()
    });
    Ok(ok(ContractsPayload { contracts }))
}

fn contract_by_id(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: ContractByIdRequest = parse(body)?;
    let contract = shared.with_state(|st| {
        st.market
            .contracts()
            .iter()
            .find(|s| *s.id == *req.contract_id)
            .map(|s| s.to_wire())
    });
    Ok(match contract {
        Some(c) => ok(ContractPayload { contract: Some(c) }),
        None => fail(
            Endpoint::ContractSearchById,
            ContractPayload::default(),
            "ContractNotFound",
            None,
        ),
    })
}

fn contract_available(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let _req: ContractAvailableRequest = parse(body)?;
    let contracts = shared.with_state(|st| {
        st.market
            .contracts()
            .iter()
            .filter(|s| s.active)
            .map(|s| s.to_wire())
            .collect()
    });
    Ok(ok(ContractsPayload { contracts }))
}

fn bars(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: RetrieveBarsRequest = parse(body)?;
    let q = BarsQuery {
        contract_id: &req.contract_id,
        unit: req.unit,
        unit_number: req.unit_number,
        start: req.start_time.0,
        end: req.end_time.0,
        limit: req.limit,
        include_partial: req.include_partial_bar,
    };
    Ok(
        match shared.with_state(|st| st.market.bars(&q, chrono::Utc::now())) {
            Ok(bars) => ok(BarsPayload { bars }),
            Err(e) => fail(
                Endpoint::RetrieveBars,
                BarsPayload::default(),
                e.name(),
                None,
            ),
        },
    )
}

/// Runs `f` for a known account, or answers `AccountNotFound` with an empty `T`.
fn for_account<T: Serialize + Default>(
    shared: &Shared,
    ep: Endpoint,
    account_id: i32,
    f: impl FnOnce(&super::shared::State) -> T,
) -> Reply {
    match shared.with_state(|st| st.engine.has_account(account_id).then(|| f(st))) {
        Some(payload) => ok(payload),
        None => fail(ep, T::default(), "AccountNotFound", None),
    }
}

/// Suspended bracket children are invisible to the searches until their entry fills (gateway §8).
fn visible(o: &Order) -> bool {
    o.status != OrderStatus::Suspended
}

fn order_search(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: TimeRangeRequest = parse(body)?;
    Ok(for_account(
        shared,
        Endpoint::OrderSearch,
        req.account_id,
        |st| OrdersPayload {
            orders: st
                .engine
                .orders(req.account_id)
                .filter(|o| visible(o) && o.creation_timestamp >= req.start_timestamp)
                .filter(|o| {
                    req.end_timestamp
                        .is_none_or(|end| o.creation_timestamp <= end)
                })
                .cloned()
                .collect(),
            total_count: None,
        },
    ))
}

fn order_search_open(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: AccountRequest = parse(body)?;
    Ok(for_account(
        shared,
        Endpoint::OrderSearchOpen,
        req.account_id,
        |st| OrdersPayload {
            orders: st
                .engine
                .orders(req.account_id)
                .filter(|o| o.status == OrderStatus::Open)
                .cloned()
                .collect(),
            total_count: None,
        },
    ))
}

fn order_by_id(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: OrderByIdRequest = parse(body)?;
    let order = shared.with_state(|st| st.engine.order(req.account_id, req.order_id).cloned());
    Ok(match order {
        Some(o) => ok(OrderPayload { order: Some(o) }),
        None => fail(
            Endpoint::OrderSearchById,
            OrderPayload::default(),
            "OrderNotFound",
            None,
        ),
    })
}

/// `Order/v2/query`: filters, then sorts (by creation or id; ids grow with creation, so both
/// orders agree), then pages. `pageOffset` is read as a count of rows to skip (not documented).
fn order_query(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: OrderQueryRequest = parse(body)?;
    let f = &req.filter;
    Ok(for_account(
        shared,
        Endpoint::OrderQuery,
        f.account_id,
        |st| {
            let mut orders: Vec<Order> = st
                .engine
                .orders(f.account_id)
                .filter(|o| {
                    f.statuses
                        .as_ref()
                        .is_none_or(|s| s.is_empty() || s.contains(&o.status))
                })
                .filter(|o| f.contract_id.as_ref().is_none_or(|c| *c == o.contract_id))
                .filter(|o| f.created_after.is_none_or(|t| o.creation_timestamp >= t))
                .filter(|o| f.created_before.is_none_or(|t| o.creation_timestamp <= t))
                .cloned()
                .collect();
            if req.sort_direction == Some(1) {
                orders.reverse();
            }
            let total = orders.len() as i64;
            let skip = req.page_offset.unwrap_or(0).max(0) as usize;
            let take = req
                .page_size
                .filter(|&n| n > 0)
                .map_or(usize::MAX, |n| n as usize);
            OrdersPayload {
                orders: orders.into_iter().skip(skip).take(take).collect(),
                total_count: req.include_total_count.unwrap_or(false).then_some(total),
            }
        },
    ))
}

fn place(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: PlaceOrderRequest = parse(body)?;
    let now = chrono::Utc::now();
    let result = shared
        .with_state(|st| st.engine(|engine, market, out| engine.place(&req, market, now, out)));
    Ok(match result {
        Ok(id) => ok(PlaceOrderPayload { order_id: Some(id) }),
        Err(r) => {
            let order_id = r.order_id;
            refused(Endpoint::OrderPlace, PlaceOrderPayload { order_id }, r)
        }
    })
}

fn cancel(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: OrderByIdRequest = parse(body)?;
    let now = chrono::Utc::now();
    let result = shared.with_state(|st| {
        st.engine(|engine, _, out| engine.cancel(req.account_id, req.order_id, now, out))
    });
    Ok(result.map_or_else(
        |r| refused(Endpoint::OrderCancel, Empty {}, r),
        |()| ok(Empty {}),
    ))
}

fn modify(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: ModifyOrderRequest = parse(body)?;
    let now = chrono::Utc::now();
    let result = shared
        .with_state(|st| st.engine(|engine, market, out| engine.modify(&req, market, now, out)));
    Ok(result.map_or_else(
        |r| refused(Endpoint::OrderModify, Empty {}, r),
        |()| ok(Empty {}),
    ))
}

fn positions(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: AccountRequest = parse(body)?;
    Ok(for_account(
        shared,
        Endpoint::PositionSearchOpen,
        req.account_id,
        |st| PositionsPayload {
            positions: st.engine.positions(req.account_id),
        },
    ))
}

/// Close and partial close share the engine call; their error codes differ (shifted after 4),
/// which the endpoint's own name table takes care of.
fn close(shared: &Shared, body: &[u8], partial: bool) -> Result<Reply, Box<Reply>> {
    let (ep, account_id, contract_id, size) = if partial {
        let req: PartialCloseRequest = parse(body)?;
        (
            Endpoint::PositionPartialClose,
            req.account_id,
            req.contract_id,
            Some(req.size),
        )
    } else {
        let req: CloseContractRequest = parse(body)?;
        (
            Endpoint::PositionClose,
            req.account_id,
            req.contract_id,
            None,
        )
    };
    let now = chrono::Utc::now();
    let result = shared.with_state(|st| {
        st.engine(|engine, market, out| {
            engine.close(account_id, &contract_id, size, market, now, out)
        })
    });
    Ok(result.map_or_else(|r| refused(ep, Empty {}, r), |()| ok(Empty {})))
}

fn trades(shared: &Shared, body: &[u8]) -> Result<Reply, Box<Reply>> {
    let req: TimeRangeRequest = parse(body)?;
    Ok(for_account(
        shared,
        Endpoint::TradeSearch,
        req.account_id,
        |st| TradesPayload {
            trades: st
                .engine
                .trades(req.account_id)
                .filter(|t| t.creation_timestamp >= req.start_timestamp)
                .filter(|t| {
                    req.end_timestamp
                        .is_none_or(|end| t.creation_timestamp <= end)
                })
                .cloned()
                .collect(),
        },
    ))
}
