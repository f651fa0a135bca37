//! The recorder: a thread of its own that writes what the market feed taps off its quote path,
//! one file per contract per CME trading day. The feed side ([`RecordTap`]) only stamps the
//! receive time and offers the event to a bounded queue: when the recorder falls behind, events
//! are dropped and counted, never waited for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate};
use prometheus_client::metrics::counter::Counter;

use super::error::RecordError;
use super::file::{Flushed, MAX_FRAME_RAW, RecordFile};
use super::format::Recorded;
use crate::feed::events::MarketEvent;

/// Events that may wait for the recorder thread: seconds of the busiest contracts.
pub const DEFAULT_RECORD_QUEUE: usize = 65_536;

/// Where and how much to record.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// `RECORD_DIR`: files go to `dir/YYYY-MM-DD/<contract>.mtr.zst`.
    pub dir: PathBuf,
    /// `RECORD_MAX_MB`: a file stops growing at this many bytes (per contract per day).
    pub max_bytes: u64,
    /// Events that may wait for the recorder before new ones are dropped.
    pub queue: usize,
    /// A complete frame is written at least this often: what a crash can lose.
    pub flush_every: Duration,
}

impl RecorderConfig {
    /// 1 GiB per file, [`DEFAULT_RECORD_QUEUE`], a frame every second.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RecorderConfig {
            dir: dir.into(),
            max_bytes: 1024 << 20,
            queue: DEFAULT_RECORD_QUEUE,
            flush_every: Duration::from_secs(1),
        }
    }
}

/// What the recorder counts (the `/metrics` families `moontick_record_*`).
#[derive(Debug, Clone, Default)]
pub struct RecordCounters {
    /// Events written to disk.
    pub written: Counter,
    /// Events dropped because the recorder's queue was full.
    pub dropped_queue: Counter,
    /// Events dropped because their file had reached `RECORD_MAX_MB`.
    pub dropped_cap: Counter,
    /// Events dropped because a file could not be opened or written.
    pub dropped_io: Counter,
}

pub(super) enum Msg {
    Event(i64, Recorded),
    /// Write everything out and end.
    Stop,
}

/// The feed's end of the recorder: cheap to clone, never blocks.
#[derive(Clone)]
pub struct RecordTap {
    tx: SyncSender<Msg>,
    dropped: Counter,
    warned: Arc<AtomicBool>,
}

