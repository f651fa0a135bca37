//! Why a recording could not be written or read: [`RecordError`], naming the file.

use std::path::PathBuf;

/// Why a recording could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    // The cause is in the message and deliberately not a `source`: an error chain printed
    // whole (`{:#}`) would say it twice.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
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
