//! `moontick check`: load and validate strategy files in the sandbox, without trading.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::broker::{MemoryBroker, SystemClock};
use super::sandbox::Limits;
use super::version::{RunnerConfig, check_file};

/// The outcome for one file.
#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    /// `file:line: message` when the file does not load or validate.
    pub error: Option<String>,
}

/// The strategy files a list of paths names: files as given, directories expanded to the
/// `*.lua` files directly inside them (`lib/` holds modules, not strategies).
pub fn expand(paths: &[PathBuf]) -> Vec<Result<PathBuf, String>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut files: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "lua"))
                        .collect();
                    files.sort();
                    out.extend(files.into_iter().map(Ok));
                }
                Err(e) => out.push(Err(format!("{}: cannot read directory: {e}", p.display()))),
            }
        } else {
            out.push(Ok(p.clone()));
        }
    }
    out
}

/// How a checked file is loaded: a fresh sandbox, an in-memory broker, the `lib/` beside it.
fn sandbox_config(name: String, path: &Path) -> RunnerConfig {
    RunnerConfig {
        name,
        path: path.to_path_buf(),
        lib_dir: path.parent().unwrap_or(Path::new(".")).join("lib"),
        state_dir: None,
        limits: Limits::default(),
        max_consecutive_errors: 1,
        state_flush_every: Duration::from_secs(3600),
        broker: Arc::new(MemoryBroker::new()),
        clock: Arc::new(SystemClock),
        bars: crate::bars::BarStore::new(),
    }
}

/// Loads one strategy in a fresh sandbox against an in-memory broker. Its `require` looks in
/// the `lib/` beside it, as in the engine.
pub fn check_one(path: &Path) -> Report {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cfg = sandbox_config(name, path);
    Report {
        path: path.to_path_buf(),
        error: check_file(&cfg).err(),
    }
}

/// What a strategy declares that a backtest from bars must know before it starts: its
/// `symbols` and its bar series (symbol, timeframe).
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub symbols: Vec<String>,
    pub bars: Vec<(String, crate::bars::Timeframe)>,
    /// `bars_history`.
    pub history: usize,
}

/// Loads one strategy as [`check_one`] does and returns what it declares.
///
/// # Errors
/// The strategy's load error, as `file:line: message`.
pub fn declared(path: &Path) -> Result<Declared, String> {
    let cfg = sandbox_config(String::new(), path);
    let v = super::version::build(&cfg, 1, super::version::Carry::Fresh)?;
    Ok(Declared {
        bars: v.spec.bars.series(&v.spec.symbols),
        symbols: v.spec.symbols.clone(),
        history: v.spec.bars.history,
    })
}

/// Checks every file, printing `ok <file>` or `error <file:line: message>` per file to `out`.
/// Returns whether all passed (an empty list passes nothing and fails).
pub fn run(paths: &[PathBuf], out: &mut impl Write) -> bool {
    let mut all_ok = true;
    let mut any = false;
    for item in expand(paths) {
        any = true;
        let line = match item {
            Err(msg) => {
                all_ok = false;
                format!("error {msg}")
            }
            Ok(path) => match check_one(&path).error {
                None => format!("ok    {}", path.display()),
                Some(msg) => {
                    all_ok = false;
                    format!("error {msg}")
                }
            },
        };
        let _ = writeln!(out, "{line}");
    }
    if !any {
        let _ = writeln!(out, "error no strategy files found");
    }
    all_ok && any
}
