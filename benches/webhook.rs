//! Webhook relay under load: N webhooks over loopback HTTP/1.1 (keep-alive, C concurrent
//! clients) into one Lua `on_webhook` that places an order with a `MemoryBroker`. Reports
//! throughput, latency percentiles, and checks that every webhook got a 2xx and was handled once.
//! No timing assertions: the numbers are for the README.
//!
//! Run: `cargo bench --bench webhook` (`WEBHOOKS=20000 CLIENTS=32` to change the load).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use moontick::http::{self, App, HttpConfig, SimpleOps};
use moontick::metrics::Metrics;
use moontick::script::{Host, HostConfig, MemoryBroker, SystemClock};
use moontick::secret::Secret;

const STRATEGY: &str = r#"
local M = {}
function M.on_webhook(req)
  local o = bot.buy{ symbol = "MNQ", size = 1, tag = req.body.id }
  return { ok = o ~= nil, id = o and o.id }
end
return M
"#;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let total = env("WEBHOOKS", 20_000);
    let clients = env("CLIENTS", 32).max(1);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bench.lua"), STRATEGY).unwrap();
    let memory = Arc::new(MemoryBroker::new());
    let host = Arc::new(
        Host::start(
            HostConfig::new(tmp.path()),
            memory.clone(),
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ops = Arc::new(SimpleOps::new("bench"));
        let app = Arc::new(App::new(
            HttpConfig::new(Some(Secret::new("bench-secret"))),
            host.clone(),
            ops,
            Arc::new(Metrics::new()),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook/bench", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(listener, app, async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .unwrap();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let client = client.clone();
            let url = url.clone();
            let n = total / clients + usize::from(c < total % clients);
            tasks.push(tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).unwrap();
                let mut errors = 0u64;
                for i in 0..n {
                    let body = format!(r#"{{"id":"{c}-{i}","action":"buy"}}"#);
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .header("x-webhook-secret", "bench-secret")
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match r {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    hist.record(t.elapsed().as_micros() as u64).unwrap();
                    errors += u64::from(!ok);
                }
                (hist, errors)
            }));
        }
        let mut hist = Histogram::<u64>::new(3).unwrap();
        let mut errors = 0;
        for t in tasks {
            let (h, e) = t.await.unwrap();
            hist.add(h).unwrap();
            errors += e;
        }
        let elapsed = started.elapsed();
        let handled = memory.submitted().len();
        println!(
            "webhook relay: {total} webhooks, {clients} clients, {:.2} s: {:.0} req/s; latency \
             p50 {} µs, p99 {} µs, max {} µs; errors {errors}; handled {handled}",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64(),
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.max(),
        );
        if errors > 0 || handled != total {
            println!(
                "WARNING: {errors} errors, {} webhooks lost",
                total - handled
            );
        }
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    });
}