impl std::fmt::Debug for RecordTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordTap")
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl RecordTap {
    /// A tap whose queue nobody reads (tests of the drop policy).
    #[cfg(test)]
    pub(super) fn detached(bound: usize) -> (Self, Receiver<Msg>) {
        let (tx, rx) = mpsc::sync_channel(bound);
        let tap = RecordTap {
            tx,
            dropped: Counter::default(),
            warned: Arc::new(AtomicBool::new(false)),
        };
        (tap, rx)
    }

    /// Events dropped so far because the recorder was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Offers a market event to the recorder, stamped with the time now. Quotes, trades and
    /// depth are recorded; stale/resumed reports are not market data.
    pub fn record(&self, event: &MarketEvent) {
        let recorded = match event {
            MarketEvent::Quote(q) => Recorded::Quote(q.clone()),
            MarketEvent::Trades(t) => Recorded::Trades(t.clone()),
            MarketEvent::Depth(d) => Recorded::Depth(d.clone()),
            MarketEvent::Stale { .. } | MarketEvent::Resumed { .. } => return,
        };
        match self.tx.try_send(Msg::Event(now_us(), recorded)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.inc();
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the recorder has fallen behind (disk too slow?): market events are \
                         dropped from the recording, never delayed; further drops are counted \
                         in moontick_record_dropped_total{{reason=\"queue\"}}"
                    );
                }
            }
            // The recorder has stopped (shutdown): nothing to record to.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The recording thread and its tap.
#[derive(Debug)]
pub struct Recorder {
    tap: RecordTap,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
}

impl Recorder {
    /// Checks that `config.dir` can be written, then starts the thread.
    ///
    /// # Errors
    /// The directory cannot be created or written.
    pub fn start(config: RecorderConfig, counters: RecordCounters) -> Result<Self, RecordError> {
        check_writable(&config.dir)?;
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        let tap = RecordTap {
            tx,
            dropped: counters.dropped_queue.clone(),
            warned: Arc::new(AtomicBool::new(false)),
        };
        let dir = config.dir.clone();
        let thread = std::thread::Builder::new()
            .name("moontick-recorder".into())
            .spawn(move || Writer::new(config, counters).run(rx))
            .map_err(|source| RecordError::Io {
                path: dir.clone(),
                cause: source,
            })?;
        Ok(Recorder {
            tap,
            thread: Some(thread),
            dir,
        })
    }

    /// The handle the market feed records through ([`crate::feed::MarketFeedConfig::record`]).
    pub fn tap(&self) -> RecordTap {
        self.tap.clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes out everything queued and waits for the thread to end.
    pub async fn finish(mut self) {
        let tx = self.tap.tx.clone();
        let thread = self.thread.take();
        // Blocking calls (a full queue, the join): off the async threads.
        let _ = tokio::task::spawn_blocking(move || {
            let _ = tx.send(Msg::Stop);
            if let Some(t) = thread {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Not finished: ask the thread to write out and end, without waiting for it.
        if self.thread.is_some() {
            let _ = self.tap.tx.try_send(Msg::Stop);
        }
    }
}

fn check_writable(dir: &Path) -> Result<(), RecordError> {
    let io_err = |source| RecordError::Io {
        path: dir.to_owned(),
        cause: source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let probe = dir.join(format!(".moontick-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(io_err)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// A contract's file for the trading day its events fall in.
struct Slot {
    day: NaiveDate,
    /// `None` when it could not be opened (retried at most every [`REOPEN_AFTER`]).
    file: Option<RecordFile>,
    failed_at: Option<Instant>,
}

const REOPEN_AFTER: Duration = Duration::from_secs(10);
/// How often the recorder looks at its queue.
const POLL: Duration = Duration::from_millis(20);

/// The thread's state.
pub(super) struct Writer {
    config: RecorderConfig,
    counters: RecordCounters,
    slots: HashMap<Arc<str>, Slot>,
    /// One error line for all disk trouble; the counters say the rest.
    io_warned: bool,
    /// The trading day last seen and its span in µs since the epoch, `[from, to)`.
    day_span: Option<(i64, i64, NaiveDate)>,
}

impl Writer {
    pub(super) fn new(config: RecorderConfig, counters: RecordCounters) -> Self {
        Writer {
            config,
            counters,
            slots: HashMap::new(),
            io_warned: false,
            day_span: None,
        }
    }

    /// Polls the queue rather than blocking on it: a recorder asleep in `recv` would have every
    /// quote's `try_send` wake it with a syscall on the feed's task; polling keeps the feed's
    /// cost a few atomic operations. [`POLL`] × the queue bound is far above any feed's rate.
    fn run(mut self, rx: Receiver<Msg>) {
        let mut next_flush = Instant::now() + self.config.flush_every;
        loop {
            let mut stop = false;
            loop {
                match rx.try_recv() {
                    Ok(Msg::Event(recv_us, event)) => self.write(recv_us, event),
                    Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => {
                        stop = true;
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            if stop {
                break;
            }
            if Instant::now() >= next_flush {
                self.flush_all();
                next_flush = Instant::now() + self.config.flush_every;
            }
            std::thread::sleep(POLL.min(self.config.flush_every));
        }
        // Whatever is still queued was received before the stop: keep it.
        while let Ok(Msg::Event(recv_us, event)) = rx.try_recv() {
            self.write(recv_us, event);
        }
        self.flush_all();
    }

    pub(super) fn write(&mut self, recv_us: i64, event: Recorded) {
        let day = self.day_of(recv_us);
        // Looked up by `&str`: cloning the names' `Arc`s per event would bounce their counts
        // between this thread and the feed's.
        let (contract, symbol) = match &event {
            Recorded::Quote(q) => (&q.contract, &q.symbol),
            Recorded::Depth(d) => (&d.contract, &d.symbol),
            Recorded::Trades(t) => match t.first() {
                Some(t) => (&t.contract, &t.symbol),
                None => return,
            },
        };
        let needs_open = match self.slots.get(&**contract) {
            Some(s) if s.day == day => {
                s.file.is_none() && s.failed_at.is_none_or(|t| t.elapsed() >= REOPEN_AFTER)
            }
            _ => true,
        };
        if needs_open {
            self.open(&contract.clone(), symbol, day, recv_us);
        }
        let Some(file) = self
            .slots
            .get_mut(&**contract)
            .and_then(|s| s.file.as_mut())
        else {
            self.counters.dropped_io.inc();
            return;
        };
        if !file.push(recv_us, &event) {
            self.counters.dropped_cap.inc();
            return;
        }
        if file.pending_bytes() >= MAX_FRAME_RAW {
            self.flush(contract);
        }
    }

    /// The CME trading day of a receive time; the current day's span is kept, so the time zone
    /// arithmetic runs once a day rather than once an event.
    pub(super) fn day_of(&mut self, recv_us: i64) -> NaiveDate {
        if let Some((from, to, day)) = self.day_span
            && (from..to).contains(&recv_us)
        {
            return day;
        }
        let at = DateTime::from_timestamp_micros(recv_us).unwrap_or_default();
        let day = crate::cme::trading_day(at);
        let (from, to) = crate::cme::trading_day_span(at);
        if (from.timestamp_micros()..to.timestamp_micros()).contains(&recv_us) {
            self.day_span = Some((from.timestamp_micros(), to.timestamp_micros(), day));
        }
        day
    }

    /// Opens (or reopens) the contract's file for `day`, closing the previous day's.
    fn open(&mut self, contract: &Arc<str>, symbol: &str, day: NaiveDate, now_us: i64) {
        if self.slots.get(&**contract).is_some_and(|s| s.day != day) {
            self.flush(contract);
        }
        let path = self
            .config
            .dir
            .join(day.format("%Y-%m-%d").to_string())
            .join(file_name(contract));
        let slot = match RecordFile::open(&path, self.config.max_bytes, now_us, contract, symbol) {
            Ok((file, opened)) => {
                if opened.cut > 0 {
                    tracing::warn!(
                        path = %path.display(),
                        "the recording ended in a frame torn by a crash: cut its last {} bytes",
                        opened.cut
                    );
                }
                tracing::info!(path = %path.display(), appending = opened.existing > 0, "recording {contract}");
                Slot {
                    day,
                    file: Some(file),
                    failed_at: None,
                }
            }
            Err(e) => {
                self.io_error(&e);
                Slot {
                    day,
                    file: None,
                    failed_at: Some(Instant::now()),
                }
            }
        };
        self.slots.insert(contract.clone(), slot);
    }

    pub(super) fn flush_all(&mut self) {
        let contracts: Vec<Arc<str>> = self.slots.keys().cloned().collect();
        for c in contracts {
            self.flush(&c);
        }
    }

    fn flush(&mut self, contract: &str) {
        let Some(file) = self.slots.get_mut(contract).and_then(|s| s.file.as_mut()) else {
            return;
        };
        match file.flush() {
            Flushed::Nothing => {}
            Flushed::Written { events } => {
                self.counters.written.inc_by(events);
            }
            Flushed::Capped { events } => {
                self.counters.dropped_cap.inc_by(events);
                tracing::warn!(
                    path = %file.path().display(),
                    "the recording reached RECORD_MAX_MB ({} bytes): {contract} is no longer \
                     recorded until the next trading day; dropped events are counted in \
                     moontick_record_dropped_total{{reason=\"cap\"}}",
                    self.config.max_bytes
                );
            }
            Flushed::Failed { events, error } => {
                self.counters.dropped_io.inc_by(events);
                self.io_error(&error);
            }
        }
    }

    fn io_error(&mut self, e: &RecordError) {
        if !self.io_warned {
            self.io_warned = true;
            tracing::error!(
                "recording failed: {e}. Trading goes on; market data is not recorded while \
                 this lasts (counted in moontick_record_dropped_total{{reason=\"io\"}})"
            );
        }
    }
}

/// A contract id as a file name: characters outside `[A-Za-z0-9._-]` become `_`, and a leading
/// dot too, so no id can name a path outside the day's directory.
pub fn file_name(contract: &str) -> String {
    let mut name: String = contract
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    name.push_str(super::format::EXTENSION);
    name
}
