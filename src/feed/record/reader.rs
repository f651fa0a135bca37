//! Reading recordings back: [`Recording`] (one file's events in file order, ending quietly at a
//! tail torn by a crash), [`scan`] (the recording files under a path), and [`Merged`] /
//! [`events`] / [`events_from`] (several contracts' recordings as one stream in receive-time
//! order), which is what a backtest replays.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;

use super::error::RecordError;
use super::format::EXTENSION;
use super::format::{self, Header, Item, ItemError, RecordedEvent};

type Stream = BufReader<zstd::stream::read::Decoder<'static, BufReader<File>>>;

/// One recording file, read as an iterator of its events in file order.
///
/// The iteration ends (`None`) at the end of the file, or quietly at a torn last frame
/// ([`Recording::truncated`] then says so); damage elsewhere, or a later segment of another
/// version, ends it with one `Err`.
pub struct Recording {
    path: PathBuf,
    stream: Stream,
    header: Option<Header>,
    /// The contract and symbol of the segment being read, shared by its events.
    names: Option<(Arc<str>, Arc<str>)>,
    truncated: bool,
    done: bool,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl Recording {
    /// Opens a recording and reads its first header. An empty file (a writer that crashed
    /// before its first frame) is an empty recording with no header.
    ///
    /// # Errors
    /// The file cannot be read, is no moontick recording, or was written in a format version
    /// this build does not read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RecordError> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(|source| RecordError::Io {
            path: path.clone(),
            cause: source,
        })?;
        let decoder = zstd::stream::read::Decoder::new(file).map_err(|source| RecordError::Io {
            path: path.clone(),
            cause: source,
        })?;
        let mut rec = Recording {
            stream: BufReader::with_capacity(64 * 1024, decoder),
            path,
            header: None,
            names: None,
            truncated: false,
            done: false,
        };
        match format::read_item(&mut rec.stream, None) {
            Ok(Item::Header(h)) => {
                rec.names = Some((h.contract.clone(), h.symbol.clone()));
                rec.header = Some(h);
            }
            Ok(Item::End) => rec.done = true,
            // `read_item` refuses a record before any header; kept total all the same.
            Ok(Item::Event(_)) => {
                return Err(rec.error(ItemError::Corrupt("no header at the start".into())));
            }
            Err(ItemError::Truncated) => (rec.done, rec.truncated) = (true, true),
            Err(e) => return Err(rec.error(e)),
        }
        Ok(rec)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first segment's header: version, contract, symbol, when it was started. `None` for
    /// an empty file.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The iteration stopped at a torn last frame (what a crash mid-write leaves): the events
    /// before it were all read, at most the last second's were lost.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn error(&self, e: ItemError) -> RecordError {
        let path = self.path.clone();
        match e {
            ItemError::Version(found) => RecordError::UnsupportedVersion {
                path,
                found,
                supported: format::VERSION,
            },
            ItemError::Corrupt(why) => RecordError::Corrupt { path, why },
            ItemError::Io(source) => RecordError::Io {
                path,
                cause: source,
            },
            ItemError::Truncated => RecordError::Corrupt {
                path,
                why: "cut short".into(),
            },
        }
    }
}

impl Iterator for Recording {
    type Item = Result<RecordedEvent, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match format::read_item(&mut self.stream, self.names.as_ref()) {
                Ok(Item::Event(e)) => return Some(Ok(e)),
                // A later writer session appended a segment.
                Ok(Item::Header(h)) => self.names = Some((h.contract, h.symbol)),
                Ok(Item::End) => self.done = true,
                Err(ItemError::Truncated) => (self.done, self.truncated) = (true, true),
                Err(e) => {
                    self.done = true;
                    return Some(Err(self.error(e)));
                }
            }
        }
        None
    }
}

/// A recording file found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordingFile {
    /// The CME trading day, from its directory's name (`None` outside a `YYYY-MM-DD` directory).
    pub day: Option<NaiveDate>,
    /// The contract id, from the file name.
    pub contract: String,
    pub path: PathBuf,
}

