//! moontick: a trading engine for the ProjectX Gateway API, with strategies written in Lua.
//!
//! # Layout
//!
//! - [`secret`]: the `Secret` string that never prints itself.
//! - [`gateway`]: ProjectX wire model, endpoints, session and REST client.
//! - [`sim`]: the built-in ProjectX gateway simulator (REST now; hubs later) and its matching engine.

pub mod gateway;
pub mod secret;
pub mod sim;
