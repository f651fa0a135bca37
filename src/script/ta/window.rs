//! The last `n` values of a series, oldest first: the ring every windowed indicator keeps.

/// A fixed-capacity ring of the most recent values.
#[derive(Debug, Clone)]
pub struct Window {
    buf: Vec<f64>,
    n: usize,
    /// Where the next value goes; once full, also where the oldest value is.
    next: usize,
    full: bool,
}

impl Window {
    pub fn new(n: usize) -> Self {
        Window {
            buf: Vec::with_capacity(n),
            n,
            next: 0,
            full: false,
        }
    }

    pub fn period(&self) -> usize {
        self.n
    }

    /// How many values it holds (`period()` once full).
    pub fn filled(&self) -> usize {
        self.buf.len()
    }

    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Adds `x`, returning the value it pushed out once the window is full.
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let n = self.n;
        if !self.full {
            self.buf.push(x);
            self.next = (self.next + 1) % n;
            self.full = self.buf.len() == n;
            return None;
        }
        let old = std::mem::replace(&mut self.buf[self.next], x);
        self.next = (self.next + 1) % n;
        Some(old)
    }

    /// The values, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let (newer, older) = if self.full {
            self.buf.split_at(self.next)
        } else {
            (&self.buf[..], &[][..])
        };
        older.iter().chain(newer).copied()
    }

    /// The sum, added oldest first as TA-Lib adds a period's values.
    pub fn sum(&self) -> f64 {
        self.iter().fold(0.0, |s, x| s + x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_n_oldest_first() {
        let mut w = Window::new(3);
        assert_eq!(w.push(1.0), None);
        assert_eq!(w.push(2.0), None);
        assert!(!w.is_full());
        assert_eq!(w.push(3.0), None);
        assert!(w.is_full());
        assert_eq!(w.iter().collect::<Vec<_>>(), [1.0, 2.0, 3.0]);
        assert_eq!(w.push(4.0), Some(1.0));
        assert_eq!(w.push(5.0), Some(2.0));
        assert_eq!(w.iter().collect::<Vec<_>>(), [3.0, 4.0, 5.0]);
        assert_eq!(w.sum(), 12.0);
    }

    #[test]
    fn a_window_of_one_holds_the_latest() {
        let mut w = Window::new(1);
        assert_eq!(w.push(7.0), None);
        assert_eq!(w.push(8.0), Some(7.0));
        assert_eq!(w.iter().collect::<Vec<_>>(), [8.0]);
    }
}
