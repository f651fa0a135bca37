//! moontick: a trading engine for the ProjectX Gateway API, with strategies written in Lua.
//!
//! # Layout
//!
//! - [`commands`]: the CLI commands (`run`, `sim`, `token`, `quote`).
//! - [`config`]: typed configuration from the environment and `.env`.
//! - [`logging`]: log output, pretty or JSON.
//! - [`secret`]: the `Secret` string that never prints itself.
//! - [`gateway`]: ProjectX wire model, endpoints, session and REST client.
//! - [`signalr`]: SignalR JSON hub codec, connection task, market and user hub clients.
//! - [`sim`]: the built-in ProjectX gateway simulator (REST and both SignalR hubs) and its
//!   matching engine.

pub mod commands;
pub mod config;
pub mod gateway;
pub mod logging;
pub mod secret;
pub mod signalr;
pub mod sim;
