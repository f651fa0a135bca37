//! Numbers a trader reads: money in cents and prices on the contract's tick grid, for log lines
//! and `/status`. Sums and averages of `f64` carry noise (`-5.6000000000000005`,
//! `20996.916666666668`, `-0.00`); it is removed here, at the edge, never in the arithmetic.

use std::fmt;

/// Rounded to the cent, with `-0.0` made `0.0` (so nothing ever shows `-0.00`). A value that is
/// not finite is returned as it is.
pub fn cents(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Through the decimal text, so the result is the `f64` nearest to the printed cents and
    // serialises as `-5.6`, not `-5.6000000000000005`.
    format!("{:.2}", (x * 100.0).round() / 100.0)
        .parse::<f64>()
        .map_or(x, |v| v + 0.0)
}

/// The nearest price on the grid of `tick` (for an average price: the nearest tick), as the
/// `f64` nearest to its decimal text. Without a usable tick size (unknown contract, 0) the noise
/// below 1e-9 is removed instead.
pub fn on_grid(price: f64, tick: f64) -> f64 {
    if !price.is_finite() {
        return price;
    }
    let text = match decimals(tick) {
        Some(d) => format!("{:.*}", d, (price / tick).round() * tick),
        None => format!("{:.9}", price),
    };
    text.parse::<f64>().map_or(price, |v| v + 0.0)
}

/// Whether `price` lies on the grid of `tick` (within float noise). Without a usable tick size
/// every finite price does; a price that is not finite never does.
pub fn is_on_grid(price: f64, tick: f64) -> bool {
    if !price.is_finite() {
        return false;
    }
    if !(tick.is_finite() && tick > 0.0) {
        return true;
    }
    let ticks = price / tick;
    (ticks - ticks.round()).abs() < 1e-6
}

/// How many decimals the tick size has (0.25 → 2, 0.1 → 1, 0.03125 → 5, 1 → 0); `None` for a
/// tick size that is not a positive number with at most 9 decimals.
fn decimals(tick: f64) -> Option<usize> {
    if !(tick.is_finite() && tick > 0.0) {
        return None;
    }
    (0..=9).find(|&d| {
        let scaled = tick * 10f64.powi(d as i32);
        (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
    })
}

/// Money as a trader reads it: two decimals, never `-0.00` (`-5.60`, `0.00`, `1250.00`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Money(pub f64);

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", cents(self.0))
    }
}

/// A price of a contract, shown on its tick grid with the tick's decimals (`21000.25`,
/// `21000.00` for a 0.25 tick; `4123.3` for 0.1; `110.03125` for 1/32).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub value: f64,
    pub tick: f64,
}

impl Price {
    pub fn new(value: f64, tick: f64) -> Self {
        Self { value, tick }
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = on_grid(self.value, self.tick);
        match decimals(self.tick) {
            Some(d) if value.is_finite() => write!(f, "{value:.d$}"),
            _ => write!(f, "{value}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_in_cents_and_never_negative_zero() {
        assert_eq!(Money(-5.6000000000000005).to_string(), "-5.60");
        assert_eq!(Money(-0.0).to_string(), "0.00");
        assert_eq!(Money(-0.004).to_string(), "0.00");
        assert_eq!(Money(-1e-9).to_string(), "0.00");
        assert_eq!(Money(1e-9).to_string(), "0.00");
        assert_eq!(Money(-0.006).to_string(), "-0.01");
        assert_eq!(Money(1250.0).to_string(), "1250.00");
        assert_eq!(Money(0.1 + 0.2).to_string(), "0.30");
    }

    #[test]
    fn cents_are_clean_numbers_for_json() {
        assert_eq!(cents(-5.6000000000000005), -5.6);
        assert_eq!(cents(-5.6000000000000005).to_string(), "-5.6");
        assert!(cents(-0.004).is_sign_positive());
        assert!(cents(-0.0).is_sign_positive());
        assert_eq!(cents(0.1 + 0.2), 0.3);
        assert_eq!(serde_json::json!(cents(-0.004)).to_string(), "0.0");
        assert!(cents(f64::NAN).is_nan());
        assert_eq!(cents(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn prices_snap_to_a_quarter_tick() {
        assert_eq!(Price::new(20996.916666666668, 0.25).to_string(), "20997.00");
        assert_eq!(Price::new(21000.25, 0.25).to_string(), "21000.25");
        assert_eq!(Price::new(21000.3749999, 0.25).to_string(), "21000.25");
        assert_eq!(Price::new(21000.0 + 1e-9, 0.25).to_string(), "21000.00");
        assert_eq!(on_grid(20996.916666666668, 0.25), 20997.0);
        assert_eq!(on_grid(21000.12, 0.25), 21000.0);
    }

    #[test]
    fn prices_snap_to_a_tenth_tick_without_noise() {
        // 20996.3 / 0.1 * 0.1 is 20996.300000000003 in f64.
        assert_eq!(on_grid(20996.3, 0.1).to_string(), "20996.3");
        assert_eq!(Price::new(4123.2999999, 0.1).to_string(), "4123.3");
        assert_eq!(Price::new(-0.04, 0.1).to_string(), "0.0");
    }

    #[test]
    fn prices_snap_to_a_thirty_second() {
        assert_eq!(Price::new(110.03125, 0.03125).to_string(), "110.03125");
        assert_eq!(Price::new(110.04, 0.03125).to_string(), "110.03125");
        assert_eq!(Price::new(110.05, 0.03125).to_string(), "110.06250");
        assert_eq!(on_grid(110.05, 0.03125), 110.0625);
    }

    #[test]
    fn grid_membership_ignores_float_noise() {
        assert!(is_on_grid(21000.25, 0.25));
        assert!(is_on_grid(4123.3, 0.1));
        assert!(is_on_grid(110.03125, 0.03125));
        assert!(is_on_grid(-12.5, 0.25));
        assert!(!is_on_grid(21000.13, 0.25));
        assert!(!is_on_grid(4123.35, 0.1));
        assert!(!is_on_grid(f64::NAN, 0.25));
        assert!(is_on_grid(21000.13, 0.0), "no tick size: no grid to be off");
    }

    #[test]
    fn whole_ticks_and_unknown_ticks() {
        assert_eq!(Price::new(42001.4, 1.0).to_string(), "42001");
        // No usable tick: only the float noise goes.
        assert_eq!(Price::new(0.1 + 0.2, 0.0).to_string(), "0.3");
        assert_eq!(
            Price::new(20996.916666666668, f64::NAN).to_string(),
            "20996.916666667"
        );
        assert_eq!(Price::new(f64::NAN, 0.25).to_string(), "NaN");
        assert_eq!(decimals(-0.25), None);
        assert_eq!(decimals(0.005), Some(3));
    }
}
