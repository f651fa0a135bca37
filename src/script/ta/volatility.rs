//! Volatility as TA-Lib defines it: ATR with Wilder's smoothing of the true range, and the
//! population standard deviation that STDDEV and BBANDS use.

use super::averages::Sma;
use super::window::Window;

/// Average true range over `n` bars. The true range needs the previous close, so the first
/// bar gives none; the first ATR is the mean of the first `n` true ranges (bars 2 to n + 1),
/// then `atr = (atr (n - 1) + tr) / n`.
#[derive(Debug, Clone)]
pub struct Atr {
    n: usize,
    prev_close: Option<f64>,
    ranges: usize,
    sum: f64,
    value: Option<f64>,
}

impl Atr {
    pub fn new(n: usize) -> Self {
        Atr {
            n,
            prev_close: None,
            ranges: 0,
            sum: 0.0,
            value: None,
        }
    }

    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let pc = self.prev_close.replace(close)?;
        let tr = (high - low).max((pc - high).abs()).max((pc - low).abs());
        let n = self.n as f64;
        self.value = match self.value {
            Some(atr) => Some((atr * (n - 1.0) + tr) / n),
            None => {
                self.ranges += 1;
                self.sum += tr;
                (self.ranges == self.n).then(|| self.sum / n)
            }
        };
        self.value
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Population standard deviation of a full window around its mean, in two passes: the
/// textbook `E[x²] - E[x]²` loses most of its digits at futures prices (20 000² carries
/// about eight fewer significant digits than the deviation needs).
fn deviation(window: &Window, mean: f64) -> f64 {
    let n = window.period() as f64;
    let sq = window.iter().fold(0.0, |s, x| s + (x - mean) * (x - mean));
    (sq / n).sqrt()
}

/// Standard deviation of the last `n` values (population: divided by `n`).
#[derive(Debug, Clone)]
pub struct Stdev {
    mean: Sma,
    value: Option<f64>,
}

impl Stdev {
    pub fn new(n: usize) -> Self {
        Stdev {
            mean: Sma::new(n),
            value: None,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.value = self
            .mean
            .update(x)
            .map(|mean| deviation(self.mean.window(), mean));
        self.value
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }

    pub fn period(&self) -> usize {
        self.mean.window().period()
    }
}

/// Bollinger bands: the SMA of the last `n` values, `k` standard deviations above and below.
#[derive(Debug, Clone)]
pub struct Bbands {
    mean: Sma,
    k: f64,
    value: Option<[f64; 3]>,
}

impl Bbands {
    pub fn new(n: usize, k: f64) -> Self {
        Bbands {
            mean: Sma::new(n),
            k,
            value: None,
        }
    }

    /// `[upper, middle, lower]`.
    pub fn update(&mut self, x: f64) -> Option<[f64; 3]> {
        self.value = self.mean.update(x).map(|mid| {
            let band = self.k * deviation(self.mean.window(), mid);
            [mid + band, mid, mid - band]
        });
        self.value
    }

    pub fn value(&self) -> Option<[f64; 3]> {
        self.value
    }

    pub fn period(&self) -> usize {
        self.mean.window().period()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_starts_after_n_true_ranges_then_smooths() {
        let mut a = Atr::new(2);
        assert_eq!(a.update(10.0, 8.0, 9.0), None);
        // TR = max(11 - 9, |9 - 11|, |9 - 9|) = 2.
        assert_eq!(a.update(11.0, 9.0, 10.0), None);
        // TR = max(1, |10 - 10.5|, |10 - 9.5|) = 1 -> mean 1.5.
        assert_eq!(a.update(10.5, 9.5, 10.0), Some(1.5));
        // A gap: TR = |10 - 14| = 4 -> (1.5 + 4) / 2.
        assert_eq!(a.update(14.0, 13.0, 13.5), Some(2.75));
    }

    #[test]
    fn stdev_is_the_population_deviation() {
        let mut s = Stdev::new(4);
        for x in [2.0, 4.0, 4.0] {
            assert_eq!(s.update(x), None);
        }
        // Mean 4, squared deviations 4 + 0 + 0 + 4 -> sqrt(8 / 4).
        assert_eq!(s.update(6.0), Some(2.0_f64.sqrt()));
        let mut one = Stdev::new(1);
        assert_eq!(one.update(3.0), Some(0.0));
    }

    #[test]
    fn deviation_keeps_its_digits_at_futures_prices() {
        let mut s = Stdev::new(2);
        s.update(20_000.25);
        // Half the spread, exactly.
        assert_eq!(s.update(20_000.5), Some(0.125));
    }

    #[test]
    fn bbands_are_k_deviations_around_the_mean() {
        let mut b = Bbands::new(2, 2.0);
        b.update(1.0);
        assert_eq!(b.update(3.0), Some([4.0, 2.0, 0.0]));
    }
}