/// The recording files at `path`: the file itself, or every `*.mtr.zst` under the directory
/// (a `RECORD_DIR`, or one day of it), sorted by day then contract.
///
/// # Errors
/// `path` or a directory under it cannot be read.
pub fn scan(path: impl AsRef<Path>) -> Result<Vec<RecordingFile>, RecordError> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(|source| RecordError::Io {
        path: path.to_owned(),
        cause: source,
    })?;
    let mut found = Vec::new();
    if meta.is_dir() {
        walk(path, &mut found)?;
    } else {
        found.push(describe(path));
    }
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<RecordingFile>) -> Result<(), RecordError> {
    let io_err = |source| RecordError::Io {
        path: dir.to_owned(),
        cause: source,
    };
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err)?;
        if kind.is_dir() {
            walk(&path, found)?;
        } else if kind.is_file()
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(EXTENSION))
        {
            found.push(describe(&path));
        }
    }
    Ok(())
}

fn describe(path: &Path) -> RecordingFile {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let day = path
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str())
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    RecordingFile {
        day,
        contract: name.strip_suffix(EXTENSION).unwrap_or(name).to_string(),
        path: path.to_owned(),
    }
}

/// Several recordings merged into one stream by receive time. Each recording keeps its own
/// file order; events received in the same microsecond come in the order the recordings were
/// given. A recording that fails yields its error once and ends; the others go on.
#[derive(Debug)]
pub struct Merged {
    sources: Vec<Recording>,
    /// The next event of each source.
    heads: Vec<Option<RecordedEvent>>,
    ready: BinaryHeap<Reverse<(i64, usize)>>,
    /// Errors to hand out before the next event.
    errors: VecDeque<RecordError>,
}

impl Merged {
    pub fn new(sources: Vec<Recording>) -> Self {
        let mut m = Merged {
            heads: (0..sources.len()).map(|_| None).collect(),
            sources,
            ready: BinaryHeap::new(),
            errors: VecDeque::new(),
        };
        for i in 0..m.sources.len() {
            m.pull(i);
        }
        m
    }

    /// The recordings, e.g. to ask which were [`Recording::truncated`] once iteration is over.
    pub fn recordings(&self) -> &[Recording] {
        &self.sources
    }

    fn pull(&mut self, i: usize) {
        match self.sources[i].next() {
            Some(Ok(e)) => {
                self.ready.push(Reverse((e.recv_us, i)));
                self.heads[i] = Some(e);
            }
            Some(Err(e)) => self.errors.push_back(e),
            None => {}
        }
    }
}

impl Iterator for Merged {
    type Item = Result<RecordedEvent, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.errors.pop_front() {
            return Some(Err(e));
        }
        let Reverse((_, i)) = self.ready.pop()?;
        let event = self.heads[i].take().expect("a ready source has a head");
        self.pull(i);
        Some(Ok(event))
    }
}

/// Every event recorded under `path` (see [`scan`]) in receive-time order: one trading day at
/// a time, each day's contracts merged ([`Merged`]), so only one day's files are open at once.
///
/// # Errors
/// `path` cannot be scanned; a file that cannot be opened (unreadable, another version) is
/// reported as an `Err` item when its day comes.
pub fn events(path: impl AsRef<Path>) -> Result<Events, RecordError> {
    Ok(events_from(scan(path)?))
}

/// As [`events`], over files chosen from a [`scan`] (some days, some contracts). Files with the
/// same day are merged; days are read in the order given.
pub fn events_from(files: impl IntoIterator<Item = RecordingFile>) -> Events {
    let mut days: VecDeque<Vec<PathBuf>> = VecDeque::new();
    let mut last_day = None;
    for f in files {
        if days.is_empty() || last_day != Some(f.day) {
            days.push_back(Vec::new());
            last_day = Some(f.day);
        }
        days.back_mut().expect("pushed above").push(f.path);
    }
    Events {
        days,
        current: None,
        errors: VecDeque::new(),
    }
}

/// The iterator [`events`] returns.
#[derive(Debug)]
pub struct Events {
    days: VecDeque<Vec<PathBuf>>,
    current: Option<Merged>,
    errors: VecDeque<RecordError>,
}

impl Iterator for Events {
    type Item = Result<RecordedEvent, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.errors.pop_front() {
                return Some(Err(e));
            }
            if let Some(item) = self.current.as_mut().and_then(Iterator::next) {
                return Some(item);
            }
            let day = self.days.pop_front()?;
            let mut open = Vec::with_capacity(day.len());
            for path in day {
                match Recording::open(&path) {
                    Ok(r) => open.push(r),
                    Err(e) => self.errors.push_back(e),
                }
            }
            self.current = Some(Merged::new(open));
        }
    }
}
