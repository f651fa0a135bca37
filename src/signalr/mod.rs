//! SignalR JSON hub protocol, client side: a pure codec, the connection task (reconnecting with
//! the crate's [`Backoff`]) and its state, and the token it connects with. Nothing here knows ProjectX; the ProjectX feeds
//! (`src/feed/`) build on it.
//!
//! - [`codec`]: handshake, 0x1E framing and messages 1–7, for clients and servers alike (no I/O).
//! - [`auth`]: [`TokenSource`], the token in the hub URL, redaction.
//! - [`config`]: [`HubConfig`], where a hub is and how patient to be with it.
//! - [`error`]: [`HubError`] and [`TokenError`].
//! - [`sink`]: [`EventSink`], where the connection task hands each server invocation.
//! - [`connection`]: [`HubConnection`], the handle (invoke, subscribe, state, close).
//! - `book`: the task's bookkeeping (commands, subscriptions to replay, pending calls).
//! - `task`: the connection task behind it (token → URL → upgrade → handshake → resubscribe;
//!   keep-alive, server timeout, invoke/Completion, reconnect with [`Backoff`]).
//! - [`state`]: [`ConnectionState`], observable through a `watch` channel.

pub mod auth;

mod book;
pub mod codec;
pub mod config;
pub mod connection;
pub mod error;
pub mod sink;
pub mod state;
mod task;

pub use crate::backoff::Backoff;
pub use auth::{FixedToken, TokenSource};
pub use config::HubConfig;
pub use connection::{EVENT_CHANNEL_BOUND, HubConnection};
pub use error::{HubError, TokenError};
pub use sink::{ChannelSink, EventSink, HubEvent};
pub use state::ConnectionState;

/// A tracing filter directive that keeps the hub token out of logs: tungstenite logs the raw
/// upgrade request (the URL with `access_token`, and the `Authorization` header) at `trace`
/// through the `log` crate, which `tracing-subscriber` forwards. Add it after `RUST_LOG`, e.g.
/// `EnvFilter::from_default_env().add_directive(LOG_GUARD_DIRECTIVE.parse()?)`, so even
/// `RUST_LOG=trace` cannot print the token. `info` rather than `debug`, because the directive
/// also raises tungstenite to its level when `RUST_LOG` asked for less, and its debug lines
/// (frames, handshakes) are noise in a trader's log.
pub const LOG_GUARD_DIRECTIVE: &str = "tungstenite=info";
