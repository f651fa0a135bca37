//! `moontick replay`: a recording played through the backtest's engine (the same steps, the
//! same fills, orders filled by the simulator's matching engine, never a gateway) in scaled real
//! time, with the HTTP server up (status page, dashboard, `/status`, `/metrics`) to watch the
//! strategies as if live. Every view says it is a replay. At the end it prints the backtest's
//! summary and keeps serving until the caller's shutdown (or at once, with `exit_at_end`).

mod ops;
mod pacer;
mod shared;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

use crate::backtest::{self, BacktestConfig, Report};
use crate::config::Config;
use crate::http::{self, App, HttpConfig};
pub use shared::Speed;
use shared::{Handle, Shared};

/// What a replay plays, and how.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The backtest it paces; no strategy files means every `*.lua` in `STRATEGIES_DIR`.
    pub backtest: BacktestConfig,
    pub speed: Speed,
    /// Stop serving once the recording has played (default: serve until the shutdown).
    pub exit_at_end: bool,
    /// Where `trades.csv`, `equity.csv` and `report.html` go at the end; `None` writes none.
    pub out: Option<PathBuf>,
}

/// Plays the recording (see the module documentation) and serves HTTP on `listener` until
/// `shutdown` resolves (or the end, with `exit_at_end`); a shutdown before the end stops the
/// replay there. Returns the report of what was played.
///
/// # Errors
/// What `moontick backtest` refuses (no data, an unknown contract, a strategy that does not
/// load), no strategies at all, or a missing `WEBHOOK_SECRET` beyond loopback.
pub async fn replay(
    config: &Config,
    mut cfg: ReplayConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<Report> {
    config.check_http()?;
    if cfg.backtest.strategies.is_empty() {
        cfg.backtest.strategies = lua_files(&config.strategies_dir)?;
    }
    let shared = Arc::new(Shared {
        clock_ms: AtomicI64::new(0),
        stop: AtomicBool::new(false),
        finished: AtomicBool::new(false),
        data: cfg.backtest.data.display().to_string(),
        speed: cfg.speed,
    });
    let (handle_tx, handle_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let mut pacer = pacer::Pacer::new(cfg.speed, shared.clone(), handle_tx);
    let backtest = cfg.backtest.clone();
    std::thread::Builder::new()
        .name("replay".into())
        .spawn(move || {
            let _span = tracing::warn_span!("REPLAY").entered();
            tracing::warn!(
                "REPLAY of {} at {}: not live. Orders fill in the simulated exchange against \
                 the recorded quotes; nothing reaches any gateway",
                backtest.data.display(),
                pacer.speed()
            );
            let _ = done_tx.send(backtest::run_paced(&backtest, &mut pacer));
        })
        .context("starting the replay thread")?;
    let done = async move {
        done_rx
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the replay stopped unexpectedly")))
    };
    let Ok(handle) = handle_rx.await else {
        // It ended before its engine started: bad data or strategies, said here.
        return done.await;
    };
    serve(config, &cfg, shared, handle, listener, shutdown, done)
        .instrument(tracing::warn_span!("REPLAY"))
        .await
}

/// The HTTP side of [`replay`], while `done` (the driver's result) is awaited.
async fn serve(
    config: &Config,
    cfg: &ReplayConfig,
    shared: Arc<Shared>,
    handle: Handle,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    done: impl Future<Output = anyhow::Result<Report>> + Send + 'static,
) -> anyhow::Result<Report> {
    let ops = Arc::new(ops::ReplayOps {
        status: handle.status,
        halter: handle.halter,
        shared: shared.clone(),
    });
    // No journal: a replay's fills are not trades.
    let app = Arc::new(App::new(
        HttpConfig::from_config(config),
        handle.host,
        ops,
        handle.metrics,
    ));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP server listening (replay)");
    }
    let (ended_tx, mut ended_rx) = watch::channel(false);
    let (out, exit_at_end) = (cfg.out.clone(), cfg.exit_at_end);
    let end_shared = shared.clone();
    let end = tokio::spawn(
        async move {
            let result = done.await;
            end_shared.finished.store(true, Ordering::Relaxed);
            match &result {
                Ok(report) => announce(report, &end_shared, out.as_deref(), exit_at_end),
                Err(e) => tracing::error!("the replay failed: {e:#}"),
            }
            let _ = ended_tx.send(true);
            result
        }
        .instrument(tracing::Span::current()),
    );
    let stop = async move {
        tokio::pin!(shutdown);
        let ended = ended_rx.wait_for(|e| *e);
        tokio::select! {
            () = &mut shutdown => {}
            _ = ended, if exit_at_end => {}
        }
    };
    if let Err(e) = http::serve(listener, app, stop).await {
        tracing::warn!(error = %e, "HTTP server failed");
    }
    // A shutdown before the end ends the replay at its next step.
    shared.stop.store(true, Ordering::Relaxed);
    end.await.context("the replay's end")?
}

/// The backtest's summary on stdout, the report's files, and the server's fate in the log.
fn announce(report: &Report, shared: &Shared, out: Option<&std::path::Path>, exit_at_end: bool) {
    let stopped = shared.stop.load(Ordering::Relaxed);
    println!(
        "REPLAY of {} at {}{}: simulated fills, no order reached any gateway",
        shared.data,
        shared.speed,
        if stopped {
            " (stopped before the end)"
        } else {
            ""
        }
    );
    print!("{}", report.summary());
    if let Some(out) = out {
        match backtest::write_outputs(report, out) {
            Ok(()) => println!(
                "trades.csv, equity.csv and report.html in {}",
                out.display()
            ),
            Err(e) => tracing::error!("writing the report: {e:#}"),
        }
    }
    if !stopped && !exit_at_end {
        tracing::info!("the replay has ended; the HTTP server stays up until Ctrl-C");
    }
}

/// Every `*.lua` in `dir`, sorted.
fn lua_files(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "no strategy files given, and {} (STRATEGIES_DIR) cannot be read",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "lua"))
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no strategy files given, and none in {} (STRATEGIES_DIR)",
        dir.display()
    );
    Ok(files)
}
