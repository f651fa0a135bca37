//! moontick: a trading engine for the ProjectX Gateway API, with strategies written in Lua.
//!
//! # Layout
//!
//! - [`secret`]: the `Secret` string that never prints itself.
//! - [`gateway`]: ProjectX wire model, endpoints, session and REST client.
//! - [`script`]: the Lua strategy host: sandboxed VM per strategy, the `bot` API, hot reload,
//!   state, and `moontick check`.

pub mod gateway;
pub mod script;
pub mod secret;
