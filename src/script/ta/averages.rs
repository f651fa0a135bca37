//! Moving averages as TA-Lib defines them: SMA, EMA seeded with the SMA of its first `n`
//! values, and WMA with weights `1..=n` (newest heaviest).

use super::window::Window;

/// Running sums drift by a rounding error per update; summing the window again once per `n`
/// updates keeps them exact to the last bits over weeks of ticks, at O(1) amortized cost.
fn resum_due(since: &mut usize, n: usize) -> bool {
    *since += 1;
    if *since >= n {
        *since = 0;
        true
    } else {
        false
    }
}

/// Simple moving average of the last `n` values.
#[derive(Debug, Clone)]
pub struct Sma {
    window: Window,
    sum: f64,
    since_resum: usize,
}

impl Sma {
    pub fn new(n: usize) -> Self {
        Sma {
            window: Window::new(n),
            sum: 0.0,
            since_resum: 0,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        let n = self.window.period();
        match self.window.push(x) {
            Some(old) => {
                if resum_due(&mut self.since_resum, n) {
                    self.sum = self.window.sum();
                } else {
                    self.sum += x - old;
                }
            }
            None => self.sum += x,
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        self.window
            .is_full()
            .then(|| self.sum / self.window.period() as f64)
    }

    /// The window the average is over (for the deviation of the same values).
    pub fn window(&self) -> &Window {
        &self.window
    }
}

/// Exponential moving average, `k = 2 / (n + 1)`, seeded at the `n`-th value with the SMA of
/// the first `n` (TA-Lib's default, not MetaStock's seed-with-the-first-value).
#[derive(Debug, Clone)]
pub struct Ema {
    n: usize,
    k: f64,
    seen: usize,
    sum: f64,
    value: Option<f64>,
}

impl Ema {
    pub fn new(n: usize) -> Self {
        Ema {
            n,
            k: 2.0 / (n as f64 + 1.0),
            seen: 0,
            sum: 0.0,
            value: None,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.value = match self.value {
            // TA-Lib's form, so results agree to the bit.
            Some(prev) => Some((x - prev) * self.k + prev),
            None => {
                self.seen += 1;
                self.sum += x;
                (self.seen == self.n).then(|| self.sum / self.n as f64)
            }
        };
        self.value
    }

    /// Starts the average at `seed` (MACD seeds its fast EMA where the slow one starts).
    pub fn seed(&mut self, seed: f64) {
        self.value = Some(seed);
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Weighted moving average: the newest of the last `n` values weighs `n`, the oldest 1,
/// divided by `n (n + 1) / 2`.
#[derive(Debug, Clone)]
pub struct Wma {
    window: Window,
    /// Sum of the window's values.
    plain: f64,
    /// Sum of weight x value.
    weighted: f64,
    since_resum: usize,
}

impl Wma {
    pub fn new(n: usize) -> Self {
        Wma {
            window: Window::new(n),
            plain: 0.0,
            weighted: 0.0,
            since_resum: 0,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        let n = self.window.period();
        match self.window.push(x) {
            // Every weight drops by one (the oldest to zero), the new value weighs n.
            Some(old) => {
                if resum_due(&mut self.since_resum, n) {
                    self.resum();
                } else {
                    self.weighted += n as f64 * x - self.plain;
                    self.plain += x - old;
                }
            }
            // Filling up: the k-th value will weigh k once the window is full.
            None => {
                self.plain += x;
                self.weighted += self.window.filled() as f64 * x;
            }
        }
        self.value()
    }

    fn resum(&mut self) {
        let (mut plain, mut weighted) = (0.0, 0.0);
        for (i, x) in self.window.iter().enumerate() {
            plain += x;
            weighted += (i + 1) as f64 * x;
        }
        self.plain = plain;
        self.weighted = weighted;
    }

    pub fn period(&self) -> usize {
        self.window.period()
    }

    pub fn value(&self) -> Option<f64> {
        let n = self.window.period() as f64;
        self.window
            .is_full()
            .then(|| self.weighted / (n * (n + 1.0) / 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut f: impl FnMut(f64) -> Option<f64>, xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter().map(|&x| f(x)).collect()
    }

    #[test]
    fn sma_is_nil_until_n_values_then_the_mean_of_the_last_n() {
        let mut s = Sma::new(3);
        let got = run(|x| s.update(x), &[1.0, 2.0, 3.0, 4.0, 8.0]);
        assert_eq!(got, [None, None, Some(2.0), Some(3.0), Some(5.0)]);
        assert_eq!(s.value(), Some(5.0));
    }

    #[test]
    fn ema_is_seeded_with_the_sma_of_the_first_n() {
        let mut e = Ema::new(3);
        let got = run(|x| e.update(x), &[1.0, 2.0, 3.0, 5.0]);
        // k = 0.5: seed 2, then (5 - 2) * 0.5 + 2.
        assert_eq!(got, [None, None, Some(2.0), Some(3.5)]);
    }

    #[test]
    fn ema_of_one_is_the_value() {
        let mut e = Ema::new(1);
        assert_eq!(run(|x| e.update(x), &[4.0, 6.0]), [Some(4.0), Some(6.0)]);
    }

    #[test]
    fn wma_weighs_the_newest_most() {
        let mut w = Wma::new(3);
        let got = run(|x| w.update(x), &[1.0, 2.0, 3.0, 6.0]);
        // (1 + 4 + 9) / 6, then (2 + 6 + 18) / 6.
        assert_eq!(got, [None, None, Some(14.0 / 6.0), Some(26.0 / 6.0)]);
    }

    #[test]
    fn running_sums_agree_with_summing_the_window_after_many_updates() {
        let (mut s, mut w) = (Sma::new(7), Wma::new(7));
        let mut x = 20_000.0_f64;
        for i in 0..100_000u64 {
            x += ((i * 7919 % 13) as f64 - 6.0) * 0.25;
            s.update(x);
            w.update(x);
        }
        let last: Vec<f64> = s.window().iter().collect();
        let mean = last.iter().sum::<f64>() / 7.0;
        let wmean = last
            .iter()
            .enumerate()
            .map(|(i, x)| (i + 1) as f64 * x)
            .sum::<f64>()
            / 28.0;
        assert!((s.value().unwrap() - mean).abs() <= 1e-12 * mean);
        assert!((w.value().unwrap() - wmean).abs() <= 1e-12 * wmean);
    }
}
