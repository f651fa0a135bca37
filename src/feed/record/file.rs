//! One recording file being written: records gathered in memory and written as one complete
//! zstd frame at a time, so the file on disk always ends on a frame boundary (short of a crash
//! mid-write, which [`RecordFile::open`] repairs), never grows past its cap, and is appended to
//! when it already exists.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::error::RecordError;
use super::format::{self, Recorded};

/// Compression level: zstd's default, far faster than the feed's data rate at a good ratio.
const LEVEL: i32 = 3;
/// Records kept in memory past this size are written at once, whatever the time: it bounds the
/// memory and the loss of a crash on a very busy contract.
pub const MAX_FRAME_RAW: usize = 1 << 20;
/// A damaged tail longer than this is no torn last frame (at most [`MAX_FRAME_RAW`] compressed)
/// but a file we did not write: it is left alone rather than cut.
const MAX_TORN_TAIL: u64 = 8 << 20;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// An open recording file.
pub struct RecordFile {
    path: PathBuf,
    file: File,
    /// Bytes on disk, all of them complete frames.
    len: u64,
    max_bytes: u64,
    /// Records not written yet, after the segment header until a first frame is written.
    raw: Vec<u8>,
    /// This segment's header, which must open its first frame whatever happened before.
    header: Vec<u8>,
    /// A frame of this segment (so its header) is on disk.
    started: bool,
    /// Events in `raw`.
    events: u64,
    /// The cap refused a frame: nothing more is written to this file.
    full: bool,
    compressor: zstd::bulk::Compressor<'static>,
}

/// What [`RecordFile::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Bytes already in the file (appended to).
    pub existing: u64,
    /// Bytes of a torn last frame cut off (a crash while writing it).
    pub cut: u64,
}

/// What [`RecordFile::flush`] did.
#[derive(Debug)]
pub enum Flushed {
    /// No events were waiting.
    Nothing,
    /// A frame of `events` events was written.
    Written { events: u64 },
    /// The frame would have passed the cap: its `events` were dropped, and the file is full.
    Capped { events: u64 },
    /// The write failed (disk full, file gone): its `events` were dropped, and the file was cut
    /// back to its last complete frame so that later frames stay readable.
    Failed { events: u64, error: RecordError },
}

impl std::fmt::Debug for RecordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordFile")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("events", &self.events)
            .field("full", &self.full)
            .finish()
    }
}

impl RecordFile {
    /// Opens `path` for appending (creating it and its directory), cuts a torn last frame left
    /// by a crash, and starts a new segment for `contract` (`symbol` is what strategies call it).
    ///
    /// # Errors
    /// The directory or file cannot be created, read or written; another process is writing it
    /// ([`RecordError::Busy`]); or it holds something other than zstd frames (left untouched).
    pub fn open(
        path: &Path,
        max_bytes: u64,
        started_us: i64,
        contract: &str,
        symbol: &str,
    ) -> Result<(Self, Opened), RecordError> {
        let io_err = |source| RecordError::Io {
            path: path.to_owned(),
            cause: source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        // One writer per file: two processes recording the same contract to the same directory
        // would write over each other's frames. The lock goes with the handle.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RecordError::Busy {
                    path: path.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io_err)?;
        let good = complete_frames(&data);
        let cut = data.len() as u64 - good;
        if cut > 0 {
            let tail = &data[good as usize..];
            if cut > MAX_TORN_TAIL || !tail.starts_with(&ZSTD_MAGIC) {
                return Err(RecordError::Corrupt {
                    path: path.to_owned(),
                    why: format!(
                        "its last {cut} bytes are not a zstd frame; move the file away to record \
                         to this path again"
                    ),
                });
            }
            file.set_len(good).map_err(io_err)?;
        }
        file.seek(SeekFrom::Start(good)).map_err(io_err)?;
        let compressor = zstd::bulk::Compressor::new(LEVEL).map_err(io_err)?;
        let mut header = Vec::new();
        format::write_header(&mut header, started_us, contract, symbol);
        let mut raw = Vec::with_capacity(64 * 1024);
        raw.extend_from_slice(&header);
        let file = RecordFile {
            path: path.to_owned(),
            file,
            len: good,
            max_bytes,
            raw,
            header,
            started: false,
            events: 0,
            full: false,
            compressor,
        };
        Ok((
            file,
            Opened {
                existing: good,
                cut,
            },
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cap was reached: [`RecordFile::push`] is refused from now on.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Bytes of records waiting for the next frame.
    pub fn pending_bytes(&self) -> usize {
        self.raw.len()
    }

    /// Adds an event to the next frame; `false` (and nothing added) once the file is full.
    pub fn push(&mut self, recv_us: i64, event: &Recorded) -> bool {
        if self.full {
            return false;
        }
        format::write_event(&mut self.raw, recv_us, event);
        self.events += 1;
        true
    }

    /// Writes the waiting events as one zstd frame, unless that would pass the cap.
    pub fn flush(&mut self) -> Flushed {
        if self.events == 0 {
            return Flushed::Nothing;
        }
        let events = std::mem::take(&mut self.events);
        let result = self.write_frame();
        // The header goes with the first frame written; later frames carry records alone.
        self.raw.clear();
        if matches!(result, Ok(true)) {
            self.started = true;
        } else if !self.started {
            self.raw.extend_from_slice(&self.header);
        }
        match result {
            Ok(true) => Flushed::Written { events },
            Ok(false) => {
                self.full = true;
                Flushed::Capped { events }
            }
            Err(source) => {
                // A partial frame followed by good ones would hide everything after it.
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                Flushed::Failed {
                    events,
                    error: RecordError::Io {
                        path: self.path.clone(),
                        cause: source,
                    },
                }
            }
        }
    }

    /// `Ok(false)` when the frame does not fit under the cap.
    fn write_frame(&mut self) -> io::Result<bool> {
        let frame = self.compressor.compress(&self.raw)?;
        if self.len + frame.len() as u64 > self.max_bytes {
            return Ok(false);
        }
        self.file.write_all(&frame)?;
        self.len += frame.len() as u64;
        Ok(true)
    }
}

/// The length of the longest prefix of `data` made of complete zstd frames.
fn complete_frames(data: &[u8]) -> u64 {
    let mut pos = 0usize;
    while pos < data.len() {
        match zstd::zstd_safe::find_frame_compressed_size(&data[pos..]) {
            Ok(n) if n > 0 && pos + n <= data.len() => pos += n,
            _ => break,
        }
    }
    pos as u64
}
