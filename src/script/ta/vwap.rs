//! Volume-weighted average price since the start of the CME trading day (17:00 Chicago).

use chrono::{DateTime, NaiveDate};

/// `sum(price x volume) / sum(volume)` over the updates of the current trading day.
#[derive(Debug, Clone, Default)]
pub struct Vwap {
    day: Option<NaiveDate>,
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
        let day = DateTime::from_timestamp_millis(time_ms).map(crate::cme::trading_day);
        if day != self.day {
            *self = Vwap {
                day,
                ..Vwap::default()
            };
        }
        self.pv += price * volume;
        self.volume += volume;
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.volume > 0.0).then(|| self.pv / self.volume)
    }
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
    fn starts_over_at_17_00_chicago() {
        let mut v = Vwap::new();
        v.update(10.0, 5.0, BEFORE_ROLL);
        assert_eq!(v.update(30.0, 1.0, AT_ROLL), Some(30.0));
        assert_eq!(v.value(), Some(30.0));
    }
}
