//! A hub connection's settings: where the hub is and how patient to be with it.

use std::time::Duration;

use crate::backoff::Backoff;

/// How to reach a hub and how patient to be with it.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// `market` or `user`: names the hub in logs (`SignalR market hub error: ...`) and errors.
    pub name: String,
    /// `https://`, `http://`, `wss://` or `ws://` hub URL, without the token.
    pub url: String,
    /// Limit on the WebSocket upgrade and, separately, on the handshake reply.
    pub handshake_timeout: Duration,
    /// We send a Ping this often (SignalR's 15 s default), so the server does not drop us.
    pub keep_alive_interval: Duration,
    /// No frame from the server for this long means the connection is dead (SignalR's 30 s).
    pub server_timeout: Duration,
    /// How long `invoke` waits for its Completion.
    pub invoke_timeout: Duration,
    pub backoff: Backoff,
}

impl HubConfig {
    /// SignalR's defaults: 15 s keep-alive, 30 s server timeout; 10 s handshake and invoke.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            handshake_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(15),
            server_timeout: Duration::from_secs(30),
            invoke_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
        }
    }
}
