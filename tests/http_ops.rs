//! Health, readiness, status, metrics, the kill switch and graceful shutdown, over real HTTP.

mod http_support;

use std::collections::HashMap;
use std::time::Duration;

use http_support::{Options, SECRET, start};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOOK: &str = r#"
local M = {}
function M.on_webhook(req) return { ok = true, n = req.body.n } end
return M
"#;

#[tokio::test]
async fn healthz_is_always_200() {
    let s = start(&[("hook", HOOK)], Options::default()).await;
    s.ops.set_ready(Err("market hub reconnecting".into()));
    let (status, body) = s.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn readyz_follows_the_engine_readiness_with_its_reason() {
    let s = start(&[("hook", HOOK)], Options::default()).await;
    assert_eq!(s.get("/readyz").await.0, 200);
    s.ops.set_ready(Err("market hub reconnecting".into()));
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, 503);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        json!({"ready": false, "reason": "market hub reconnecting"})
    );
    s.ops.set_ready(Ok(()));
    assert_eq!(s.get("/readyz").await.0, 200);
}

#[tokio::test]
async fn readyz_is_503_while_a_strategy_has_never_loaded() {
    let s = start(
        &[("hook", HOOK), ("broken", "return {")],
        Options::default(),
    )
    .await;
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("broken failed to load"), "{body}");
}

#[tokio::test]
async fn a_stuck_strategy_shows_in_readyz_status_and_metrics_and_its_webhooks_get_503() {
    const STALL: &str = r#"
local M = {}
function M.on_webhook(req)
  if req.body.stall then bot.buy{ symbol = "MNQ", size = 1, tag = "slow" } end
  return { ok = true }
end
return M
"#;
    let s = start(
        &[("stall", STALL)],
        Options {
            // The order call takes 1.5 s; the watchdog allows 200 ms.
            submit_delay: Duration::from_millis(1500),
            host: |c| c.watchdog = Duration::from_millis(200),
            ..Options::default()
        },
    )
    .await;
    let url = s.url.clone();
    let client = s.client.clone();
    let first = tokio::spawn(async move {
        let r = client
            .post(format!("{url}/webhook/stall"))
            .header("x-webhook-secret", SECRET)
            .header("content-type", "application/json")
            .body(r#"{"stall": true, "id": "a"}"#)
            .send()
            .await
            .unwrap();
        http_support::read(r).await
    });
    let host = s.host.clone();
    http_support::wait_until("stuck", || {
        host.strategy("stall").unwrap().state == moontick::script::RunState::Stuck
    })
    .await;

    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("strategy stall is stuck in on_webhook"),
        "{body}"
    );
    let (_, body) = s.get("/status").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["strategies"][0]["state"], "stuck", "{v}");
    assert_eq!(v["strategies"][0]["stuck"]["handler"], "on_webhook", "{v}");
    let (_, text) = s.get("/metrics").await;
    assert!(
        text.contains("moontick_strategy_state{strategy=\"stall\",state=\"stuck\"} 1"),
        "{text}"
    );
    let (status, v) = s.hook("stall", &json!({"id": "b"})).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("strategy is stuck: on_webhook"),
        "{v}"
    );

    // The stalled call returns: its order is out, it answers, and the strategy is ready again.
    let (status, v) = first.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(s.get("/readyz").await.0, 200);
    assert_eq!(s.hook("stall", &json!({"id": "c"})).await.0, 200);
}

