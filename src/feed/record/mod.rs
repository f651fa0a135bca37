//! Recording the market data the feed receives, and reading it back (`docs/recording.md`).
//!
//! - [`recorder`]: [`Recorder`], the writing thread, and [`RecordTap`], the feed's non-blocking
//!   end of its bounded queue: one file per contract per CME trading day under `RECORD_DIR`.
//! - [`file`]: [`RecordFile`], one file written in complete zstd frames, appended to, capped.
//! - [`format`]: the versioned binary records, and [`RecordedEvent`], what a reader yields.
//! - [`reader`]: [`Recording`], [`scan`], [`Merged`], [`events`] and [`events_from`]:
//!   recordings back as typed events, one file or a directory merged by receive time.

pub mod file;
pub mod format;
pub mod reader;
pub mod recorder;

use std::path::PathBuf;

pub use file::RecordFile;
pub use format::{Header, Recorded, RecordedEvent, VERSION};
pub use reader::{Events, Merged, Recording, RecordingFile, events, events_from, scan};
pub use recorder::{RecordCounters, RecordTap, Recorder, RecorderConfig};

/// The file name ending of a recording: zstd frames, so `zstd -d` opens it too.
pub const EXTENSION: &str = ".mtr.zst";

/// Why a recording could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: recording format version {found}; this moontick reads version {supported} only \
         (written by a newer moontick? use that one)",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
    },
    #[error(
        "{}: another moontick process is recording to this file (one writer per file: give \
         each process its own RECORD_DIR)",
        path.display()
    )]
    Busy { path: PathBuf },
    #[error("{}: not a readable moontick recording: {why}", path.display())]
    Corrupt { path: PathBuf, why: String },
}

/// A recorded event as the feed reported it to the engine: what a replay feeds back in.
impl From<Recorded> for crate::feed::MarketEvent {
    fn from(r: Recorded) -> Self {
        match r {
            Recorded::Quote(q) => Self::Quote(q),
            Recorded::Trades(t) => Self::Trades(t),
            Recorded::Depth(d) => Self::Depth(d),
        }
    }
}

#[cfg(test)]
mod tests;
