//! Shared test support: the simulator on loopback, gateway clients for it, and a log capture
//! that lets each test assert no secret reached any log line.
#![allow(dead_code, unused_imports)]

pub mod fixture;
pub mod scripted_hub;

pub use scripted_hub::WAIT;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use moontick::gateway::budget::RestBudget;
use moontick::gateway::{Credentials, GatewayClient, Session, Transport, TransportOptions};
use moontick::secret::Secret;
use moontick::sim::{SimConfig, Simulator};

/// Every log line of this test process, at TRACE for every crate (reqwest and hyper included).
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once per test binary.
pub fn logs() -> LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        moontick::tls::ensure_crypto_provider();
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter(moontick::logging::filter_for("trace"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("no other subscriber in a test binary that captures logs");
        buffer
    })
    .clone()
}

/// Fails when any of `secrets` appears in the captured logs.
pub fn assert_no_secret_logged(secrets: &[&str]) {
    let text = logs().text();
    assert!(
        !text.is_empty(),
        "the log capture saw nothing; is the subscriber installed?"
    );
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        assert!(
            !text.contains(*s),
            "a secret appeared in the logs: {}…",
            &s[..4]
        );
    }
}

pub const USER: &str = "demo";
pub const KEY: &str = "demo-key-5f2c9a";

pub async fn start_sim(tune: impl FnOnce(&mut SimConfig)) -> Simulator {
    logs();
    let mut config = SimConfig {
        user: USER.into(),
        api_key: Secret::new(KEY),
        ..SimConfig::default()
    };
    tune(&mut config);
    Simulator::start(config).await.expect("simulator starts")
}

pub fn credentials() -> Credentials {
    Credentials {
        username: USER.into(),
        api_key: Secret::new(KEY),
    }
}

pub fn fast_options() -> TransportOptions {
    TransportOptions {
        timeout: Duration::from_secs(5),
        backoff: Duration::from_millis(20),
        ..TransportOptions::default()
    }
}

pub fn session(sim: &Simulator, jwt: Option<Secret>, creds: Option<Credentials>) -> Arc<Session> {
    session_with(sim, jwt, creds, fast_options())
}

pub fn session_with(
    sim: &Simulator,
    jwt: Option<Secret>,
    creds: Option<Credentials>,
    options: TransportOptions,
) -> Arc<Session> {
    let transport =
        Arc::new(Transport::new(&sim.url(), RestBudget::client_default(), options).unwrap());
    Arc::new(Session::new(transport, jwt, creds).expect("session builds"))
}

pub fn session_with_margin(
    sim: &Simulator,
    jwt: Option<Secret>,
    creds: Option<Credentials>,
    margin: Duration,
) -> Arc<Session> {
    let transport =
        Arc::new(Transport::new(&sim.url(), RestBudget::client_default(), fast_options()).unwrap());
    Arc::new(
        Session::new(transport, jwt, creds)
            .expect("session builds")
            .with_refresh_margin(margin),
    )
}

pub fn client(sim: &Simulator) -> GatewayClient {
    GatewayClient::new(session(sim, None, Some(credentials())))
}

/// A token straight from the simulator, through a session of its own.
pub async fn fresh_token(sim: &Simulator) -> Secret {
    session(sim, None, Some(credentials()))
        .ensure_valid_token()
        .await
        .unwrap()
}

/// An approval for a wire order, from a guard with room for anything: tests of the client and
/// the simulator need orders the real guard would pass, and the client places nothing else.
pub fn approve(
    req: &moontick::gateway::requests::PlaceOrderRequest,
) -> moontick::risk::RiskApproved<moontick::gateway::requests::OrderTerms> {
    use moontick::gateway::requests::OrderTerms;
    use moontick::gateway::wire::OrderSide;
    use moontick::market::Side;
    use moontick::risk::{Exposure, ProposedOrder, StrategyLimits};
    let side = if req.side == OrderSide::Ask {
        Side::Sell
    } else {
        Side::Buy
    };
    let terms = OrderTerms {
        account_id: req.account_id,
        order_type: req.order_type,
        limit_price: req.limit_price,
        stop_price: req.stop_price,
        trail_price: req.trail_price,
        custom_tag: req.custom_tag.clone(),
        stop_loss_bracket: req.stop_loss_bracket,
        take_profit_bracket: req.take_profit_bracket,
    };
    let proposed = ProposedOrder {
        strategy: "test".into(),
        contract_id: req.contract_id.clone(),
        side,
        size: u32::try_from(req.size).expect("a test order has a positive size"),
        payload: terms,
    };
    generous_guard()
        .check(
            proposed,
            StrategyLimits::default(),
            Exposure::default(),
            0.0,
            tokio::time::Instant::now(),
        )
        .expect("a test order within generous limits")
}

/// An approval for a wire modify that adds no contracts as far as the guard knows.
pub fn approve_modify(
    req: &moontick::gateway::requests::ModifyOrderRequest,
) -> moontick::risk::RiskApproved<moontick::gateway::requests::ModifyOrderRequest> {
    use moontick::market::Side;
    use moontick::risk::{Exposure, ProposedOrder, StrategyLimits};
    let proposed = ProposedOrder {
        strategy: "test".into(),
        contract_id: String::new(),
        side: Side::Buy,
        size: 0,
        payload: req.clone(),
    };
    generous_guard()
        .check_modify(
            proposed,
            StrategyLimits::default(),
            Exposure::default(),
            0.0,
            tokio::time::Instant::now(),
        )
        .expect("a test modify")
}

fn generous_guard() -> moontick::risk::RiskGuard {
    let limits = moontick::config::RiskLimits {
        max_order_size: 1_000_000,
        max_position: 1_000_000,
        daily_loss_limit: 1e12,
        max_orders_per_minute: 1_000_000,
    };
    moontick::risk::RiskGuard::open(limits, None, chrono::Utc::now()).unwrap()
}

/// A trade the simulator printed: (ms, price, size).
pub type Print = (i64, f64, i64);

/// Every trade the simulator prints for `contract` from now on: the ground truth.
pub fn record_prints(sim: &moontick::sim::Simulator, contract: &str) -> Arc<Mutex<Vec<Print>>> {
    let prints: Arc<Mutex<Vec<Print>>> = Arc::default();
    let mut rx = sim.subscribe_quotes();
    let sink = prints.clone();
    let id = contract.to_owned();
    tokio::spawn(async move {
        // A lagging receiver ends the record: assertions then see prints missing, never a
        // wrong one.
        while let Ok(q) = rx.recv().await {
            if *q.contract_id == *id.as_str() && q.last_size > 0 {
                sink.lock()
                    .unwrap()
                    .push((q.time.timestamp_millis(), q.last, q.last_size));
            }
        }
    });
    prints
}
