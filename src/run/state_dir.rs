//! The state directory: one engine per `STATE_DIR` (an OS file lock whose file names the
//! holder), a subdirectory per gateway and account (the simulator's halts and strategy state
//! never reach a live run), and I/O errors that name the path and say what to do.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The lock file inside `STATE_DIR`; it holds the holder's pid and start time.
pub const LOCK_FILE: &str = "moontick.lock";

/// The gateway label of the embedded simulator's state.
pub const SIMULATOR: &str = "simulator";

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error(
        "STATE_DIR {} is in use by another moontick ({holder}); two engines on one account \
         would both trade and overwrite each other's risk state. Stop the other one, or give \
         this one its own STATE_DIR",
        .path.display()
    )]
    Locked { path: PathBuf, holder: String },
    // `error` is shown in the message, not chained as a source: it would print twice.
    #[error("STATE_DIR: cannot {action} {} ({error}); {advice}", .path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        error: io::Error,
        advice: String,
    },
}

impl StateDirError {
    fn io(path: &Path, action: &'static str, error: io::Error) -> Self {
        let advice = advice(&error);
        Self::Io {
            path: path.to_path_buf(),
            action,
            error,
            advice,
        }
    }
}

/// What to do about an I/O error on the state directory.
fn advice(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "make the directory writable by the user moontick runs as{} (e.g. `chown -R` it), \
             or set STATE_DIR to a writable directory. The Docker image takes ownership of its \
             state volume itself when started as root (see README, Docker)",
            current_uid().map_or(String::new(), |u| format!(" (uid {u})"))
        ),
        io::ErrorKind::ReadOnlyFilesystem => {
            "mount a writable volume there, or set STATE_DIR to a writable directory".into()
        }
        io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists => {
            "a file is in the way: set STATE_DIR to a directory".into()
        }
        io::ErrorKind::StorageFull => "free some space on that disk".into(),
        _ => "check that STATE_DIR names a writable local directory".into(),
    }
}

/// The real uid, read from `/proc` (no libc dependency for one number).
fn current_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Held for as long as the engine runs; the OS releases the lock when the process ends, however
/// it ends, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `dir` when needed and takes its lock, writing this process's pid into the lock file.
///
/// # Errors
/// [`StateDirError::Locked`] naming the holder when another process holds it;
/// [`StateDirError::Io`] naming the path when the directory cannot be created or written.
pub fn lock(dir: &Path) -> Result<StateLock, StateDirError> {
    std::fs::create_dir_all(dir).map_err(|e| StateDirError::io(dir, "create", e))?;
    let path = dir.join(LOCK_FILE);
    // Not truncated on open: the holder's pid must survive a failed attempt to read it.
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StateDirError::io(&path, "write", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = text.lines().next().map(str::trim).unwrap_or_default();
            let holder = if holder.is_empty() {
                "holder unknown".to_string()
            } else {
                holder.chars().take(120).collect()
            };
            return Err(StateDirError::Locked {
                path: dir.to_path_buf(),
                holder,
            });
        }
        Err(TryLockError::Error(e)) => return Err(StateDirError::io(&path, "lock", e)),
    }
    let stamp = format!(
        "pid {} since {}\n",
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    file.set_len(0)
        .and_then(|()| file.write_all(stamp.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| StateDirError::io(&path, "write", e))?;
    Ok(StateLock { _file: file, path })
}

/// `STATE_DIR/<gateway>-<account>/`, created when needed. `gateway` is [`SIMULATOR`] or a
/// [`gateway_label`].
///
/// # Errors
/// When the directory cannot be created, naming it.
pub fn account_dir(root: &Path, gateway: &str, account_id: i32) -> Result<PathBuf, StateDirError> {
    let dir = root.join(format!("{gateway}-{account_id}"));
    std::fs::create_dir_all(&dir).map_err(|e| StateDirError::io(&dir, "create", e))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| StateDirError::io(&dir, "write into", e))?;
    Ok(dir)
}

/// A path-safe label of a gateway URL: its host, and its port when one is given
/// (`api.topstepx.com`, `127.0.0.1_5000`).
pub fn gateway_label(api_url: &str) -> String {
    let host = reqwest::Url::parse(api_url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port() {
                Some(p) => format!("{host}_{p}"),
                None => host,
            })
        })
        .unwrap_or_else(|| "gateway".into());
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// State files an earlier version kept directly in `STATE_DIR`, before state was kept per
/// gateway and account. They are never read now (whose account they belong to is unknown).
pub fn legacy_files(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StateDirError::Locked { .. }), "{err:?}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        drop(first);
        let again = lock(dir.path()).expect("released when the holder drops it");
        assert!(again.path().ends_with(LOCK_FILE));
    }

    #[test]
    fn a_file_in_the_way_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state");
        std::fs::write(&file, "x").unwrap();
        let text = lock(&file).unwrap_err().to_string();
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert!(text.contains("STATE_DIR"), "{text}");
    }

    #[test]
    fn gateway_labels_are_path_safe() {
        assert_eq!(
            gateway_label("https://api.topstepx.com"),
            "api.topstepx.com"
        );
        assert_eq!(gateway_label("http://127.0.0.1:5000/"), "127.0.0.1_5000");
        assert_eq!(gateway_label("not a url"), "gateway");
        let dir = tempfile::tempdir().unwrap();
        let acct = account_dir(dir.path(), SIMULATOR, 10_001).unwrap();
        assert!(acct.ends_with("simulator-10001") && acct.is_dir());
    }
}
