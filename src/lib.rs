//! moontick: a trading engine for the ProjectX Gateway API, with strategies written in Lua.
//!
//! # Layout
//!
//! - [`secret`]: the `Secret` string that never prints itself.
//! - [`gateway`]: ProjectX wire model, endpoints, session and REST client.
//! - [`signalr`]: SignalR JSON hub codec, connection task, market and user hub clients.

pub mod gateway;
pub mod secret;
pub mod signalr;
