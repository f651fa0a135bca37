//! moontick: a trading engine for the ProjectX Gateway API, with strategies written in Lua.
//!
//! # Layout
//!
//! - [`commands`]: the CLI commands (`run`, `sim`, `token`, `quote`).
//! - [`config`]: typed configuration from the environment and `.env`.
//! - [`engine`]: the engine loop: quotes → strategies → risk guard → orders, reconciliation.
//! - [`gateway`]: ProjectX wire model, endpoints, session and REST client.
//! - [`logging`]: log output, pretty or JSON.
//! - [`risk`]: the risk guard: limits, order rate, daily loss, kill switch.
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
pub mod logging;
pub mod risk;
pub mod script;
pub mod secret;
pub mod signalr;
pub mod sim;
