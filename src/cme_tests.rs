//! The calendar across the 2026 daylight-saving switches (March 8, November 1), the daily
//! break and the weekend.

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// `(session, trading day, minutes to close)` at a UTC instant.
fn at(s: &str) -> (&'static str, NaiveDate, Option<i64>) {
    let t = utc(s);
    (session(t).as_str(), trading_day(t), minutes_to_close(t))
}

#[test]
fn the_week_before_spring_forward_runs_on_cst() {
    // Sunday March 1 (CST, UTC-6): closed until 17:00 = 23:00 UTC.
    assert_eq!(
        at("2026-03-01T22:59:59Z"),
        ("closed", date("2026-03-02"), None)
    );
    assert_eq!(
        at("2026-03-01T23:00:00Z"),
        ("open", date("2026-03-02"), Some(23 * 60))
    );
    // Friday March 6: 15:59 CST still open, its last minute; 16:00 closed for the weekend.
    assert_eq!(
        at("2026-03-06T21:59:00Z"),
        ("open", date("2026-03-06"), Some(1))
    );
    assert_eq!(
        at("2026-03-06T21:59:30Z"),
        ("open", date("2026-03-06"), Some(0))
    );
    assert_eq!(
        at("2026-03-06T22:00:00Z"),
        ("closed", date("2026-03-06"), None)
    );
    // Friday 17:00 and later, Saturday, and Sunday before the open are Monday's trading day.
    assert_eq!(
        at("2026-03-06T23:00:00Z"),
        ("closed", date("2026-03-09"), None)
    );
    assert_eq!(
        at("2026-03-07T18:00:00Z"),
        ("closed", date("2026-03-09"), None)
    );
}

#[test]
fn sunday_march_8_opens_at_five_pm_cdt() {
    // The clocks went forward at 02:00 that morning: 17:00 is now 22:00 UTC.
    assert_eq!(
        at("2026-03-08T21:59:59Z"),
        ("closed", date("2026-03-09"), None)
    );
    assert_eq!(
        at("2026-03-08T22:00:00Z"),
        ("open", date("2026-03-09"), Some(23 * 60)),
        "Monday closes at 16:00 CDT = 21:00 UTC"
    );
    // Monday 15:55 CDT: five minutes left; 16:00 CDT: the daily break; 17:00: Tuesday's day.
    assert_eq!(
        at("2026-03-09T20:55:00Z"),
        ("open", date("2026-03-09"), Some(5))
    );
    assert_eq!(
        at("2026-03-09T20:55:30Z"),
        ("open", date("2026-03-09"), Some(4))
    );
    assert_eq!(
        at("2026-03-09T21:00:00Z"),
        ("break", date("2026-03-09"), None)
    );
    assert_eq!(
        at("2026-03-09T21:59:59Z"),
        ("break", date("2026-03-09"), None)
    );
    assert_eq!(
        at("2026-03-09T22:00:00Z"),
        ("open", date("2026-03-10"), Some(23 * 60))
    );
}

#[test]
fn sunday_november_1_opens_at_five_pm_cst() {
    // Friday October 30 (CDT): closes at 21:00 UTC.
    assert_eq!(
        at("2026-10-30T20:59:59Z"),
        ("open", date("2026-10-30"), Some(0))
    );
    assert_eq!(
        at("2026-10-30T21:00:00Z"),
        ("closed", date("2026-10-30"), None)
    );
    assert_eq!(
        at("2026-10-30T22:00:00Z"),
        ("closed", date("2026-11-02"), None)
    );
    // The clocks went back at 02:00 on Sunday: 17:00 is now 23:00 UTC.
    assert_eq!(
        at("2026-11-01T22:00:00Z"),
        ("closed", date("2026-11-02"), None)
    );
    assert_eq!(
        at("2026-11-01T23:00:00Z"),
        ("open", date("2026-11-02"), Some(23 * 60))
    );
    // Monday's break is 16:00–17:00 CST = 22:00–23:00 UTC.
    assert_eq!(
        at("2026-11-02T21:55:00Z"),
        ("open", date("2026-11-02"), Some(5))
    );
    assert_eq!(
        at("2026-11-02T22:00:00Z"),
        ("break", date("2026-11-02"), None)
    );
    assert_eq!(
        at("2026-11-02T23:00:00Z"),
        ("open", date("2026-11-03"), Some(23 * 60))
    );
}

