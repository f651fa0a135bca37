//! Watching the strategies directory: debounced file events filtered down to real changes of
//! `*.lua` files and of modules in `lib/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

/// A change worth acting on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// A strategy file was created, written, renamed into place or deleted.
    Strategy(PathBuf),
    /// Something in `lib/` changed; every strategy may depend on it.
    Lib,
}

/// The running watcher; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

/// Our own reads of a file show up as `Access(Open)` / `Access(Close(Read))`; reacting to them
/// would reload forever (deps-notes pitfall 8). Renames arrive as `Modify(Name)` or `Create`,
/// which is how editors that save by renaming are caught. `Modify(Metadata)` (mode, owner,
/// times) changes no code: editors that restore a file's mode after writing it made one save
/// reload twice. `touch` still reloads, through its `Access(Close(Write))`.
fn relevant(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Modify(
                ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any | ModifyKind::Other
            )
            | EventKind::Remove(_)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn in_dir(path: &Path, dir: &Path) -> bool {
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}

/// Watches `dir` (not the files: editors replace them) and `lib_dir` when it exists, calling
/// `on_change` once per changed file per debounced batch, on the watcher's thread.
///
/// # Errors
/// When the directory cannot be watched.
pub fn spawn(
    dir: &Path,
    lib_dir: &Path,
    debounce: Duration,
    mut on_change: impl FnMut(Change) + Send + 'static,
) -> Result<Watcher, notify::Error> {
    let (d, l) = (dir.to_path_buf(), lib_dir.to_path_buf());

    let mut debouncer = new_debouncer(debounce, None, move |res: DebounceEventResult| {
        let events = match res {
            Ok(events) => events,
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "strategy directory watch error");
                }
                return;
            }
        };
        let mut changes = BTreeSet::new();
        for ev in events.iter().filter(|e| relevant(&e.event.kind)) {
            for p in &ev.event.paths {
                let Some(parent) = p.parent() else { continue };
                if p.extension().is_some_and(|x| x == "lua") {
                    if same_dir(parent, &d) {
                        changes.insert(Change::Strategy(p.clone()));
                    } else if in_dir(parent, &l) {
                        changes.insert(Change::Lib);
                    }
                }
            }
        }
        for c in changes {
            on_change(c);
        }
    })?;
    debouncer.watch(dir, RecursiveMode::NonRecursive)?;
    if lib_dir.is_dir() {
        debouncer.watch(lib_dir, RecursiveMode::Recursive)?;
    }
    Ok(Watcher {
        _debouncer: debouncer,
    })
}
