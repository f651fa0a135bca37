//! SignalR JSON hub protocol: a pure codec, the client connection task, and the ProjectX market
//! and user hub clients built on it.
//!
//! - [`codec`]: handshake, 0x1E framing and messages 1–7, for clients and servers alike (no I/O).
//! - [`auth`]: [`TokenSource`], the token in the hub URL, redaction.
//! - [`connection`]: [`HubConnection`], the connection task (token → URL → upgrade → handshake →
//!   resubscribe; keep-alive, server timeout, invoke/Completion, reconnect with [`backoff`]).
//! - `task`: the connection task behind [`HubConnection`].
//! - [`state`]: [`ConnectionState`], observable through a `watch` channel.
//! - [`market`]: the market hub client and its events.
//! - [`market_data`]: quotes (sparse, merged per contract), trades, depth, stale detection.
//! - [`user`]: accounts, orders, positions and fills, wrapped or bare.

pub mod auth;
pub mod backoff;
pub mod codec;
pub mod connection;
pub mod market;
pub mod market_data;
pub mod state;
mod task;
pub mod user;

pub use auth::{FixedToken, TokenSource};
pub use backoff::Backoff;
pub use connection::{HubConfig, HubConnection, HubError, HubEvent};
pub use market::{MarketEvent, MarketHub, MarketHubConfig, Quote, QuoteBook};
pub use state::ConnectionState;
pub use user::{UserEvent, UserHub};

/// A tracing filter directive that keeps the hub token out of logs: tungstenite logs the raw
/// upgrade request (the URL with `access_token`, and the `Authorization` header) at `trace`
/// through the `log` crate, which `tracing-subscriber` forwards. Add it after `RUST_LOG`, e.g.
/// `EnvFilter::from_default_env().add_directive(LOG_GUARD_DIRECTIVE.parse()?)`, so even
/// `RUST_LOG=trace` cannot print the token. `info` rather than `debug`, because the directive
/// also raises tungstenite to its level when `RUST_LOG` asked for less, and its debug lines
/// (frames, handshakes) are noise in a trader's log.
pub const LOG_GUARD_DIRECTIVE: &str = "tungstenite=info";
