//! The CME Globex calendar in exchange time (America/Chicago): the trading day that rolls at
//! 17:00, shared by the risk guard's daily loss, strategies' exchange time and daily bars.

use chrono::{DateTime, NaiveDate, Utc};

/// The futures trading day: CME sessions (and prop-firm daily limits) roll at 17:00 Chicago.
pub fn trading_day(at: DateTime<Utc>) -> NaiveDate {
    let chicago = at.with_timezone(&chrono_tz::America::Chicago);
    let day = chicago.date_naive();
    if chicago.time() >= chrono::NaiveTime::from_hms_opt(17, 0, 0).expect("valid time") {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    }
}

/// When the trading day that `at` falls in began (17:00 Chicago the evening before).
pub fn trading_day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::TimeZone;
    let day = trading_day(at).pred_opt().expect("a day before");
    let five_pm = day.and_hms_opt(17, 0, 0).expect("valid time");
    chrono_tz::America::Chicago
        .from_local_datetime(&five_pm)
        .earliest()
        .map_or(at - chrono::Duration::days(1), |t| t.with_timezone(&Utc))
}
