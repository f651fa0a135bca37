//! Highest and lowest of the last `n` values, the current one included (TA-Lib's MAX/MIN).

use super::window::Window;

/// The extreme of a window: the highest, or with `lowest` the lowest.
#[derive(Debug, Clone)]
pub struct Extreme {
    window: Window,
    lowest: bool,
    /// The extreme and how many updates ago it came (0 = the latest).
    best: f64,
    age: usize,
}

impl Extreme {
    pub fn highest(n: usize) -> Self {
        Self::new(n, false)
    }

    pub fn lowest(n: usize) -> Self {
        Self::new(n, true)
    }

    fn new(n: usize, lowest: bool) -> Self {
        Extreme {
            window: Window::new(n),
            lowest,
            best: f64::NAN,
            age: 0,
        }
    }

    fn beats(&self, x: f64, best: f64) -> bool {
        if self.lowest { x <= best } else { x >= best }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        let first = self.window.filled() == 0;
        self.window.push(x);
        self.age += 1;
        if first || self.beats(x, self.best) {
            self.best = x;
            self.age = 0;
        } else if self.age >= self.window.period() {
            // The extreme left the window: find the new one (amortized O(1) on a random walk,
            // as TA-Lib does it).
            let n = self.window.period();
            for (i, v) in self.window.iter().enumerate() {
                if i == 0 || self.beats(v, self.best) {
                    self.best = v;
                    self.age = n - 1 - i;
                }
            }
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        self.window.is_full().then_some(self.best)
    }

    pub fn period(&self) -> usize {
        self.window.period()
    }
}

/// `ta.highest` and `ta.lowest` are distinct types to Lua (each names itself in errors).
macro_rules! side {
    ($t:ident, $make:ident) => {
        #[derive(Debug, Clone)]
        pub struct $t(Extreme);

        impl $t {
            pub fn new(n: usize) -> Self {
                $t(Extreme::$make(n))
            }

            pub fn update(&mut self, x: f64) -> Option<f64> {
                self.0.update(x)
            }

            pub fn value(&self) -> Option<f64> {
                self.0.value()
            }

            pub fn period(&self) -> usize {
                self.0.period()
            }
        }
    };
}

side!(Highest, highest);
side!(Lowest, lowest);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_includes_the_current_value_and_forgets_old_ones() {
        let mut h = Extreme::highest(3);
        let got: Vec<_> = [5.0, 1.0, 2.0, 3.0, 1.0, 0.0, 9.0]
            .iter()
            .map(|&x| h.update(x))
            .collect();
        assert_eq!(
            got,
            [
                None,
                None,
                Some(5.0),
                Some(3.0),
                Some(3.0),
                Some(3.0),
                Some(9.0)
            ]
        );
    }

    #[test]
    fn lowest_mirrors_highest() {
        let mut l = Extreme::lowest(2);
        let got: Vec<_> = [5.0, 1.0, 2.0, 3.0, 3.0]
            .iter()
            .map(|&x| l.update(x))
            .collect();
        assert_eq!(got, [None, Some(1.0), Some(1.0), Some(2.0), Some(3.0)]);
    }

    #[test]
    fn matches_a_scan_of_the_window_on_a_long_walk() {
        let (mut h, mut l) = (Extreme::highest(5), Extreme::lowest(5));
        let mut xs = Vec::new();
        let mut x = 100.0;
        for i in 0..2000u64 {
            x += ((i * 7919 % 11) as f64 - 5.0) * 0.25;
            xs.push(x);
            let (hi, lo) = (h.update(x), l.update(x));
            if xs.len() >= 5 {
                let w = &xs[xs.len() - 5..];
                assert_eq!(hi, w.iter().copied().reduce(f64::max));
                assert_eq!(lo, w.iter().copied().reduce(f64::min));
            }
        }
    }
}
