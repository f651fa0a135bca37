//! moontick: a trading engine for the ProjectX Gateway API, with strategies written in Lua.
//!
//! # Layout
//!
//! - [`commands`]: the one-shot CLI commands (`sim`, `check`, `token`, `quote`).
//! - [`config`]: typed configuration from the environment and `.env`.
//! - [`engine`]: the engine loop: quotes → strategies → risk guard → orders, reconciliation.
//! - [`gateway`]: ProjectX wire model, endpoints, session (token refresh by a `Clock`) and REST
//!   client.
//! - [`http`]: the HTTP server: webhook relay into strategies, health, readiness, status,
//!   metrics, the kill switch; graceful shutdown.
//! - [`logging`]: log output, pretty or JSON.
//! - [`metrics`]: the Prometheus counters and histograms every module increments.
//! - [`risk`]: the risk guard: limits, order rate, daily loss, kill switch.
//! - [`run`]: `moontick run(config, listener, shutdown)`: session or simulator, engine, HTTP
//!   server, shutdown; `run::state_dir` locks `STATE_DIR` and keeps state per gateway and
//!   account.
//! - [`script`]: the Lua strategy host: sandboxed VM per strategy, the `bot` API, hot reload,
//!   state, and `moontick check`.
//! - [`secret`]: the `Secret` string that never prints itself.
//! - [`signalr`]: SignalR JSON hub codec, connection task, market and user hub clients.
//! - [`sim`]: the built-in ProjectX gateway simulator (REST and both SignalR hubs) and its
//!   matching engine.

pub mod commands;
pub mod config;
pub mod engine;
pub mod gateway;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod risk;
pub mod run;
pub mod script;
pub mod secret;
pub mod signalr;
pub mod sim;
