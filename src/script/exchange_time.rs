//! Exchange time for strategies: `bot.exchange_time()` (and its older name `bot.chicago_time()`),
//! the CME's America/Chicago wall clock with daylight saving applied plus the Globex session
//! ([`crate::cme`]), so a session cutoff is written as the exchange states it.

use chrono::{DateTime, Datelike, NaiveDate, Offset, Timelike};
use chrono_tz::America::Chicago;
use mlua::{Lua, Table};

use crate::cme::{self, Session};

/// The exchange's wall clock and session at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 1 = Sunday, as `os.date` counts.
    pub wday: u32,
    /// Daylight saving (CDT, UTC-5) in effect.
    pub dst: bool,
    /// The CME trading day (see [`cme::trading_day`]).
    pub trading_day: NaiveDate,
    pub session: Session,
    /// Whole minutes to the close of the session trading now; `None` in the break and the
    /// weekend (see [`cme::minutes_to_close`]).
    pub minutes_to_close: Option<i64>,
}

/// The exchange time at `ms` since the epoch; `None` past chrono's range.
pub fn exchange_time(ms: i64) -> Option<ExchangeTime> {
    let utc = DateTime::from_timestamp_millis(ms)?;
    let t = utc.with_timezone(&Chicago);
    Some(ExchangeTime {
        year: t.year(),
        month: t.month(),
        day: t.day(),
        hour: t.hour(),
        min: t.minute(),
        sec: t.second(),
        wday: t.weekday().number_from_sunday(),
        dst: t.offset().fix().local_minus_utc() == -5 * 3600,
        trading_day: cme::trading_day(utc),
        session: cme::session(utc),
        minutes_to_close: cme::minutes_to_close(utc),
    })
}

/// [`exchange_time`] as the table `bot.exchange_time()` returns; `fname` names the call in the
/// error.
pub fn exchange_table(lua: &Lua, fname: &str, ms: i64) -> mlua::Result<Table> {
    let t = exchange_time(ms)
        .ok_or_else(|| mlua::Error::runtime(format!("{fname}: clock out of range ({ms} ms)")))?;
    let table = lua.create_table_with_capacity(0, 11)?;
    table.raw_set("year", t.year)?;
    table.raw_set("month", t.month)?;
    table.raw_set("day", t.day)?;
    table.raw_set("hour", t.hour)?;
    table.raw_set("min", t.min)?;
    table.raw_set("sec", t.sec)?;
    table.raw_set("wday", t.wday)?;
    table.raw_set("dst", t.dst)?;
    table.raw_set("trading_day", t.trading_day.format("%Y-%m-%d").to_string())?;
    table.raw_set("session", t.session.as_str())?;
    table.raw_set("minutes_to_close", t.minutes_to_close)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(utc: &str) -> i64 {
        DateTime::parse_from_rfc3339(utc)
            .unwrap()
            .timestamp_millis()
    }

    fn at(utc: &str) -> ExchangeTime {
        exchange_time(ms(utc)).unwrap()
    }

    #[test]
    fn summer_and_winter_offsets_follow_daylight_saving() {
        // 20:00 UTC is 15:00 CDT in July and 14:00 CST in January.
        let summer = at("2026-07-15T20:00:00Z");
        assert_eq!((summer.hour, summer.dst), (15, true));
        let winter = at("2026-01-15T20:00:00Z");
        assert_eq!((winter.hour, winter.dst), (14, false));
        assert_eq!(winter.wday, 5, "a Thursday");
    }

    #[test]
    fn the_spring_forward_day_changes_offset_at_two_am() {
        // 2026-03-08: 07:59 UTC is 01:59 CST; 08:00 UTC is 03:00 CDT.
        assert_eq!(at("2026-03-08T07:59:00Z").hour, 1);
        assert_eq!(at("2026-03-08T08:00:00Z").hour, 3);
    }

    #[test]
    fn the_table_carries_every_field() {
        let lua = Lua::new();
        // Wednesday 15:55 CDT: open, five minutes to the daily break.
        let t = exchange_table(&lua, "bot.exchange_time", ms("2026-07-15T20:55:00Z")).unwrap();
        assert_eq!(t.raw_get::<u32>("hour").unwrap(), 15);
        assert_eq!(t.raw_get::<u32>("min").unwrap(), 55);
        assert_eq!(t.raw_get::<u32>("wday").unwrap(), 4);
        assert!(t.raw_get::<bool>("dst").unwrap());
        assert_eq!(t.raw_get::<String>("trading_day").unwrap(), "2026-07-15");
        assert_eq!(t.raw_get::<String>("session").unwrap(), "open");
        assert_eq!(t.raw_get::<i64>("minutes_to_close").unwrap(), 5);
        // Saturday: closed, Monday's trading day, no minutes to a close.
        let t = exchange_table(&lua, "bot.exchange_time", ms("2026-07-18T15:00:00Z")).unwrap();
        assert_eq!(t.raw_get::<String>("session").unwrap(), "closed");
        assert_eq!(t.raw_get::<String>("trading_day").unwrap(), "2026-07-20");
        assert!(
            t.raw_get::<Option<i64>>("minutes_to_close")
                .unwrap()
                .is_none()
        );
        let err = exchange_table(&lua, "bot.exchange_time", i64::MAX).unwrap_err();
        assert!(err.to_string().contains("bot.exchange_time"), "{err}");
    }
}
