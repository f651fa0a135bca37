//! Exchange time for strategies: `bot.chicago_time()`, the CME's America/Chicago wall clock
//! with daylight saving applied, so a session cutoff is written as the exchange states it.

use chrono::{DateTime, Datelike, Offset, Timelike};
use chrono_tz::America::Chicago;
use mlua::{Lua, Table};

/// Chicago wall-clock fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChicagoTime {
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
}

/// The Chicago wall clock at `ms` since the epoch; `None` past chrono's range.
pub fn chicago_time(ms: i64) -> Option<ChicagoTime> {
    let t = DateTime::from_timestamp_millis(ms)?.with_timezone(&Chicago);
    Some(ChicagoTime {
        year: t.year(),
        month: t.month(),
        day: t.day(),
        hour: t.hour(),
        min: t.minute(),
        sec: t.second(),
        wday: t.weekday().number_from_sunday(),
        dst: t.offset().fix().local_minus_utc() == -5 * 3600,
    })
}

/// [`chicago_time`] as the table `bot.chicago_time()` returns.
pub fn chicago_table(lua: &Lua, ms: i64) -> mlua::Result<Table> {
    let t = chicago_time(ms).ok_or_else(|| {
        mlua::Error::runtime(format!("bot.chicago_time: clock out of range ({ms} ms)"))
    })?;
    let table = lua.create_table_with_capacity(0, 8)?;
    table.raw_set("year", t.year)?;
    table.raw_set("month", t.month)?;
    table.raw_set("day", t.day)?;
    table.raw_set("hour", t.hour)?;
    table.raw_set("min", t.min)?;
    table.raw_set("sec", t.sec)?;
    table.raw_set("wday", t.wday)?;
    table.raw_set("dst", t.dst)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(utc: &str) -> ChicagoTime {
        chicago_time(
            DateTime::parse_from_rfc3339(utc)
                .unwrap()
                .timestamp_millis(),
        )
        .unwrap()
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
        let ms = DateTime::parse_from_rfc3339("2026-07-15T20:00:00Z")
            .unwrap()
            .timestamp_millis();
        let t = chicago_table(&lua, ms).unwrap();
        assert_eq!(t.raw_get::<u32>("hour").unwrap(), 15);
        assert!(t.raw_get::<bool>("dst").unwrap());
        assert!(chicago_table(&lua, i64::MAX).is_err());
    }
}
