//! Why a recording could not be written or read: [`RecordError`], naming the file.

use std::path::PathBuf;

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
