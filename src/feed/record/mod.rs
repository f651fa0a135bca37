//! Recording the market data the feed receives, and reading it back (`docs/recording.md`).
//!
//! - [`recorder`]: [`Recorder`], the writing thread, and [`RecordTap`], the feed's non-blocking
//!   end of its bounded queue: one file per contract per CME trading day under `RECORD_DIR`.
//! - [`file`](mod@file): [`RecordFile`], one file written in complete zstd frames, appended to, capped.
//! - [`format`](mod@format): the versioned binary records, and [`RecordedEvent`], what a reader yields.
//! - [`error`]: [`RecordError`], naming the file that failed.
//! - [`reader`]: [`Recording`], [`scan`], [`Merged`], [`events`] and [`events_from`]:
//!   recordings back as typed events, one file or a directory merged by receive time.

pub mod error;
pub mod file;
pub mod format;
pub mod reader;
pub mod recorder;

pub use error::RecordError;
pub use file::RecordFile;
pub use format::{EXTENSION, Header, Recorded, RecordedEvent, VERSION};
pub use reader::{Events, Merged, Recording, RecordingFile, events, events_from, scan};
pub use recorder::{RecordCounters, RecordTap, Recorder, RecorderConfig};

/// A recorded event as the feed reported it to the engine: what a replay feeds back in.
impl From<Recorded> for crate::feed::events::MarketEvent {
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
