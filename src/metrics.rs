//! Process-wide counters and histograms, exposed on `GET /metrics` in the Prometheus (OpenMetrics)
//! text format. Every module that has something to count increments a named family here; only
//! the HTTP server encodes them.
//!
//! Labels are kept to bounded sets (strategy names come from files in one directory, statuses are
//! HTTP codes, hubs are two), because a label fed from request data would let any caller grow
//! the registry without bound.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-strategy families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyLabels {
    pub strategy: String,
}

/// Labels of `moontick_strategy_state`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyStateLabels {
    pub strategy: String,
    /// `running`, `stuck`, `crashed`, ...
    pub state: String,
}

/// Labels of `moontick_webhooks`: which strategy and which HTTP status the caller got.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// The strategy name, or `""` when the request named none that exists (so that probing
    /// random names cannot create label values).
    pub strategy: String,
    pub status: u16,
}

/// Labels of `moontick_reconnects`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HubLabels {
    /// `"market"` or `"user"`.
    pub hub: String,
}

/// Labels of `moontick_reloads`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub strategy: String,
    /// `"ok"` or `"failed"`.
    pub outcome: String,
}

/// Labels of `moontick_record_dropped`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordDropLabels {
    /// `"queue"` (the recorder fell behind), `"cap"` (RECORD_MAX_MB) or `"io"` (disk error).
    pub reason: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric moontick exports. Build one with [`Metrics::new`], share it in an `Arc`, and
