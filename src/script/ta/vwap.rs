//! Volume-weighted average price since the start of the CME trading day (17:00 Chicago).

use chrono::{DateTime, NaiveDate, Utc};

/// `sum(price x volume) / sum(volume)` over the updates of the current trading day.
#[derive(Debug, Clone, Default)]
pub struct Vwap {
    day: Option<NaiveDate>,
    /// The day's span in ms, `[start, end)`: updates inside it skip the time-zone arithmetic
    /// (a third of an update's cost).
    span: (i64, i64),
    pv: f64,
    volume: f64,
}

impl Vwap {
    pub fn new() -> Self {
        Self::default()
    }

    /// `time_ms` since the Unix epoch decides the trading day; a new day starts over. `None`
    /// until the day has traded some volume. The caller checks that `time_ms` is in range.
    pub fn update(&mut self, price: f64, volume: f64, time_ms: i64) -> Option<f64> {
        if !(self.span.0..self.span.1).contains(&time_ms) {
            let at = DateTime::from_timestamp_millis(time_ms);
            let day = at.map(crate::cme::trading_day);
            if day != self.day {
                self.pv = 0.0;
                self.volume = 0.0;
            }
            self.day = day;
            self.span = at.map_or((0, 0), span);
        }
        self.pv += price * volume;
        self.volume += volume;
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.volume > 0.0).then(|| self.pv / self.volume)
    }
}

/// The trading day holding `at`, in ms: a day lasts 23 to 25 hours (daylight saving), so 25
/// hours after its start is always inside the next one.
fn span(at: DateTime<Utc>) -> (i64, i64) {
    let (start, end) = crate::cme::trading_day_span(at);
    (start.timestamp_millis(), end.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-05 (winter, UTC-6): 16:59 and 17:00 Chicago are 22:59 and 23:00 UTC.
    const BEFORE_ROLL: i64 = 1_772_751_540_000;
    const AT_ROLL: i64 = 1_772_751_600_000;

    #[test]
    fn weights_prices_by_volume_within_a_day() {
        let mut v = Vwap::new();
        assert_eq!(v.update(10.0, 0.0, BEFORE_ROLL - 60_000), None);
        assert_eq!(v.update(10.0, 1.0, BEFORE_ROLL - 30_000), Some(10.0));
        assert_eq!(v.update(20.0, 3.0, BEFORE_ROLL), Some(17.5));
    }

    #[test]
    fn the_cached_day_span_matches_the_calendar_across_daylight_saving() {
        // 2026-03-08 (spring forward) and 2026-11-01 (fall back): 23- and 25-hour days.
        for start in [1_772_800_000_000_i64, 1_793_400_000_000] {
            for h in 0..24 * 6 {
                let at = DateTime::from_timestamp_millis(start + h * 1_800_000).unwrap();
                let (s, e) = span(at);
                let t = at.timestamp_millis();
                assert!(s <= t && t < e, "{at}");
                let day = crate::cme::trading_day(at);
                let before = DateTime::from_timestamp_millis(s - 1).unwrap();
                let last = DateTime::from_timestamp_millis(e - 1).unwrap();
                let after = DateTime::from_timestamp_millis(e).unwrap();
                assert_eq!(crate::cme::trading_day(last), day, "{at}");
                assert_ne!(crate::cme::trading_day(before), day, "{at}");
                assert_ne!(crate::cme::trading_day(after), day, "{at}");
            }
        }
    }

    #[test]
    fn time_going_back_a_day_starts_over_too() {
        let mut v = Vwap::new();
        v.update(10.0, 5.0, AT_ROLL);
        assert_eq!(v.update(30.0, 1.0, BEFORE_ROLL), Some(30.0));
    }

    #[test]
    fn starts_over_at_17_00_chicago() {
        let mut v = Vwap::new();
        v.update(10.0, 5.0, BEFORE_ROLL);
        assert_eq!(v.update(30.0, 1.0, AT_ROLL), Some(30.0));
        assert_eq!(v.value(), Some(30.0));
    }
}
