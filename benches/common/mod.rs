//! What the loopback benchmarks share: a simulator in this process or in a `moontick sim`
//! child, and the real engine with one strategy against either.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moontick::config::RiskLimits;
use moontick::engine::{Engine, EngineParams};
use moontick::feed::MarketFeedConfig;
use moontick::gateway::budget::RestBudget;
use moontick::gateway::{Credentials, GatewayClient, Session, Transport, TransportOptions};
use moontick::metrics::Metrics;
use moontick::risk::RiskGuard;
use moontick::script::HostConfig;
use moontick::secret::Secret;
use moontick::sim::Simulator;

pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The runtime the benchmark runs on: `moontick run`'s (multi-threaded, a worker per core), or
/// one thread with `RUNTIME=current_thread`, to see what hand-offs between workers cost.
pub fn runtime() -> tokio::runtime::Runtime {
    let mut b = match std::env::var("RUNTIME").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    b.enable_all().build().expect("tokio runtime starts")
}

/// Where the engine finds its gateway.
pub struct Target {
    pub url: String,
    pub market_hub: String,
    pub user_hub: String,
    pub user: String,
    pub api_key: Secret,
}

impl Target {
    pub fn of(sim: &Simulator) -> Self {
        Target {
            url: sim.url(),
            market_hub: sim.market_hub_url(),
            user_hub: sim.user_hub_url(),
            user: sim.config().user.clone(),
            api_key: sim.config().api_key.clone(),
        }
    }
}

/// `moontick sim` in a process of its own, killed on drop.
pub struct SimProcess {
    child: Child,
    pub port: u16,
}

impl SimProcess {
    /// Starts `moontick sim --quote-rate <per_contract>` and waits until it answers.
    pub fn start(per_contract: f64) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_moontick"))
            .args(["sim", "--port", &port.to_string()])
            .args(["--quote-rate", &per_contract.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("moontick sim starts");
        let sim = SimProcess { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moontick sim did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        sim
    }

    pub fn target(&self) -> Target {
        let addr = format!("127.0.0.1:{}", self.port);
        Target {
            url: format!("http://{addr}"),
            market_hub: format!("ws://{addr}/hubs/market"),
            user_hub: format!("ws://{addr}/hubs/user"),
            user: "demo".into(),
            api_key: Secret::new("demo"),
        }
    }

    /// `GET /sim/stats`: quote records its market hub has written.
    pub async fn quotes_sent(&self) -> u64 {
        let url = format!("http://127.0.0.1:{}/sim/stats", self.port);
        let v: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        v["quotes_sent"].as_u64().unwrap()
    }

    /// Stops its market data (`{"fault":"quotes","on":false}`).
    pub async fn quotes_off(&self) {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/sim/faults", self.port))
            .body(r#"{"fault":"quotes","on":false}"#)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// CPU seconds the simulator process has used (`/proc/<pid>/stat`).
    pub fn cpu_secs(&self) -> f64 {
        proc_cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a process from its `stat` file, in seconds.
pub fn proc_cpu_secs(stat: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(stat) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

/// CPU time of this process, every thread (`getrusage(RUSAGE_SELF)`), in nanoseconds.
pub fn self_cpu_ns() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

/// This process's resident set, in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (ns) of this process's threads by thread name (`/proc/self/task/*/schedstat`).
pub fn cpu_by_thread() -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let (Ok(comm), Ok(sched)) = (
            std::fs::read_to_string(t.path().join("comm")),
            std::fs::read_to_string(t.path().join("schedstat")),
        ) else {
            continue;
        };
        let ns: u64 = sched
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        *out.entry(comm.trim().to_owned()).or_default() += ns;
    }
    out
}

/// The real engine with `script` as its one strategy (`bench.lua`, state in `dir/state`), no
/// rate limits on our side: this measures the path, not the budget.
pub async fn engine(
    target: &Target,
    dir: &std::path::Path,
    script: &str,
    metrics: Arc<Metrics>,
) -> Engine {
    let strategies = dir.join("strategies");
    std::fs::create_dir_all(&strategies).unwrap();
    std::fs::write(strategies.join("bench.lua"), script).unwrap();
    let transport = Transport::new(
        &target.url,
        RestBudget::new(1_000_000, 1_000_000),
        TransportOptions::default(),
    )
    .unwrap();
    let credentials = Credentials {
        username: target.user.clone(),
        api_key: target.api_key.clone(),
    };
    let session = Arc::new(Session::new(Arc::new(transport), None, Some(credentials)).unwrap());
    let client = GatewayClient::new(session);
    let account = client.accounts(true).await.unwrap().remove(0);
    let limits = RiskLimits {
        max_order_size: 5,
        max_position: 1_000_000,
        daily_loss_limit: 1e12,
        max_orders_per_minute: 1_000_000,
    };
    let guard = RiskGuard::open(limits, None, chrono::Utc::now()).unwrap();
    let mut host = HostConfig::new(&strategies);
    host.state_dir = Some(dir.join("state"));
    let engine = Engine::start(EngineParams {
        client,
        account,
        guard,
        market_hub: {
            let mut feed = MarketFeedConfig::new(target.market_hub.clone());
            // `QUEUE_BOUND` compares feed-queue bounds; the default is what `run` uses.
            feed.queue_bound = env_num("QUEUE_BOUND", feed.queue_bound as u64) as usize;
            feed
        },
        user_hub_url: target.user_hub.clone(),
        host,
        watch: false,
        metrics,
        not_placed_grace: moontick::engine::NOT_PLACED_GRACE,
        events: Default::default(),
        journal_dir: None,
    })
    .await
    .unwrap();
    engine.wait_ready(Duration::from_secs(30)).await.unwrap();
    engine
}

/// `state.<key>` of the stopped strategy, from its saved state file.
pub fn saved_number(dir: &std::path::Path, key: &str) -> f64 {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/bench.json")).unwrap())
            .unwrap();
    state[key].as_f64().unwrap_or(0.0)
}