/// increment the families directly, e.g.
/// `metrics.orders_sent.get_or_create(&StrategyLabels { strategy: name.into() }).inc();`
/// or through the helpers below.
pub struct Metrics {
    registry: Registry,
    /// Quotes the engine took from the market feed (after any conflation in the feed's queue).
    pub quotes_received: Counter<u64, AtomicU64>,
    /// Quotes handed to a strategy's `on_quote`.
    pub quotes_delivered: Counter<u64, AtomicU64>,
    /// Quotes replaced by a newer one of the same contract before a strategy read them (it was
    /// too far behind, or declared `quotes = "latest"`), per strategy.
    pub quotes_coalesced: Family<StrategyLabels, Counter>,
    /// 1 for the state each strategy is in, 0 for the others.
    pub strategy_state: Family<StrategyStateLabels, Gauge>,
    /// Quotes replaced by a newer one for the same contract in the market feed's queue, because
    /// the engine had fallen behind its bound.
    pub feed_quotes_conflated: Counter<u64, AtomicU64>,
    /// Market trades and depth updates the market feed dropped while the engine was behind.
    pub feed_events_dropped: Counter<u64, AtomicU64>,
    /// Times the user hub connection waited for room in the engine's queue (events are never
    /// dropped there).
    pub feed_user_waits: Counter<u64, AtomicU64>,
    /// Orders the risk guard approved and the engine sent to the gateway.
    pub orders_sent: Family<StrategyLabels, Counter>,
    /// Orders the risk guard refused (the script got the reason back).
    pub orders_refused: Family<StrategyLabels, Counter>,
    /// Orders the gateway rejected after they were sent.
    pub orders_rejected: Family<StrategyLabels, Counter>,
    /// Webhook requests answered, by strategy and HTTP status.
    pub webhooks: Family<WebhookLabels, Counter>,
    /// Hub reconnects.
    pub reconnects: Family<HubLabels, Counter>,
    /// Strategy reloads (file saves), by outcome.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Kill-switch activations.
    pub halts: Counter<u64, AtomicU64>,
    /// Seconds from a webhook arriving to `on_webhook` returning.
    pub webhook_handler_seconds: HistogramFamily<StrategyLabels>,
    /// Market events written to recordings.
    pub record_written: Counter<u64, AtomicU64>,
    /// Market events left out of recordings, by reason.
    pub record_dropped: Family<RecordDropLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s: webhook handlers are sub-millisecond when healthy, and TradingView gives
    // up at 3 s, so there is no point resolving beyond that.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Metrics {
    /// A fresh registry with every family registered under the `moontick` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("moontick");
        let m = Metrics {
            quotes_received: Counter::default(),
            quotes_delivered: Counter::default(),
            quotes_coalesced: Family::default(),
            strategy_state: Family::default(),
            feed_quotes_conflated: Counter::default(),
            feed_events_dropped: Counter::default(),
            feed_user_waits: Counter::default(),
            orders_sent: Family::default(),
            orders_refused: Family::default(),
            orders_rejected: Family::default(),
            webhooks: Family::default(),
            reconnects: Family::default(),
            reloads: Family::default(),
            halts: Counter::default(),
            webhook_handler_seconds: Family::new_with_constructor(latency_histogram),
            record_written: Counter::default(),
            record_dropped: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "quotes_received",
            "Quotes received from the market hub",
            m.quotes_received.clone(),
        );
        registry.register(
            "quotes_delivered",
            "Quotes delivered to strategies",
            m.quotes_delivered.clone(),
        );
        registry.register(
            "quotes_coalesced",
            "Quotes coalesced (replaced by a newer one of the same contract) before a strategy read them",
            m.quotes_coalesced.clone(),
        );
        registry.register(
            "feed_quotes_conflated",
            "Quotes conflated per contract in the market feed queue while the engine was behind",
            m.feed_quotes_conflated.clone(),
        );
        registry.register(
            "feed_events_dropped",
            "Market trades and depth updates dropped while the engine was behind",
            m.feed_events_dropped.clone(),
        );
        registry.register(
            "feed_user_waits",
            "Times the user hub waited for the engine instead of dropping an event",
            m.feed_user_waits.clone(),
        );
        registry.register(
            "strategy_state",
            "1 for the state a strategy is in (running, stuck, crashed, ...), 0 for the others",
            m.strategy_state.clone(),
        );
        registry.register(
            "orders_sent",
            "Orders approved by the risk guard and sent",
            m.orders_sent.clone(),
        );
        registry.register(
            "orders_refused",
            "Orders refused by the risk guard",
            m.orders_refused.clone(),
        );
        registry.register(
            "orders_rejected",
            "Orders rejected by the gateway",
            m.orders_rejected.clone(),
        );
        registry.register(
            "webhooks",
            "Webhook requests by strategy and HTTP status",
            m.webhooks.clone(),
        );
        registry.register("reconnects", "Hub reconnects", m.reconnects.clone());
        registry.register("reloads", "Strategy reloads", m.reloads.clone());
        registry.register("halts", "Kill-switch activations", m.halts.clone());
        registry.register(
            "webhook_handler_seconds",
            "Time from a webhook arriving to its handler returning",
            m.webhook_handler_seconds.clone(),
        );
        registry.register(
            "record_written",
            "Market events written to recordings (RECORD_DIR)",
            m.record_written.clone(),
        );
        registry.register(
            "record_dropped",
            "Market events left out of recordings: queue (recorder behind), cap (RECORD_MAX_MB), io",
            m.record_dropped.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The counter of recording drops for one reason (`queue`, `cap`, `io`).
    pub fn record_dropped(&self, reason: &str) -> Counter {
        self.record_dropped
            .get_or_create(&RecordDropLabels {
                reason: reason.to_owned(),
            })
            .clone()
    }

    /// Counts one answered webhook.
    pub fn webhook(&self, strategy: &str, status: u16) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                strategy: strategy.to_owned(),
                status,
            })
            .inc();
    }

    /// Records how long one `on_webhook` took.
    pub fn webhook_latency(&self, strategy: &str, seconds: f64) {
        self.webhook_handler_seconds
            .get_or_create(&StrategyLabels {
                strategy: strategy.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts one order by outcome.
    pub fn order_sent(&self, strategy: &str) {
        self.orders_sent.get_or_create(&label(strategy)).inc();
    }

    pub fn order_refused(&self, strategy: &str) {
        self.orders_refused.get_or_create(&label(strategy)).inc();
    }

    pub fn order_rejected(&self, strategy: &str) {
        self.orders_rejected.get_or_create(&label(strategy)).inc();
    }

    /// Counts quotes coalesced for one strategy.
    pub fn quotes_coalesced(&self, strategy: &str, n: u64) {
        self.quotes_coalesced
            .get_or_create(&label(strategy))
            .inc_by(n);
    }

    /// Sets `moontick_strategy_state`: 1 for `state`, 0 for the other names in `all`.
    pub fn strategy_state(&self, strategy: &str, state: &str, all: &[&str]) {
        for s in all {
            self.strategy_state
                .get_or_create(&StrategyStateLabels {
                    strategy: strategy.to_owned(),
                    state: (*s).to_owned(),
                })
                .set(i64::from(*s == state));
        }
    }

    pub fn reconnect(&self, hub: &str) {
        self.reconnects
            .get_or_create(&HubLabels {
                hub: hub.to_owned(),
            })
            .inc();
    }

    pub fn reload(&self, strategy: &str, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                strategy: strategy.to_owned(),
                outcome: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    /// The whole registry in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail; an error here would be a bug in the encoder.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

fn label(strategy: &str) -> StrategyLabels {
    StrategyLabels {
        strategy: strategy.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_show_up_in_the_text_format() {
        let m = Metrics::new();
        m.quotes_received.inc();
        m.order_sent("breakout");
        m.webhook("tv", 200);
        m.webhook_latency("tv", 0.002);
        m.quotes_coalesced("slow", 3);
        m.strategy_state("slow", "stuck", &["running", "stuck"]);
        let text = m.encode();
        assert!(text.contains("moontick_quotes_received_total 1"), "{text}");
        assert!(text.contains("moontick_orders_sent_total{strategy=\"breakout\"} 1"));
        assert!(text.contains("moontick_webhooks_total{strategy=\"tv\",status=\"200\"} 1"));
        assert!(text.contains("moontick_webhook_handler_seconds_bucket"));
        assert!(text.contains("moontick_quotes_coalesced_total{strategy=\"slow\"} 3"));
        assert!(text.contains("moontick_strategy_state{strategy=\"slow\",state=\"stuck\"} 1"));
        assert!(text.contains("moontick_strategy_state{strategy=\"slow\",state=\"running\"} 0"));
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
