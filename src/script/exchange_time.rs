//! Exchange time for strategies: `bot.chicago_time()`, the CME's America/Chicago wall clock
//! with daylight saving applied, so a session cutoff is written as the exchange states it.

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::America::Chicago;
use mlua::{Lua, Table};

/// The wall-clock fields of `ms` (ms since the epoch) in Chicago: `year`, `month`, `day`,
/// `hour`, `min`, `sec`, `wday` (1 = Sunday, as `os.date` counts) and `dst`.
pub fn chicago_table(lua: &Lua, ms: i64) -> mlua::Result<Table> {
    let utc = DateTime::from_timestamp_millis(ms).ok_or_else(|| {
        mlua::Error::runtime(format!("bot.chicago_time: clock out of range ({ms} ms)"))
    })?;
    let t = utc.with_timezone(&Chicago);
    let table = lua.create_table_with_capacity(0, 8)?;
    table.raw_set("year", t.year())?;
    table.raw_set("month", t.month())?;
    table.raw_set("day", t.day())?;
    table.raw_set("hour", t.hour())?;
    table.raw_set("min", t.minute())?;
    table.raw_set("sec", t.second())?;
    table.raw_set("wday", t.weekday().number_from_sunday())?;
    // CDT is UTC-5, CST UTC-6.
    let offset = chrono::Offset::fix(t.offset()).local_minus_utc();
    table.raw_set("dst", offset == -5 * 3600)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(utc: &str) -> Table {
        let lua = Lua::new();
        let ms = DateTime::parse_from_rfc3339(utc)
            .unwrap()
            .timestamp_millis();
        chicago_table(&lua, ms).unwrap()
    }

    #[test]
    fn summer_and_winter_offsets_follow_daylight_saving() {
        // 20:00 UTC is 15:00 CDT in July and 14:00 CST in January.
        let summer = at("2026-07-15T20:00:00Z");
        assert_eq!(summer.get::<u32>("hour").unwrap(), 15);
        assert!(summer.get::<bool>("dst").unwrap());
        let winter = at("2026-01-15T20:00:00Z");
        assert_eq!(winter.get::<u32>("hour").unwrap(), 14);
        assert!(!winter.get::<bool>("dst").unwrap());
        assert_eq!(winter.get::<u32>("wday").unwrap(), 5); // a Thursday
    }

    #[test]
    fn the_spring_forward_day_changes_offset_at_two_am() {
        // 2026-03-08: 07:59 UTC is 01:59 CST; 08:00 UTC is 03:00 CDT.
        assert_eq!(at("2026-03-08T07:59:00Z").get::<u32>("hour").unwrap(), 1);
        assert_eq!(at("2026-03-08T08:00:00Z").get::<u32>("hour").unwrap(), 3);
    }
}
