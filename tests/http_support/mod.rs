//! Shared harness for the HTTP tests: a real `Host` on temp strategy files with a
//! `MemoryBroker` (optionally slowed down), the real server on `127.0.0.1:0`, and a client.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use moontick::http::{self, App, HttpConfig, SimpleOps};
use moontick::metrics::Metrics;
use moontick::script::{BotCall, BotReply, Broker, Host, HostConfig, MemoryBroker, SystemClock};
use moontick::secret::Secret;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "test-secret-0123456789";

/// A memory broker whose orders take `delay`: a stand-in for a slow handler.
pub struct SlowBroker {
    pub memory: Arc<MemoryBroker>,
    pub delay: Duration,
}

impl Broker for SlowBroker {
    fn answer(&self, strategy: &str, call: BotCall) -> BotReply {
        if matches!(call, BotCall::Submit(_)) {
            std::thread::sleep(self.delay);
        }
        self.memory.answer(strategy, call)
    }
}

pub struct Options {
    pub secret: Option<&'static str>,
    pub submit_delay: Duration,
    pub tweak: fn(&mut HttpConfig),
    pub host: fn(&mut HostConfig),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            secret: Some(SECRET),
            submit_delay: Duration::ZERO,
            tweak: |_| {},
            host: |_| {},
        }
    }
}

pub struct Server {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub broker: Arc<MemoryBroker>,
    pub ops: Arc<SimpleOps>,
    pub metrics: Arc<Metrics>,
    pub client: reqwest::Client,
    pub host: Arc<Host>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
    _tmp: tempfile::TempDir,
}

/// Starts the server with one strategy file per `(name, source)`.
pub async fn start(scripts: &[(&str, &str)], opts: Options) -> Server {
    moontick::tls::ensure_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("moontick=debug")
        .try_init();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("strategies");
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    for (name, src) in scripts {
        std::fs::write(dir.join(format!("{name}.lua")), src).unwrap();
    }
    let memory = Arc::new(MemoryBroker::new());
    let broker: Arc<dyn Broker> = if opts.submit_delay.is_zero() {
        memory.clone()
    } else {
        Arc::new(SlowBroker {
            memory: memory.clone(),
            delay: opts.submit_delay,
        })
    };
    let mut cfg = HostConfig::new(&dir);
    (opts.host)(&mut cfg);
    let host = tokio::task::spawn_blocking(move || {
        Host::start(cfg, broker, Arc::new(SystemClock)).unwrap()
    })
    .await
    .unwrap();
    let host = Arc::new(host);
    let ops = Arc::new(SimpleOps::new("engine starting"));
    ops.set_ready(Ok(()));
    let metrics = Arc::new(Metrics::new());
    let mut http_cfg = HttpConfig::new(opts.secret.map(Secret::new));
    (opts.tweak)(&mut http_cfg);
    let app = Arc::new(App::new(
        http_cfg,
        host.clone(),
        ops.clone(),
        metrics.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(http::serve(listener, app, async {
        let _ = stopped.await;
    }));
    Server {
        url: format!("http://{addr}"),
        addr,
        broker: memory,
        ops,
        metrics,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        host,
        stop: Some(stop),
        task: Some(task),
        _tmp: tmp,
    }
}

impl Server {
    /// Asks the server to shut down (it drains requests in flight).
    pub fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<String>,
    ) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body.into())
            .send()
            .await
            .unwrap();
        read(r).await
    }

    /// A JSON webhook with the secret in the header.
    pub async fn hook(&self, strategy: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/webhook/{strategy}", self.url))
            .header("content-type", "application/json")
            .header("x-webhook-secret", SECRET)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .header("x-webhook-secret", SECRET)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    pub fn orders(&self) -> usize {
        self.broker.submitted().len()
    }
}

pub async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// Polls until `cond` holds (generous: the CI machine is shared).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Sends raw bytes on a fresh connection and returns everything read until the server closes
/// it or 5 s pass. Write errors are ignored: the server may answer (and close) before reading
/// the whole request.
pub async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                out.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&out).contains("\r\n\r\n") && out.ends_with(b"}") {
                    break;
                }
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
