//! SignalR JSON hub protocol: a pure codec, the client connection task, and the ProjectX market
//! and user hub clients built on it.
//!
//! - [`codec`]: handshake, 0x1E framing and messages 1–7, for clients and servers alike (no I/O).
//! - [`connection`]: [`HubConnection`], the connection task (token → URL → upgrade → handshake →
//!   resubscribe; keep-alive, server timeout, invoke/Completion, reconnect with [`backoff`]).
//! - [`state`]: [`ConnectionState`], observable through a `watch` channel.
//! - [`market`]: quotes (sparse, merged per contract), trades, depth, stale detection.
//! - [`user`]: accounts, orders, positions and fills, wrapped or bare.

pub mod backoff;
pub mod codec;
pub mod connection;
pub mod market;
pub mod state;
pub mod user;

pub use backoff::Backoff;
pub use connection::{FixedToken, HubConfig, HubConnection, HubError, HubEvent, TokenSource};
pub use market::{MarketEvent, MarketHub, MarketHubConfig, Quote, QuoteBook};
pub use state::ConnectionState;
pub use user::{UserEvent, UserHub};
