//! Notifications: the engine's events, chosen by `NOTIFY_EVENTS`, sent to every `NOTIFY_URL`
//! (Discord, Slack, Telegram or generic JSON).
//!
//! Nothing here can hold up the engine: the engine only puts events on its broadcast; one task
//! here turns them into notices and pushes them onto a bounded queue per target (dropping the
//! oldest, counted, when a receiver cannot keep up); one task per target POSTs them, with
//! retries and backoff. A dead receiver costs a queue of memory, nothing more.

mod deliver;
mod message;
mod options;
mod queue;
mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use message::{Notice, body, redact, text};
pub use queue::DropOldest;
pub use target::{EVENT_NAMES, EventSet, NotifyConfig, Target, TargetKind};

use crate::engine::EngineEvent;
use crate::secret::Secret;
pub use options::{Counters, NotifyOptions};

/// The running notifier; stop it with [`Notifier::shutdown`].
pub struct Notifier {
    queues: Vec<Arc<DropOldest<Notice>>>,
    counters: Arc<Counters>,
    fanout: JoinHandle<()>,
    senders: Vec<JoinHandle<()>>,
}

impl Notifier {
    /// Starts sending the events `events` receives to `config`'s targets. `secrets` (API key,
    /// JWT, webhook secret) are redacted from every notice. `None` when there is no target.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS provider installed).
    pub fn start(
        config: &NotifyConfig,
        options: NotifyOptions,
        secrets: Vec<Secret>,
        events: broadcast::Receiver<EngineEvent>,
    ) -> anyhow::Result<Option<Notifier>> {
        if config.targets.is_empty() {
            return Ok(None);
        }
        crate::tls::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            // A redirect would carry the notice somewhere NOTIFY_URL does not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                anyhow::anyhow!("building the notification client: {}", e.without_url())
            })?;
        let secrets: Arc<[Secret]> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        let counters = Arc::new(Counters::default());
        let mut queues = Vec::new();
        let mut senders = Vec::new();
        for target in &config.targets {
            let queue = Arc::new(DropOldest::new(options.queue));
            senders.push(tokio::spawn(deliver::run(
                target.clone(),
                Arc::clone(&queue),
                http.clone(),
                options.clone(),
                Arc::clone(&secrets),
                Arc::clone(&counters),
            )));
            queues.push(queue);
        }
        let names: Vec<String> = config.targets.iter().map(ToString::to_string).collect();
        tracing::info!("notifications go to {}", names.join(", "));
        let fanout = tokio::spawn(
            Fanout {
                events: config.events,
                queues: queues.clone(),
                feed_down_after: options.feed_down_after,
                down: HashMap::new(),
                counters: Arc::clone(&counters),
            }
            .run(events),
        );
        Ok(Some(Notifier {
            queues,
            counters,
            fanout,
            senders,
        }))
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Notices dropped from full queues, all targets together.
    pub fn dropped(&self) -> u64 {
        self.queues.iter().map(|q| q.dropped_total()).sum()
    }

    /// Stops taking events, gives the queues up to `within` to empty (a halt at shutdown still
    /// goes out), then stops.
    pub async fn shutdown(self, within: Duration) {
        self.fanout.abort();
        let deadline = Instant::now() + within;
        while self.queues.iter().any(|q| !q.is_empty()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for s in &self.senders {
            s.abort();
        }
    }
}

/// A hub that went down and when, and whether that was announced.
struct Down {
    since: Instant,
    state: String,
    announced: bool,
}

/// Turns engine events into notices on every target's queue.
struct Fanout {
    events: EventSet,
    queues: Vec<Arc<DropOldest<Notice>>>,
    feed_down_after: Duration,
    down: HashMap<&'static str, Down>,
    counters: Arc<Counters>,
}

impl Fanout {
    async fn run(mut self, mut rx: broadcast::Receiver<EngineEvent>) {
        loop {
            let next = self
                .down
                .values()
                .filter(|d| !d.announced)
                .map(|d| d.since + self.feed_down_after)
                .min();
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(event) => self.on_event(&event),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!("notifications fell behind the engine: {n} event(s) missed");
                        self.counters.missed.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(RecvError::Closed) => return,
                },
                () = sleep_until(next), if next.is_some() => self.announce_feed_down(),
            }
        }
    }

    fn push(&self, notice: Notice) {
        for q in &self.queues {
            q.push(notice.clone());
        }
    }

    fn on_event(&mut self, event: &EngineEvent) {
        let wanted = match event {
            EngineEvent::Fill(_) => self.events.fills,
            EngineEvent::Halted { .. } | EngineEvent::Resumed { was: Some(_) } => self.events.halts,
            // A resume of an engine that was not halted changes nothing.
            EngineEvent::Resumed { was: None } => false,
            EngineEvent::Strategy { .. } => self.events.strategies,
            EngineEvent::ReloadFailed { .. } => self.events.reloads,
            EngineEvent::SessionClosed(_) => self.events.session,
            EngineEvent::FeedDown { hub, state } => {
                self.down.entry(hub).or_insert(Down {
                    since: Instant::now(),
                    state: state.clone(),
                    announced: false,
                });
                return;
            }
            EngineEvent::FeedUp { hub } => {
                // Back within the delay: a routine reconnect nobody needs to hear about.
                if let Some(d) = self.down.remove(hub)
                    && d.announced
                    && self.events.feed
                {
                    let text = format!(
                        "moontick: {hub} feed is back after {}",
                        message::duration(d.since.elapsed())
                    );
                    let data = serde_json::json!({
                        "type": "feed_up", "hub": hub, "down_secs": d.since.elapsed().as_secs()
                    });
                    self.push(Notice::new("feed_up", text, data));
                }
                return;
            }
        };
        if wanted {
            let data = serde_json::to_value(event).unwrap_or_default();
            self.push(Notice::new(event.kind(), text(event), data));
        }
    }

    fn announce_feed_down(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (hub, d) in &mut self.down {
            if !d.announced && now >= d.since + self.feed_down_after {
                d.announced = true;
                due.push((*hub, d.state.clone(), now.duration_since(d.since)));
            }
        }
        if !self.events.feed {
            return;
        }
        for (hub, state, down_for) in due {
            let text = format!(
                "moontick: {hub} feed down for {} ({state}); strategies get no {}",
                message::duration(down_for),
                if hub == "market" {
                    "quotes"
                } else {
                    "order or fill updates"
                }
            );
            let data = serde_json::json!({
                "type": "feed_down", "hub": hub, "state": state, "down_secs": down_for.as_secs()
            });
            self.push(Notice::new("feed_down", text, data));
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
