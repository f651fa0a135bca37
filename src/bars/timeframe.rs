//! Bar timeframes (`"5s"`, `"1m"`, `"4h"`, `"1d"`) and their boundaries in exchange time.
//!
//! Seconds, minutes and whole hours are the same in UTC and in Chicago (the offset is a whole
//! number of hours), so they are aligned on the epoch. Hour multiples above 1 and days follow
//! the CME trading day, which starts at 17:00 Chicago ([`crate::cme::session_open`]): a
//! `"4h"` bar opens at 17:00, 21:00, 01:00, …, and the last bar of a trading day ends where the
//! next day starts (on a daylight-saving switch a trading day lasts 23 or 25 hours).

use chrono::{DateTime, Utc};

/// The unit of a timeframe, as ProjectX's bar units name them (1 second … 4 day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
}

/// A bar length: `n` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timeframe {
    unit: Unit,
    n: u32,
}

/// A timeframe that is not offered, with the list of those that are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timeframe '{0}' (timeframes: {ALLOWED})")]
pub struct TimeframeError(pub String);

/// What [`Timeframe::parse`] accepts, for error messages.
pub const ALLOWED: &str = "1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30 seconds or minutes (\"5s\", \"15m\"), 1, 2, 3, 4, 6, 8 or 12 hours (\"1h\"), \"1d\"";

/// Counts that divide a minute (or an hour) evenly, so every bar starts on the same grid.
const DIVIDES_60: [u32; 11] = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30];
const DIVIDES_24: [u32; 7] = [1, 2, 3, 4, 6, 8, 12];

const HOUR_MS: i64 = 3_600_000;

impl Timeframe {
    /// Parses `"<n><s|m|h|d>"`.
    ///
    /// # Errors
    /// [`TimeframeError`] for anything else, or a count that does not divide its unit evenly.
    pub fn parse(s: &str) -> Result<Self, TimeframeError> {
        let bad = || TimeframeError(s.to_owned());
        let split = s
            .len()
            .checked_sub(1)
            .filter(|&i| s.is_char_boundary(i))
            .ok_or_else(bad)?;
        let (digits, unit) = s.split_at(split);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(bad());
        }
        let n: u32 = digits.parse().map_err(|_| bad())?;
        let (unit, ok) = match unit {
            "s" => (Unit::Second, DIVIDES_60.contains(&n)),
            "m" => (Unit::Minute, DIVIDES_60.contains(&n)),
            "h" => (Unit::Hour, DIVIDES_24.contains(&n)),
            "d" => (Unit::Day, n == 1),
            _ => (Unit::Second, false),
        };
        if ok {
            Ok(Timeframe { unit, n })
        } else {
            Err(bad())
        }
    }

    pub fn unit(self) -> Unit {
        self.unit
    }

    pub fn count(self) -> u32 {
        self.n
    }

    /// Whether boundaries follow the trading day (hour multiples above 1, days) rather than
    /// the epoch.
    fn session_aligned(self) -> bool {
        matches!(self.unit, Unit::Day) || (self.unit == Unit::Hour && self.n > 1)
    }

    /// The length of a bar, in ms (a session-aligned bar may end early, at the trading day's
    /// end).
    pub fn fixed_ms(self) -> i64 {
        let unit = match self.unit {
            Unit::Second => 1_000,
            Unit::Minute => 60_000,
            Unit::Hour => HOUR_MS,
            Unit::Day => 24 * HOUR_MS,
        };
        unit * i64::from(self.n)
    }

    /// The bar holding `t_ms`: its open time and the time it ends (exclusive), in ms.
    pub fn bucket(self, t_ms: i64) -> (i64, i64) {
        if !self.session_aligned() {
            let len = self.fixed_ms();
            let start = t_ms.div_euclid(len) * len;
            return (start, start + len);
        }
        let Some(at) = DateTime::<Utc>::from_timestamp_millis(t_ms) else {
            let len = self.fixed_ms();
            return (t_ms, t_ms + len);
        };
        // A day's bars start at its session open (Sunday 17:00 for Monday) and end where the
        // next trading day starts.
        let day = crate::cme::session_open(at).timestamp_millis();
        let next_day = crate::cme::trading_day_span(at).1.timestamp_millis();
        if self.unit == Unit::Day {
            return (day, next_day);
        }
        let len = self.fixed_ms();
        let start = day + (t_ms - day).div_euclid(len) * len;
        (start, (start + len).min(next_day))
    }

    /// How a backfill asks the gateway for this timeframe: the unit and count of the bars to
    /// request, and how many of them make one of ours. Session-aligned timeframes are built
    /// from hourly bars, so history and live bars share our boundaries whatever the gateway's
    /// own alignment of long bars is.
    pub fn history_base(self) -> (Unit, u32, u32) {
        match self.unit {
            Unit::Day => (Unit::Hour, 1, 24),
            Unit::Hour if self.n > 1 => (Unit::Hour, 1, self.n),
            _ => (self.unit, self.n, 1),
        }
    }
}

