//! How to run a simulator ([`SimConfig`]) and the accounts it serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::fault_spec::FaultSpec;
use crate::gateway::{Clock, WallClock};
use crate::secret::Secret;

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    pub user: String,
    pub api_key: Secret,
    /// Lifetime of issued tokens (the real gateway's is 24 h; tests use seconds).
    pub token_lifetime: Duration,
    /// Quotes per second per active contract; 0 means quotes move only through
    /// [`Simulator::set_price`](super::Simulator::set_price) and
    /// [`Simulator::step_quotes`](super::Simulator::step_quotes).
    pub quote_rate: f64,
    /// Seeds the price walks and the history before the start.
    pub seed: u64,
    /// The account's bracket mode: `false` is the gateway's default "Position Brackets" mode,
    /// where brackets on place are refused.
    pub auto_oco_brackets: bool,
    /// Answer 429 beyond the documented budget (200 / 60 s, bars 50 / 30 s) per user.
    pub rate_limits: bool,
    pub starting_balance: f64,
    /// When tokens are issued and expire (tests share a manual clock with the client).
    pub clock: Arc<dyn Clock>,
    /// The hubs ping each client this often (ASP.NET's KeepAliveInterval, 15 s).
    pub hub_keep_alive: Duration,
    /// A hub client that sends nothing for this long is disconnected (ASP.NET's
    /// ClientTimeoutInterval, 30 s).
    pub hub_client_timeout: Duration,
    /// Faults switched on at start (`moontick sim --fault`), in order.
    pub faults: Vec<FaultSpec>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            user: "demo".into(),
            api_key: Secret::new("demo"),
            token_lifetime: Duration::from_secs(24 * 3600),
            quote_rate: 4.0,
            seed: 42,
            auto_oco_brackets: true,
            rate_limits: true,
            starting_balance: 50_000.0,
            hub_keep_alive: Duration::from_secs(15),
            hub_client_timeout: Duration::from_secs(30),
            clock: Arc::new(WallClock),
            faults: Vec::new(),
        }
    }
}

/// The tradable practice account.
pub const ACCOUNT_ID: i32 = 10_001;

/// An account that is neither tradable nor visible (filtered by `onlyActiveAccounts`).
pub const INACTIVE_ACCOUNT_ID: i32 = 10_002;