#[tokio::test]
async fn status_merges_engine_state_with_strategy_status_and_needs_the_secret() {
    let s = start(&[("hook", HOOK)], Options::default()).await;
    s.ops.set_status(json!({
        "connections": {"market_hub": "connected", "user_hub": "connected"},
        "positions": [{"symbol": "MNQ", "size": 1}],
        "open_orders": [],
        "risk": {"halted": false},
    }));
    let (status, body) = s.get("/status").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["connections"]["market_hub"], "connected");
    assert_eq!(v["positions"][0]["symbol"], "MNQ");
    let hook = &v["strategies"][0];
    assert_eq!(hook["name"], "hook");
    assert_eq!(hook["version"], 1);
    assert_eq!(hook["state"], "running");
    assert!(hook["last_reload_ms"].as_i64().unwrap() > 0);
    assert!(hook["last_error"].is_null());
    assert_eq!(v["ready"], true);
    let r = s
        .client
        .get(format!("{}/status", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn halt_needs_the_secret_and_reaches_the_engine() {
    let s = start(&[("hook", HOOK)], Options::default()).await;
    let (status, _) = s
        .post("/halt", "application/json", r#"{"reason":"x"}"#)
        .await;
    assert_eq!(status, 401);
    assert!(s.ops.halted().is_none());
    let body = json!({"secret": SECRET, "reason": "manual stop"}).to_string();
    let (status, v) = s.post("/halt", "application/json", body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(s.ops.halted().as_deref(), Some("manual stop"));
    assert_eq!(s.get("/healthz").await.0, 200);
}

/// A strict reader of the OpenMetrics text format as far as moontick emits it: every line is a
/// `# HELP`/`# TYPE`/`# UNIT` comment, `# EOF` (last), or `name{labels} value`, and every sample
/// belongs to a declared family. Returns the samples by `name{labels}`.
fn parse_openmetrics(text: &str) -> HashMap<String, f64> {
    let mut families: Vec<String> = Vec::new();
    let mut samples = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect("metric name");
            assert!(
                ["HELP", "TYPE", "UNIT"].contains(&kind),
                "bad comment: {line}"
            );
            if kind == "TYPE" {
                let t = parts.next().unwrap();
                assert!(
                    ["counter", "gauge", "histogram", "info", "unknown"].contains(&t),
                    "bad type: {line}"
                );
                families.push(name.to_owned());
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        let labels = &series[name.len()..];
        if !labels.is_empty() {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels: {line}"
            );
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(
                    !k.is_empty() && v.starts_with('"') && v.ends_with('"'),
                    "{line}"
                );
            }
        }
        assert!(
            families.iter().any(|f| name.starts_with(f.as_str())),
            "sample of an undeclared family: {line}"
        );
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_webhooks() {
    let s = start(&[("hook", HOOK)], Options::default()).await;
    assert_eq!(s.hook("hook", &json!({"n": 1})).await.0, 200);
    assert_eq!(s.hook("nosuch", &json!({"n": 1})).await.0, 404);
    s.metrics.quotes_received.inc_by(3);
    s.metrics.order_sent("hook");
    let r = s
        .client
        .get(format!("{}/metrics", s.url))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let samples = parse_openmetrics(&r.text().await.unwrap());
    assert_eq!(
        samples["moontick_webhooks_total{strategy=\"hook\",status=\"200\"}"],
        1.0
    );
    assert_eq!(
        samples["moontick_webhooks_total{strategy=\"\",status=\"404\"}"],
        1.0
    );
    assert_eq!(samples["moontick_quotes_received_total"], 3.0);
    assert_eq!(
        samples["moontick_orders_sent_total{strategy=\"hook\"}"],
        1.0
    );
    assert_eq!(
        samples["moontick_webhook_handler_seconds_count{strategy=\"hook\"}"],
        1.0
    );
}

#[tokio::test]
async fn graceful_shutdown_drains_a_request_in_flight() {
    let mut s = start(&[("hook", HOOK)], Options::default()).await;
    let body = r#"{"n": 42}"#;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /webhook/hook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         x-webhook-secret: {SECRET}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..4]).await.unwrap();
    // The request is in flight (headers read, body half sent) when shutdown starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // New connections are no longer accepted.
    assert!(tokio::net::TcpStream::connect(s.addr).await.is_err());
    conn.write_all(&body.as_bytes()[4..]).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut answer))
        .await
        .expect("answered before the drain deadline")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""n":42"#), "{answer}");
    let served = tokio::time::timeout(Duration::from_secs(10), s.task.take().unwrap())
        .await
        .expect("serve returned after draining");
    served.unwrap().unwrap();
}

#[tokio::test]
async fn the_drain_deadline_closes_connections_that_never_finish() {
    let mut s = start(
        &[("hook", HOOK)],
        Options {
            tweak: |c| c.drain_deadline = Duration::from_millis(300),
            ..Options::default()
        },
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"POST /webhook/hook HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.shutdown();
    let served = tokio::time::timeout(Duration::from_secs(5), s.task.take().unwrap())
        .await
        .expect("serve returned at the drain deadline");
    served.unwrap().unwrap();
}
