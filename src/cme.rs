//! The CME Globex calendar in exchange time (America/Chicago) for the equity index futures:
//! the trading day that rolls at 17:00, the weekly session (Sunday 17:00 to Friday 16:00 with a
//! daily break 16:00–17:00) and the time to its close; shared by the risk guard's daily loss,
//! strategies' exchange time and daily bars.
//!
//! Exchange holidays (early closes, closed days) are not in this calendar: on a holiday it says
//! "open" when the exchange is not. Daylight saving is chrono-tz's America/Chicago rules.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::America::Chicago;

/// The daily close, 16:00 Chicago: the end of every trading day (and, on Friday, of the week).
const CLOSE_HOUR: u32 = 16;
/// The reopen, 17:00 Chicago: the start of the next trading day.
const OPEN_HOUR: u32 = 17;

/// Whether Globex trades the equity index futures at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// Sunday 17:00 to Friday 16:00, outside the daily break.
    Open,
    /// The daily maintenance break, 16:00–17:00, Monday to Thursday.
    Break,
    /// The weekend: Friday 16:00 to Sunday 17:00.
    Closed,
}

impl Session {
    /// `"open"`, `"break"` or `"closed"`, as strategies read it.
    pub fn as_str(self) -> &'static str {
        match self {
            Session::Open => "open",
            Session::Break => "break",
            Session::Closed => "closed",
        }
    }
}

/// The futures trading day: CME sessions (and prop-firm daily limits) roll at 17:00 Chicago,
/// and the weekend belongs to the week ahead: from Friday 17:00 to Sunday 17:00 it is already
/// Monday's trading day (the one Sunday evening's open starts trading).
pub fn trading_day(at: DateTime<Utc>) -> NaiveDate {
    let chicago = at.with_timezone(&Chicago);
    let day = chicago.date_naive();
    let day = if chicago.hour() >= OPEN_HOUR {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    match day.weekday() {
        Weekday::Sat => day.checked_add_days(Days::new(2)).unwrap_or(day),
        Weekday::Sun => day.succ_opt().unwrap_or(day),
        _ => day,
    }
}

/// When the trading day that `at` falls in began: 17:00 Chicago the evening before, or the
/// Friday before for Monday's day (see [`trading_day`]).
pub fn trading_day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let day = trading_day(at);
    let back = if day.weekday() == Weekday::Mon { 3 } else { 1 };
    day.checked_sub_days(Days::new(back))
        .and_then(|d| chicago_instant(d, OPEN_HOUR))
        .unwrap_or(at - chrono::Duration::days(1))
}

/// The instants the trading day `at` falls in spans: from [`trading_day_start`] to 17:00
/// Chicago on the day itself, so `trading_day` is constant on it (a cache key for per-event
/// callers: the recorder's files, VWAP's reset).
pub fn trading_day_span(at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = trading_day_start(at);
    let end =
        chicago_instant(trading_day(at), OPEN_HOUR).unwrap_or(start + chrono::Duration::days(1));
    (start, end)
}

/// When the trading day `at` falls in opens for trading: 17:00 Chicago the evening before, and
/// Sunday 17:00 for Monday's day (the weekend is part of Monday's day but trades nothing). Bars
/// of a day are labelled from here.
pub fn session_open(at: DateTime<Utc>) -> DateTime<Utc> {
    trading_day(at)
        .pred_opt()
        .and_then(|d| chicago_instant(d, OPEN_HOUR))
        .unwrap_or_else(|| trading_day_start(at))
}

/// The session at `at`.
pub fn session(at: DateTime<Utc>) -> Session {
    let chicago = at.with_timezone(&Chicago);
    let hour = chicago.hour();
    match chicago.weekday() {
        Weekday::Sat => Session::Closed,
        Weekday::Sun if hour < OPEN_HOUR => Session::Closed,
        Weekday::Fri if hour >= CLOSE_HOUR => Session::Closed,
        _ if hour == CLOSE_HOUR => Session::Break,
        _ => Session::Open,
    }
}

/// When the session trading at `at` closes: 16:00 Chicago on its trading day (the daily break,
/// or Friday's close). `None` during the break and the weekend, when no session trades.
pub fn session_close(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if session(at) != Session::Open {
        return None;
    }
    chicago_instant(trading_day(at), CLOSE_HOUR)
}

/// Whole minutes left from `at` to [`session_close`], rounded down: 5 at 15:55:00, 4 at
/// 15:55:30, 0 after 15:59:00. `None` during the break and the weekend.
pub fn minutes_to_close(at: DateTime<Utc>) -> Option<i64> {
    session_close(at).map(|close| (close - at).num_seconds().div_euclid(60))
}

/// `hour`:00 Chicago on `day` (never in a daylight-saving gap or overlap for 16 and 17).
fn chicago_instant(day: NaiveDate, hour: u32) -> Option<DateTime<Utc>> {
    let local = day.and_time(NaiveTime::from_hms_opt(hour, 0, 0)?);
    Chicago
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The first instant strictly after `after` whose Chicago wall clock reads `time`: tomorrow's
/// when today's has passed. On the day daylight saving starts, a time inside the skipped hour
/// (02:00–02:59) fires at 03:00; on the day it ends, a time in the repeated hour fires the first
/// time it is read. `None` only past chrono's range.
pub fn next_daily(after: DateTime<Utc>, time: NaiveTime) -> Option<DateTime<Utc>> {
    let today = after.with_timezone(&Chicago).date_naive();
    (0..3u64)
        .filter_map(|n| today.checked_add_days(Days::new(n)))
        .filter_map(|day| wall_clock_instant(day, time))
        .find(|t| *t > after)
}

/// `time` on `day` in Chicago; a time the spring-forward skips is read as the end of the gap.
fn wall_clock_instant(day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let local = day.and_time(time);
    match Chicago.from_local_datetime(&local).earliest() {
        Some(t) => Some(t.with_timezone(&Utc)),
        // The only gap in America/Chicago is 02:00–02:59 on the spring-forward day: the wall
        // clock jumps to 03:00, so that is when the time "arrives".
        None => Chicago
            .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(3, 0, 0)?))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

#[cfg(test)]
#[path = "cme_tests.rs"]
mod tests;
