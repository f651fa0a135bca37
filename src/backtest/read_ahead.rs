//! Reads and decodes recordings on a thread of their own, a few batches ahead of the backtest,
//! so decompression and decoding (a sixth of a backtest's work) overlap the strategies instead
//! of adding to them. Events keep their order and an error arrives where it happened, so the
//! output is the same bytes as a read on the backtest's own thread.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::feed::record::{RecordError, RecordedEvent};

type Item = Result<RecordedEvent, RecordError>;

/// Events per batch: large enough that handing a batch over costs nothing per event, small
/// enough that the first strategy call does not wait long for it.
const BATCH: usize = 4096;
/// Batches decoded ahead: bounds the memory a fast reader can take (a few MiB).
const AHEAD: usize = 4;

/// The events of `inner`, in order, read on a thread that stops when this is dropped.
pub(crate) struct ReadAhead {
    rx: Receiver<Vec<Item>>,
    batch: std::vec::IntoIter<Item>,
}

impl ReadAhead {
    pub(crate) fn new(inner: impl Iterator<Item = Item> + Send + 'static) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(AHEAD);
        std::thread::Builder::new()
            .name("backtest-read".into())
            .spawn(move || read(inner, &tx))?;
        Ok(ReadAhead {
            rx,
            batch: Vec::new().into_iter(),
        })
    }
}

/// Sends `inner` on in batches, up to its end or its first error (a backtest stops there).
fn read(mut inner: impl Iterator<Item = Item>, tx: &SyncSender<Vec<Item>>) {
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        let mut last = true;
        for item in inner.by_ref() {
            let failed = item.is_err();
            batch.push(item);
            if failed {
                break;
            }
            if batch.len() == BATCH {
                last = false;
                break;
            }
        }
        // A closed channel: the backtest stopped reading (it ended early, or failed).
        if batch.is_empty() || tx.send(batch).is_err() || last {
            return;
        }
    }
}

impl Iterator for ReadAhead {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            // Disconnected: the reader sent everything there was.
            self.batch = self.rx.recv().ok()?.into_iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::record::Recorded;

    fn event(i: usize) -> Item {
        Ok(RecordedEvent {
            recv_us: i as i64,
            event: Recorded::Trades(Vec::new()),
        })
    }

    #[test]
    fn every_event_arrives_in_order_across_batches() {
        let n = BATCH * 3 + 17;
        let got: Vec<i64> = ReadAhead::new((0..n).map(event))
            .unwrap()
            .map(|e| e.unwrap().recv_us)
            .collect();
        assert_eq!(got, (0..n as i64).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_arrives_where_it_happened_and_ends_the_stream() {
        let items = (0..10)
            .map(|i| {
                if i == 5 {
                    Err(RecordError::Corrupt {
                        path: "f".into(),
                        why: "bad".into(),
                    })
                } else {
                    event(i)
                }
            })
            .collect::<Vec<_>>();
        let got: Vec<_> = ReadAhead::new(items.into_iter()).unwrap().collect();
        assert_eq!(got.len(), 6);
        assert!(got[..5].iter().all(Result::is_ok));
        assert!(got[5].is_err());
    }

    #[test]
    fn a_reader_stops_when_nobody_reads() {
        let mut r = ReadAhead::new((0..).map(event)).unwrap();
        assert!(r.next().is_some());
        drop(r); // an endless source: the thread must notice the closed channel and return
    }
}
