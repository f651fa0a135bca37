//! Order rules of the simulator: what a place request must satisfy (with the gateway's
//! rejection messages), when a working order fills and at what price, and trailing-stop math.

use super::contracts::{ContractSpec, Touch};
use crate::gateway::requests::{ModifyOrderRequest, PlaceOrderRequest};
use crate::gateway::wire::{Order, OrderSide, OrderType};

/// Trail distances above this many ticks are refused on place (not on modify), as documented.
pub(super) const MAX_TRAIL_TICKS: i64 = 1000;

pub(super) fn round_cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Where a working order fills against the touch, if it is marketable: buys at the ask, sells at
/// the bid (a resting limit gets the touch when it is at least as good as the limit).
pub(super) fn fill_price(order: &Order, touch: Touch) -> Option<f64> {
    let buy = order.side == OrderSide::Bid;
    let at_touch = if buy { touch.ask } else { touch.bid };
    let ok = match order.order_type {
        OrderType::Market => true,
        OrderType::Limit | OrderType::JoinBid | OrderType::JoinAsk => {
            let limit = order.limit_price?;
            if buy {
                touch.ask <= limit
            } else {
                touch.bid >= limit
            }
        }
        OrderType::Stop | OrderType::TrailingStop => {
            let stop = order.stop_price?;
            if buy {
                touch.ask >= stop
            } else {
                touch.bid <= stop
            }
        }
        _ => false,
    };
    ok.then_some(at_touch)
}

/// The tick distance a trailing stop's absolute `trailPrice` stands for.
pub(super) fn trail_ticks(
    spec: &ContractSpec,
    touch: Option<Touch>,
    trail_price: f64,
) -> Result<i64, String> {
    if !spec.on_grid(trail_price) {
        return Err("Invalid trail price. Price is not aligned to tick size.".into());
    }
    let last = touch.ok_or("Cannot trail without a last price")?.last;
    // Truncated, as the gateway does.
    let ticks = ((last - trail_price).abs() / spec.tick_size + 1e-9).trunc() as i64;
    if ticks == 0 {
        return Err("Trail Distance not set.".into());
    }
    Ok(ticks)
}

/// Sets a trailing stop's level and read-back fields (`trailPrice` holds the distance in price
/// units on read-back).
pub(super) fn set_trail(order: &mut Order, spec: &ContractSpec, reference: f64, ticks: i64) {
    let level = spec.ticks(reference)
        + if order.side == OrderSide::Ask {
            -ticks
        } else {
            ticks
        };
    order.stop_price = Some(spec.price(level));
    order.trail_distance = Some(ticks as i32);
    order.trail_price = Some(spec.price(ticks));
}

/// Checks a place request and fills in the order's prices. Returns the trail distance for a
/// trailing stop, or the `OrderRejected` message.
pub(super) fn validate_place(
    req: &PlaceOrderRequest,
    spec: &ContractSpec,
    touch: Option<Touch>,
    auto_oco: bool,
    order: &mut Order,
) -> Result<Option<i64>, String> {
    if req.size <= 0 {
        return Err("Invalid order size.".into());
    }
    let buy = match req.side {
        OrderSide::Bid => true,
        OrderSide::Ask => false,
        OrderSide::Other(_) => return Err("Invalid order side.".into()),
    };
    let aligned = |p: Option<f64>, what: &str| -> Result<f64, String> {
        let p = p.ok_or_else(|| format!("{what} price is required."))?;
        if spec.on_grid(p) {
            Ok(p)
        } else {
            Err(format!(
                "Invalid {} price. Price is not aligned to tick size.",
                what.to_lowercase()
            ))
        }
    };
    let mut trail = None;
    match req.order_type {
        OrderType::Market => {}
        OrderType::Limit => order.limit_price = Some(aligned(req.limit_price, "Limit")?),
        OrderType::Stop => order.stop_price = Some(aligned(req.stop_price, "Stop")?),
        OrderType::TrailingStop => {
            let p = req.trail_price.ok_or("Trail Distance not set.")?;
            let ticks = trail_ticks(spec, touch, p)?;
            if ticks > MAX_TRAIL_TICKS {
                return Err(format!(
                    "Trail Distance exceeds maximum ({MAX_TRAIL_TICKS})"
                ));
            }
            set_trail(order, spec, touch.map_or(p, |t| t.last), ticks);
            trail = Some(ticks);
        }
        // Join orders rest at the current best price of their name.
        OrderType::JoinBid | OrderType::JoinAsk => {
            let touch = touch.ok_or("Cannot join without a quote")?;
            order.limit_price = Some(if req.order_type == OrderType::JoinBid {
                touch.bid
            } else {
                touch.ask
            });
        }
        _ => return Err("Invalid order type.".into()),
    }
    let legs = [
        (req.stop_loss_bracket, true),
        (req.take_profit_bracket, false),
    ];
    if legs.iter().any(|(l, _)| l.is_some()) && !auto_oco {
        return Err(
            "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets."
                .into(),
        );
    }
    for (leg, is_stop) in legs {
        let Some(leg) = leg else { continue };
        // Signed relative to the entry: a long's stop loss below it, its take profit above.
        let want_negative = buy == is_stop;
        let dir = if want_negative { "less" } else { "greater" };
        if (want_negative && leg.ticks >= 0) || (!want_negative && leg.ticks <= 0) {
            let when = if buy { "longing" } else { "shorting" };
            return Err(format!("Ticks should be {dir} than zero when {when}"));
        }
        let type_ok = if is_stop {
            matches!(leg.order_type, OrderType::Stop | OrderType::TrailingStop)
        } else {
            leg.order_type == OrderType::Limit
        };
        if !type_ok {
            return Err("Invalid bracket order type.".into());
        }
    }
    Ok(trail)
}

/// Applies an `Order/modify` to a copy of a working order: returns the changed order and its trail
/// distance, or the `Rejected` message.
pub(super) fn apply_modify(
    req: &ModifyOrderRequest,
    order: &Order,
    mut trail: Option<i64>,
    spec: &ContractSpec,
    touch: Option<Touch>,
) -> Result<(Order, Option<i64>), String> {
    let mut next = order.clone();
    if let Some(size) = req.size {
        if size <= 0 {
            return Err("Invalid order size".into());
        }
        next.size = size;
    }
    let aligned = |p: f64, what: &str| {
        if spec.on_grid(p) {
            Ok(p)
        } else {
            Err(format!(
                "Invalid {what} price. Price is not aligned to tick size."
            ))
        }
    };
    if let Some(p) = req.limit_price {
        if !matches!(
            order.order_type,
            OrderType::Limit | OrderType::JoinBid | OrderType::JoinAsk
        ) {
            return Err("Limit price can only be modified on a limit order".into());
        }
        next.limit_price = Some(aligned(p, "limit")?);
    }
    if let Some(p) = req.stop_price {
        if !matches!(order.order_type, OrderType::Stop | OrderType::TrailingStop) {
            return Err("Stop price can only be modified on a stop order".into());
        }
        next.stop_price = Some(aligned(p, "stop")?);
    }
    if let Some(p) = req.trail_price {
        if order.order_type != OrderType::TrailingStop {
            return Err("Trail price can only be modified on a trailing stop order".into());
        }
        // Modify recomputes the distance like place, without the 1000-tick cap.
        let ticks = trail_ticks(spec, touch, p)?;
        trail = Some(ticks);
        let last = touch.map_or(p, |t| t.last);
        set_trail(&mut next, spec, last, ticks);
    }
    Ok((next, trail))
}
