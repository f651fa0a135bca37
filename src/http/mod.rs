//! The HTTP server (hyper 1): webhook relay into strategies, health, readiness, status,
//! metrics, the kill switch and the other operator actions, the dashboard (a page, its
//! assets and a server-sent event stream) behind a login, the trade journal's download, with graceful shutdown.
//!
//! Wiring: build an [`App`] from an [`HttpConfig`], something that delivers webhooks
//! ([`Strategies`], the Lua `Host`), the engine's [`Ops`] and the shared [`Metrics`](crate::metrics::Metrics); then
//! [`serve`] it on a bound listener until the shutdown future resolves.

mod app;
mod auth;
mod dedupe;
mod engine_ops;
mod events;
mod journal;
mod ops;
mod pages;
mod reply;
mod routes;
mod session;
mod status_json;
mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

pub use app::{App, HttpConfig, MAX_BODY};
pub use dedupe::{Dedupe, Seen};
pub use engine_ops::{EngineOps, engine_status_json};
pub use ops::{Ops, SimpleOps, Strategies};

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
    // Event streams never end by themselves.
    app.closing.send_replace(true);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("http server drained"),
        () = tokio::time::sleep(app.cfg.drain_deadline) => {
            tracing::warn!(deadline = ?app.cfg.drain_deadline, "http connections still busy at the drain deadline; closing them");
        }
    }
    Ok(())
}