impl std::fmt::Display for Timeframe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let u = match self.unit {
            Unit::Second => 's',
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
        };
        write!(f, "{}{u}", self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn parse_accepts_what_projectx_units_allow_and_names_the_rest() {
        for ok in ["1s", "5s", "30s", "1m", "15m", "1h", "4h", "12h", "1d"] {
            assert_eq!(Timeframe::parse(ok).unwrap().to_string(), ok);
        }
        for bad in [
            "", "m", "7m", "0m", "05m", "1w", "2d", "5h", "60s", "1M", "-1m", "1.5m", "1é",
        ] {
            let e = Timeframe::parse(bad).unwrap_err();
            assert!(e.to_string().contains("unknown timeframe"), "{bad}: {e}");
        }
    }

    #[test]
    fn minute_bars_are_aligned_on_the_clock() {
        let tf = Timeframe::parse("5m").unwrap();
        let (s, e) = tf.bucket(ms("2025-12-01T14:57:59.999Z"));
        assert_eq!(
            (s, e),
            (ms("2025-12-01T14:55:00Z"), ms("2025-12-01T15:00:00Z"))
        );
        assert_eq!(tf.bucket(e).0, e, "a boundary opens the next bar");
    }

    #[test]
    fn daily_bars_roll_at_five_pm_chicago_in_winter_and_summer() {
        let d = Timeframe::parse("1d").unwrap();
        // Winter: CST = UTC-6, so 17:00 Chicago is 23:00 UTC.
        assert_eq!(
            d.bucket(ms("2025-12-01T22:59:59Z")),
            (ms("2025-11-30T23:00:00Z"), ms("2025-12-01T23:00:00Z"))
        );
        assert_eq!(
            d.bucket(ms("2025-12-01T23:00:00Z")).0,
            ms("2025-12-01T23:00:00Z")
        );
        // Summer: CDT = UTC-5, 22:00 UTC.
        assert_eq!(
            d.bucket(ms("2025-07-01T22:00:00Z")).0,
            ms("2025-07-01T22:00:00Z")
        );
        // The weekend belongs to Monday's trading day, whose bar opens Sunday 17:00 (CST after
        // the switch to winter time that morning) and ends Monday 17:00.
        let (s, e) = d.bucket(ms("2025-11-02T12:00:00Z"));
        assert_eq!(
            (s, e),
            (ms("2025-11-02T23:00:00Z"), ms("2025-11-03T23:00:00Z"))
        );
    }

    #[test]
    fn hour_multiples_follow_the_trading_day() {
        let h4 = Timeframe::parse("4h").unwrap();
        // 17:00, 21:00, 01:00 Chicago (winter): 23:00, 03:00, 07:00 UTC.
        assert_eq!(
            h4.bucket(ms("2025-12-02T04:30:00Z")).0,
            ms("2025-12-02T03:00:00Z")
        );
        assert_eq!(
            h4.bucket(ms("2025-12-01T23:00:00Z")).0,
            ms("2025-12-01T23:00:00Z")
        );
        // After the spring-forward (Sunday 2026-03-08, in the weekend) Monday's day opens at
        // 17:00 CDT = 22:00 UTC: its last 4h bar is 13:00-17:00 CDT.
        assert_eq!(
            h4.bucket(ms("2026-03-09T21:00:00Z")),
            (ms("2026-03-09T18:00:00Z"), ms("2026-03-09T22:00:00Z"))
        );
        assert_eq!(
            h4.bucket(ms("2026-03-08T22:30:00Z")).0,
            ms("2026-03-08T22:00:00Z")
        );
        assert_eq!(h4.history_base(), (Unit::Hour, 1, 4));
        assert_eq!(
            Timeframe::parse("1h").unwrap().history_base(),
            (Unit::Hour, 1, 1)
        );
    }
}
