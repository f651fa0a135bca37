//! Bar backfill: `History/retrieveBars` requests per series (contract and timeframe), one
//! unless an outage needs more, through the gateway client and so within its bars rate budget
//! (50 requests / 30 s).
//!
//! The request ends at a cut the engine chose on the gateway's own clock (a whole second), with
//! the partial bar included: history holds every trade before the cut, the live stream every
//! trade from it, so where they meet nothing is missing and nothing is counted twice.

use chrono::{DateTime, Utc};

use crate::bars::{Bar, Timeframe, Unit};
use crate::gateway::requests::RetrieveBarsRequest;
use crate::gateway::wire::{self, BarUnit};
use crate::gateway::{GatewayClient, GatewayError};

/// Most bars one `retrieveBars` call returns.
pub(crate) const MAX_LIMIT: usize = 20_000;

/// How many of the gateway's bars `bars` of `tf` (and the partial one) take.
fn wire_bars(tf: Timeframe, bars: usize) -> usize {
    (bars + 1) * tf.history_base().2 as usize
}

/// Requests one backfill may page through: 200,000 of the gateway's bars (55 hours of 1 s bars,
/// 20 weeks of 1 m), ten of the bars budget's 50 requests per 30 s. A longer outage is rebuilt
/// for its most recent part only, and the engine says so.
pub(crate) const MAX_PAGES: usize = 10;

/// Whether `bars` of `tf` are more than [`backfill`] fetches (it keeps the most recent).
pub(crate) fn beyond_backfill(bars: usize, tf: Timeframe) -> bool {
    wire_bars(tf, bars) > MAX_LIMIT * MAX_PAGES
}

/// The request for the `bars` most recent closed bars of `tf` before `cut_ms`, plus the partial
/// one the cut falls in; at most one request's worth ([`backfill`] pages for more).
pub fn request(contract_id: &str, tf: Timeframe, bars: usize, cut_ms: i64) -> RetrieveBarsRequest {
    page(contract_id, tf, wire_bars(tf, bars), cut_ms, true)
}

/// A request for the `wire` most recent of the gateway's bars (of [`Timeframe::history_base`])
/// before `end_ms`, the partial one at the end included when `partial`.
fn page(
    contract_id: &str,
    tf: Timeframe,
    wire: usize,
    end_ms: i64,
    partial: bool,
) -> RetrieveBarsRequest {
    let (unit, n, _) = tf.history_base();
    let limit = wire.clamp(1, MAX_LIMIT);
    let unit_ms: i64 = match unit {
        Unit::Second => 1_000,
        Unit::Minute => 60_000,
        Unit::Hour => 3_600_000,
        Unit::Day => 86_400_000,
    };
    // Twice the span of the bars asked for, plus four days: nights, weekends and holidays have
    // no bars; `limit` keeps the most recent ones of the window.
    let span = limit as i64 * unit_ms * i64::from(n) * 2 + 4 * 86_400_000;
    let end = DateTime::<Utc>::from_timestamp_millis(end_ms).unwrap_or_else(Utc::now);
    let start = DateTime::<Utc>::from_timestamp_millis(end_ms - span).unwrap_or(end);
    RetrieveBarsRequest {
        contract_id: contract_id.to_owned(),
        live: false,
        start_time: start.into(),
        end_time: end.into(),
        unit: wire_unit(unit),
        unit_number: n as i32,
        limit: limit as i32,
        include_partial_bar: partial,
    }
}

/// Fetches the history of one series, oldest first, as the gateway's bars of
/// [`Timeframe::history_base`] (the engine folds them into `tf` bars). More than one request
/// returns is fetched page by page backwards from the cut, each page ending where the previous
/// one's oldest bar began, up to ten pages, and until the gateway has no older bars.
///
/// # Errors
/// The gateway's error (any page's); the engine tries again later.
pub async fn backfill(
    client: &GatewayClient,
    contract_id: &str,
    tf: Timeframe,
    bars: usize,
    cut_ms: i64,
) -> Result<Vec<Bar>, GatewayError> {
    let want = wire_bars(tf, bars);
    let mut all: Vec<wire::Bar> = Vec::new();
    let mut end_ms = cut_ms;
    for n in 0..MAX_PAGES {
        // Only the first page ends at the cut, in the bar the live stream goes on with.
        let req = page(contract_id, tf, want - all.len(), end_ms, n == 0);
        let mut got = client.retrieve_bars(&req).await?;
        // A bar at or after the page's end is the live stream's, or the previous page's.
        got.retain(|b| b.t.0.timestamp_millis() < end_ms);
        let Some(oldest) = got.iter().map(|b| b.t.0.timestamp_millis()).min() else {
            break;
        };
        all.extend(got);
        if all.len() >= want {
            break;
        }
        end_ms = oldest;
    }
    all.sort_by_key(|b| b.t.0);
    all.dedup_by_key(|b| b.t.0);
    Ok(all.iter().map(to_bar).collect())
}

/// The gateway's name for a unit.
pub(crate) fn wire_unit(unit: Unit) -> BarUnit {
    match unit {
        Unit::Second => BarUnit::Second,
        Unit::Minute => BarUnit::Minute,
        Unit::Hour => BarUnit::Hour,
        Unit::Day => BarUnit::Day,
    }
}

/// A gateway bar as ours.
pub(crate) fn to_bar(b: &wire::Bar) -> Bar {
    Bar {
        time_ms: b.t.0.timestamp_millis(),
        open: b.o,
        high: b.h,
        low: b.l,
        close: b.c,
        volume: b.v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_ends_at_the_cut_and_asks_daily_history_as_hours() {
        let cut = 1_764_600_000_000;
        let r = request(
            "CON.F.US.MNQ.Z25",
            Timeframe::parse("1d").unwrap(),
            500,
            cut,
        );
        assert_eq!(
            (r.unit, r.unit_number, r.limit),
            (BarUnit::Hour, 1, 501 * 24)
        );
        assert_eq!(r.end_time.0.timestamp_millis(), cut);
        assert!(r.include_partial_bar);
        let r = request("C", Timeframe::parse("5m").unwrap(), 100_000, cut);
        assert_eq!(
            (r.unit, r.unit_number, r.limit),
            (BarUnit::Minute, 5, 20_000)
        );
    }
}
