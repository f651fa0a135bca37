//! What every request handler shares: the server's settings ([`HttpConfig`]), the [`App`]
//! (strategies, the engine's ops, metrics, the dedupe memory, dashboard sessions) and the
//! secret check.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::HeaderMap;

use super::dedupe::Dedupe;
use super::ops::{Ops, Strategies};
use super::session::Sessions;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::secret::Secret;

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
    /// The trade journal's directory, served by `GET /journal`; `None` answers 404.
    pub journal_dir: Option<PathBuf>,
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
            journal_dir: None,
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
    pub(super) cfg: HttpConfig,
    pub(super) strategies: Arc<dyn Strategies>,
    pub(super) ops: Arc<dyn Ops>,
    pub(super) metrics: Arc<Metrics>,
    // A std mutex: held for a hash-map lookup, never across an await.
    pub(super) dedupe: Mutex<Dedupe>,
    /// Dashboard logins.
    pub(super) sessions: Sessions,
    /// Set when the server shuts down: ends the event streams, which never end by themselves.
    pub(super) closing: tokio::sync::watch::Sender<bool>,
    /// Event streams open now (bounded: each one polls the status).
    pub(super) streams: std::sync::atomic::AtomicUsize,
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
            sessions: Sessions::default(),
            closing: tokio::sync::watch::Sender::new(false),
            streams: Default::default(),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// Whether a request carries the secret: in `X-Webhook-Secret` or one of `candidates` (body
/// fields, path segment). Webhooks call this; routes that show or change the account call
/// [`gate`](super::auth::gate), which accepts a dashboard session as well. Every candidate is compared in constant time; with no secret
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
