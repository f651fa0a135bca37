//! Shared fixtures for the strategy host tests: real files in a temp dir, a memory broker,
//! and waiting for conditions instead of sleeping.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moontick::script::{
    Event, Fill, Host, HostConfig, MemoryBroker, Quote, Side, StrategyStatus, SystemClock,
};

pub struct Fixture {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub broker: Arc<MemoryBroker>,
}

impl Fixture {
    pub fn new() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("moontick=debug")
            .try_init();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("strategies");
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        let state_dir = tmp.path().join("state");
        Fixture {
            dir,
            state_dir,
            _tmp: tmp,
            broker: Arc::new(MemoryBroker::new()),
        }
    }

    pub fn config(&self) -> HostConfig {
        let mut cfg = HostConfig::new(&self.dir);
        cfg.state_dir = Some(self.state_dir.clone());
        cfg.debounce = Duration::from_millis(100);
        cfg
    }

    pub fn start(&self, cfg: HostConfig) -> Host {
        Host::start(cfg, self.broker.clone(), Arc::new(SystemClock)).unwrap()
    }

    pub fn start_watching(&self) -> Host {
        let host = self.start(self.config());
        host.watch().unwrap();
        host
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.lua"))
    }

    /// Writes in place, like most tools.
    pub fn write(&self, name: &str, src: &str) {
        std::fs::write(self.path(name), src).unwrap();
    }

    /// Saves the way many editors do: a temporary file renamed over the original.
    pub fn save_by_rename(&self, name: &str, src: &str) {
        let tmp = self.dir.join(format!(".{name}.lua.tmp~"));
        std::fs::write(&tmp, src).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    /// The tags of every order the strategies submitted, oldest first.
    pub fn tags(&self) -> Vec<String> {
        self.broker
            .submitted()
            .into_iter()
            .filter_map(|(_, i)| i.tag)
            .collect()
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags().iter().any(|t| t == tag)
    }

    pub fn saved_state(&self, name: &str) -> serde_json::Value {
        let bytes = std::fs::read(self.state_dir.join(format!("{name}.json"))).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// Polls `cond` until it holds; generous, because CI machines are shared and slow.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for: {what}");
}

pub fn status(host: &Host, name: &str) -> StrategyStatus {
    host.strategy(name)
        .unwrap_or_else(|| panic!("no strategy {name}"))
}

pub fn wait_loaded(host: &Host, name: &str, generation: u64) {
    wait_until(&format!("{name} generation {generation}"), || {
        host.strategy(name)
            .is_some_and(|s| s.generation >= generation)
    });
}

pub fn quote(contract: &str, bid: f64) -> Event {
    Event::Quote(Quote {
        contract: contract.into(),
        symbol: "MNQ".into(),
        bid: Some(bid),
        ask: Some(bid + 0.25),
        last: Some(bid),
        volume: Some(100),
        open: None,
        high: None,
        low: None,
        change: None,
        time_ms: 1_700_000_000_000,
    })
}

pub fn fill(order_id: u64) -> Event {
    Event::Fill(Fill {
        order_id,
        contract: "CON.F.US.MNQ.Z25".into(),
        symbol: "MNQ".into(),
        side: Side::Buy,
        size: 1,
        price: 100.0,
        fee: 0.37,
        time_ms: 1_700_000_000_000,
    })
}
