//! Momentum as TA-Lib defines it: RSI with Wilder's smoothing, and MACD with TA-Lib's
//! alignment of the fast and slow EMAs.

use super::averages::Ema;
use super::window::Window;

/// Relative strength index over `n` changes: the first average gain and loss are plain means
/// of the first `n` changes, then `avg = (avg (n - 1) + latest) / n`.
#[derive(Debug, Clone)]
pub struct Rsi {
    n: usize,
    prev: Option<f64>,
    changes: usize,
    gain: f64,
    loss: f64,
    value: Option<f64>,
}

impl Rsi {
    pub fn new(n: usize) -> Self {
        Rsi {
            n,
            prev: None,
            changes: 0,
            gain: 0.0,
            loss: 0.0,
            value: None,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        let prev = self.prev.replace(x)?;
        let change = x - prev;
        let n = self.n as f64;
        self.changes += 1;
        if self.changes > self.n {
            // TA-Lib's order of operations, so results agree to the bit.
            self.gain *= n - 1.0;
            self.loss *= n - 1.0;
        }
        if change < 0.0 {
            self.loss -= change;
        } else {
            self.gain += change;
        }
        if self.changes < self.n {
            return None;
        }
        self.gain /= n;
        self.loss /= n;
        let total = self.gain + self.loss;
        // No movement at all: TA-Lib answers 0.
        self.value = Some(if total == 0.0 {
            0.0
        } else {
            100.0 * (self.gain / total)
        });
        self.value
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// MACD: fast EMA minus slow EMA, its EMA as the signal, and their difference as the
/// histogram. As in TA-Lib the periods are swapped when `fast > slow`, both EMAs start at the
/// `slow`-th value (the fast one seeded with the mean of the `fast` values ending there), and
/// the three results appear once the signal has its first `signal` MACD values.
#[derive(Debug, Clone)]
pub struct Macd {
    slow_n: usize,
    seen: usize,
    /// The last `fast` values, to seed the fast EMA; dropped once seeded.
    recent: Option<Window>,
    fast: Ema,
    slow: Ema,
    signal: Ema,
    value: Option<[f64; 3]>,
}

impl Macd {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        let (fast, slow) = if fast > slow {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Macd {
            slow_n: slow,
            seen: 0,
            recent: Some(Window::new(fast)),
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
            value: None,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<[f64; 3]> {
        let slow = self.slow.update(x);
        match self.recent.as_mut() {
            Some(recent) => {
                recent.push(x);
                self.seen += 1;
                if self.seen == self.slow_n {
                    self.fast.seed(recent.sum() / recent.period() as f64);
                    self.recent = None;
                }
            }
            None => {
                self.fast.update(x);
            }
        }
        let (Some(slow), Some(fast)) = (slow, self.fast.value()) else {
            return None;
        };
        let macd = fast - slow;
        self.value = self
            .signal
            .update(macd)
            .map(|signal| [macd, signal, macd - signal]);
        self.value
    }

    pub fn value(&self) -> Option<[f64; 3]> {
        self.value
    }

    /// The fast period (after the swap), which is the window kept while warming up.
    pub fn fast_period(&self) -> usize {
        self.recent.as_ref().map_or(0, Window::period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsi_first_value_comes_after_n_changes() {
        let mut r = Rsi::new(2);
        assert_eq!(r.update(10.0), None);
        assert_eq!(r.update(11.0), None);
        // Changes +1, -1: gain 0.5, loss 0.5.
        assert_eq!(r.update(10.0), Some(50.0));
        // Wilder: gain (0.5 + 2) / 2 = 1.25, loss 0.25.
        let v = r.update(12.0).unwrap();
        assert!((v - 100.0 * 1.25 / 1.5).abs() < 1e-12);
    }

    #[test]
    fn rsi_of_a_flat_series_is_zero_as_in_ta_lib() {
        let mut r = Rsi::new(3);
        let got: Vec<_> = [5.0; 5].iter().map(|&x| r.update(x)).collect();
        assert_eq!(got, [None, None, None, Some(0.0), Some(0.0)]);
    }

    #[test]
    fn macd_seeds_the_fast_ema_where_the_slow_one_starts() {
        let mut m = Macd::new(2, 3, 1);
        assert_eq!(m.update(1.0), None);
        assert_eq!(m.update(2.0), None);
        // Slow: mean(1, 2, 3) = 2; fast: mean(2, 3) = 2.5; signal of 1 is the MACD itself.
        assert_eq!(m.update(3.0), Some([0.5, 0.5, 0.0]));
    }

    #[test]
    fn macd_swaps_periods_given_backwards() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let (mut a, mut b) = (Macd::new(2, 4, 2), Macd::new(4, 2, 2));
        for x in xs {
            assert_eq!(a.update(x), b.update(x));
        }
        assert!(a.value().is_some());
    }
}
