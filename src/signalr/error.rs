//! What can go wrong on a hub connection ([`HubError`]) and when asking for its token
//! ([`TokenError`]). Neither ever contains the token.

use std::time::Duration;

/// Why a [`super::TokenSource`] could not hand out a token. The text is logged and shown in the
/// connection state, so implementers must never put the token in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The credentials or the token were refused: retrying soon will fail the same way.
    #[error("{0}")]
    Refused(String),
    /// No token could be had right now (login service unreachable, a timeout): worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// The token cannot be sent in an HTTP header (control characters).
    #[error("token is not a valid header value")]
    NotAHeaderValue,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("token source failed: {0}")]
    Token(#[from] TokenError),
    #[error("invalid hub URL: {0}")]
    Url(String),
    #[error(
        "{hub} hub refused the WebSocket upgrade with HTTP {status} (check the token and hub URL)"
    )]
    Rejected { hub: String, status: u16 },
    #[error("{hub} hub WebSocket error: {message}")]
    WebSocket { hub: String, message: String },
    #[error("{hub} hub did not answer within {after:?} ({stage})")]
    Timeout {
        hub: String,
        stage: &'static str,
        after: Duration,
    },
    #[error("{hub} hub rejected the handshake: {message}")]
    HandshakeRejected { hub: String, message: String },
    #[error("{hub} hub closed the connection{}", .error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    ServerClosed {
        hub: String,
        error: Option<String>,
        allow_reconnect: bool,
    },
    /// A Completion with an error: the server's own message.
    #[error("SignalR {hub} hub error: {message}")]
    Server { hub: String, message: String },
    #[error("{hub} hub: no Completion for {target} within {after:?}")]
    InvokeTimeout {
        hub: String,
        target: String,
        after: Duration,
    },
    #[error("{hub} hub is not connected")]
    NotConnected { hub: String },
    #[error("{hub} hub connection lost: {reason}")]
    ConnectionLost { hub: String, reason: String },
    #[error("{hub} hub connection is closed")]
    Closed { hub: String },
}
