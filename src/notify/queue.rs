//! A bounded queue per target that never makes the producer wait: when full, the oldest notice
//! goes and is counted, and the consumer learns how many went.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Notices waiting for one target.
#[derive(Debug)]
pub struct DropOldest<T> {
    // A std mutex: held for a push or a pop, never across an await.
    inner: Mutex<Inner<T>>,
    ready: Notify,
    capacity: usize,
}

#[derive(Debug)]
struct Inner<T> {
    items: VecDeque<T>,
    /// Dropped since the consumer last took an item.
    dropped: u64,
    /// Dropped since the queue was made.
    dropped_total: u64,
}

impl<T> DropOldest<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::with_capacity(capacity.min(64)),
                dropped: 0,
                dropped_total: 0,
            }),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `item`, dropping the oldest when full. Never waits.
    pub fn push(&self, item: T) {
        {
            let mut q = self.lock();
            if q.items.len() >= self.capacity {
                q.items.pop_front();
                q.dropped += 1;
                q.dropped_total += 1;
            }
            q.items.push_back(item);
        }
        self.ready.notify_one();
    }

    /// The oldest item, and how many were dropped since the last `pop`; waits while empty.
    pub async fn pop(&self) -> (T, u64) {
        loop {
            if let Some(got) = self.try_pop() {
                return got;
            }
            self.ready.notified().await;
        }
    }

    pub fn try_pop(&self) -> Option<(T, u64)> {
        let mut q = self.lock();
        let item = q.items.pop_front()?;
        Some((item, std::mem::take(&mut q.dropped)))
    }

    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dropped_total(&self) -> u64 {
        self.lock().dropped_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_and_says_how_many() {
        let q = DropOldest::new(3);
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.try_pop(), Some((2, 2)));
        assert_eq!(q.try_pop(), Some((3, 0)));
        assert_eq!(q.dropped_total(), 2);
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let q = std::sync::Arc::new(DropOldest::new(2));
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.pop().await });
        tokio::task::yield_now().await;
        q.push("x");
        assert_eq!(waiter.await.unwrap(), ("x", 0));
    }
}