#[test]
fn thursday_evening_trades_friday_and_the_week_ends_on_friday() {
    // Thursday 17:00 CDT opens Friday's day, which ends at Friday 16:00 after 23 hours.
    assert_eq!(
        at("2026-07-09T22:00:00Z"),
        ("open", date("2026-07-10"), Some(23 * 60))
    );
    assert_eq!(
        at("2026-07-10T21:00:00Z"),
        ("closed", date("2026-07-10"), None)
    );
    // Sunday before the open, in the afternoon hour that is the break on weekdays: closed.
    assert_eq!(
        at("2026-07-12T21:30:00Z"),
        ("closed", date("2026-07-13"), None)
    );
}

#[test]
fn a_trading_day_starts_the_evening_before_or_on_friday_for_monday() {
    let fri_five_pm_cst = utc("2026-03-06T23:00:00Z");
    assert_eq!(
        trading_day_start(utc("2026-03-07T12:00:00Z")),
        fri_five_pm_cst
    );
    assert_eq!(
        trading_day_start(utc("2026-03-09T15:00:00Z")),
        fri_five_pm_cst
    );
    // Tuesday's day began Monday 17:00 CDT.
    assert_eq!(
        trading_day_start(utc("2026-03-10T15:00:00Z")),
        utc("2026-03-09T22:00:00Z")
    );
    // Across the fall switch: Monday November 2's day began Friday 17:00 CDT.
    assert_eq!(
        trading_day_start(utc("2026-11-01T23:30:00Z")),
        utc("2026-10-30T22:00:00Z")
    );
}

#[test]
fn a_daily_time_follows_the_chicago_wall_clock_across_both_switches() {
    let t = NaiveTime::from_hms_opt(15, 55, 0).unwrap();
    let next = |s: &str| next_daily(utc(s), t).unwrap();
    // Friday 15:00 CST → 15:55 CST the same day; from then, Saturday's.
    assert_eq!(next("2026-03-06T21:00:00Z"), utc("2026-03-06T21:55:00Z"));
    assert_eq!(next("2026-03-06T21:55:00Z"), utc("2026-03-07T21:55:00Z"));
    // Saturday's → Sunday March 8's, now in CDT: an hour earlier in UTC.
    assert_eq!(next("2026-03-07T21:55:00Z"), utc("2026-03-08T20:55:00Z"));
    // Saturday October 31 (CDT) → Sunday November 1 (CST): an hour later in UTC.
    assert_eq!(next("2026-10-31T20:55:00Z"), utc("2026-11-01T21:55:00Z"));
}

#[test]
fn a_daily_time_in_the_skipped_or_repeated_hour_fires_once() {
    // 02:30 does not exist on March 8: it arrives when the clock jumps to 03:00 CDT.
    let half_past_two = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
    assert_eq!(
        next_daily(utc("2026-03-08T06:00:00Z"), half_past_two).unwrap(),
        utc("2026-03-08T08:00:00Z")
    );
    // 01:30 happens twice on November 1: the first one fires, the next is on November 2.
    let half_past_one = NaiveTime::from_hms_opt(1, 30, 0).unwrap();
    let first = next_daily(utc("2026-11-01T05:00:00Z"), half_past_one).unwrap();
    assert_eq!(first, utc("2026-11-01T06:30:00Z"));
    assert_eq!(
        next_daily(first, half_past_one).unwrap(),
        utc("2026-11-02T07:30:00Z")
    );
}

#[test]
fn a_day_spans_from_its_start_to_five_pm_and_opens_on_sunday_for_monday() {
    // Saturday March 7 is in Monday March 9's day: it spans Friday 17:00 CST to Monday 17:00
    // CDT (the switch came on Sunday morning), and opens for trading Sunday 17:00 CDT.
    let sat = utc("2026-03-07T12:00:00Z");
    assert_eq!(
        trading_day_span(sat),
        (utc("2026-03-06T23:00:00Z"), utc("2026-03-09T22:00:00Z"))
    );
    assert_eq!(session_open(sat), utc("2026-03-08T22:00:00Z"));
    // A weekday: Tuesday's day opens and starts Monday 17:00, ends Tuesday 17:00.
    let tue = utc("2026-03-10T15:00:00Z");
    assert_eq!(session_open(tue), utc("2026-03-09T22:00:00Z"));
    assert_eq!(trading_day_span(tue).1, utc("2026-03-10T22:00:00Z"));
    // Every instant of a span has the span's trading day.
    for h in 0..24 * 8 {
        let at = utc("2026-03-05T00:00:00Z") + chrono::Duration::minutes(h * 30);
        let (s, e) = trading_day_span(at);
        assert!(s <= at && at < e, "{at}");
        assert_eq!(trading_day(s), trading_day(at));
        assert_eq!(
            trading_day(e - chrono::Duration::milliseconds(1)),
            trading_day(at)
        );
        assert_ne!(trading_day(e), trading_day(at));
    }
}
