//! The HTTP server (hyper 1): webhook relay into strategies, health, readiness, status,
//! metrics and the kill switch, with graceful shutdown.
//!
//! Wiring: build an [`App`] from an [`HttpConfig`], something that delivers webhooks
//! ([`Strategies`], the Lua `Host`), the engine's [`Ops`] and the shared [`Metrics`]; then
//! [`serve`] it on a bound listener until the shutdown future resolves.

mod dedupe;
mod engine_ops;
mod ops;
mod reply;
mod routes;
mod webhook;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::secret::Secret;

pub use dedupe::{Dedupe, Seen};
pub use engine_ops::EngineOps;
pub use ops::{Ops, SimpleOps, Strategies};

/// Request bodies above this get 413: alerts are a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// How the server behaves; built from [`Config`] by [`HttpConfig::from_config`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Required on webhooks and `/halt` (and `/status`) when set. `Config` refuses to listen
    /// beyond loopback without one.
    pub secret: Option<Secret>,
    pub max_body: usize,
    /// A webhook whose handler has not answered by then gets 202 `{"queued": true}`. Below
    /// TradingView's 3 s timeout, with room for the network.
    pub reply_within: Duration,
    /// Repeats of a webhook within this window are acknowledged without running the handler.
    pub dedupe_window: Duration,
    /// Most webhooks remembered for dedupe (the oldest are forgotten first).
    pub dedupe_capacity: usize,
    /// On shutdown, connections still busy after this are closed.
    pub drain_deadline: Duration,
    /// A client that has not sent its headers (or its body) by then is dropped (slow clients
    /// would otherwise hold connections open forever).
    pub read_timeout: Duration,
}

impl HttpConfig {
    pub fn new(secret: Option<Secret>) -> Self {
        HttpConfig {
            secret,
            max_body: MAX_BODY,
            reply_within: Duration::from_millis(2500),
            dedupe_window: Duration::from_secs(60),
            dedupe_capacity: 10_000,
            drain_deadline: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
        }
    }

    pub fn from_config(config: &Config) -> Self {
        HttpConfig {
            dedupe_window: config.webhook_dedupe_window,
            ..Self::new(config.webhook_secret.clone())
        }
    }
}

/// Everything a request handler needs, shared by all connections.
pub struct App {
    cfg: HttpConfig,
    strategies: Arc<dyn Strategies>,
    ops: Arc<dyn Ops>,
    metrics: Arc<Metrics>,
    // A std mutex: held for a hash-map lookup, never across an await.
    dedupe: Mutex<Dedupe>,
}

impl App {
    pub fn new(
        cfg: HttpConfig,
        strategies: Arc<dyn Strategies>,
        ops: Arc<dyn Ops>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let dedupe = Mutex::new(Dedupe::new(cfg.dedupe_window, cfg.dedupe_capacity));
        App {
            cfg,
            strategies,
            ops,
            metrics,
            dedupe,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown` resolves, then stops accepting and lets the
/// requests in flight finish, for at most the drain deadline.
///
/// # Errors
/// None at present: failed accepts (e.g. out of file descriptors) are logged and retried,
/// because a trading engine must not lose its health endpoint to a burst of connections. The
/// `io::Result` leaves room for fatal listener errors.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.cfg.read_timeout);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    let svc = service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, std::convert::Infallible>(routes::handle(app, req).await) }
                    });
                    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "http connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("http server drained"),
        () = tokio::time::sleep(app.cfg.drain_deadline) => {
            tracing::warn!(deadline = ?app.cfg.drain_deadline, "http connections still busy at the drain deadline; closing them");
        }
    }
    Ok(())
}

/// Whether a request carries the secret: in `X-Webhook-Secret` or one of `candidates` (body
/// fields, path segment). Every candidate is compared in constant time; with no secret
/// configured (loopback only, enforced by `Config`) everything is authorized.
pub(crate) fn authorized<'a>(
    secret: &Option<Secret>,
    headers: &'a HeaderMap,
    candidates: impl Iterator<Item = &'a str>,
) -> bool {
    let Some(secret) = secret else {
        return true;
    };
    let header = headers
        .get("x-webhook-secret")
        .and_then(|v| v.to_str().ok());
    // Not short-circuiting: how many candidates were tried should not depend on which matched.
    let mut ok = false;
    for c in header.into_iter().chain(candidates) {
        ok |= secret.ct_eq(c);
    }
    ok
}
