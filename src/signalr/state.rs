//! The hub connection's state: an enum that changes only through named transitions, published
//! on a `watch` channel so the feed status, `/readyz` and `on_feed` can follow it.

use tokio::sync::watch;

/// Where a hub connection is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Getting a token and opening the WebSocket. `attempt` is 0 on the first connect.
    Connecting { attempt: u32 },
    /// Upgraded; waiting for the handshake reply.
    Handshaking,
    /// Handshake done and subscriptions re-sent: events flow.
    Live,
    /// The last connection failed or dropped; waiting out the backoff before attempt `attempt`.
    Reconnecting { attempt: u32, reason: String },
    /// Terminal: no more reconnects (closed by us, or by the server without `allowReconnect`).
    Closed { reason: String },
}

impl Default for ConnectionState {
    /// Where every connection starts.
    fn default() -> Self {
        Self::Connecting { attempt: 0 }
    }
}

impl ConnectionState {
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Live)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed { .. })
    }

    /// A short word for status pages and `on_feed`: `connecting`, `live`, `reconnecting`, `closed`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Connecting { .. } | Self::Handshaking => "connecting",
            Self::Live => "live",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Closed { .. } => "closed",
        }
    }
}

/// The writing side, owned by the connection task. Once closed it ignores every transition, so a
/// late error cannot bring a stopped connection back to life.
#[derive(Debug)]
pub(crate) struct StateMachine {
    tx: watch::Sender<ConnectionState>,
}

impl StateMachine {
    pub(crate) fn new() -> (Self, watch::Receiver<ConnectionState>) {
        let (tx, rx) = watch::channel(ConnectionState::Connecting { attempt: 0 });
        (Self { tx }, rx)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.tx.subscribe()
    }

    fn set(&self, next: ConnectionState) {
        self.tx.send_if_modified(|cur| {
            if cur.is_closed() || *cur == next {
                return false;
            }
            tracing::debug!(
                from = cur.label(),
                to = next.label(),
                "hub connection state"
            );
            *cur = next;
            true
        });
    }

    pub(crate) fn connecting(&self, attempt: u32) {
        self.set(ConnectionState::Connecting { attempt });
    }

    pub(crate) fn handshaking(&self) {
        self.set(ConnectionState::Handshaking);
    }

    pub(crate) fn live(&self) {
        self.set(ConnectionState::Live);
    }

    pub(crate) fn reconnecting(&self, attempt: u32, reason: impl Into<String>) {
        self.set(ConnectionState::Reconnecting {
            attempt,
            reason: reason.into(),
        });
    }

    pub(crate) fn closed(&self, reason: impl Into<String>) {
        self.set(ConnectionState::Closed {
            reason: reason.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_terminal() {
        let (sm, rx) = StateMachine::new();
        sm.handshaking();
        sm.live();
        assert!(rx.borrow().is_live());
        sm.closed("server said no");
        sm.reconnecting(1, "late error");
        sm.live();
        assert_eq!(
            *rx.borrow(),
            ConnectionState::Closed {
                reason: "server said no".into()
            }
        );
    }

    #[test]
    fn labels() {
        assert_eq!(ConnectionState::Handshaking.label(), "connecting");
        assert_eq!(
            ConnectionState::Reconnecting {
                attempt: 2,
                reason: String::new()
            }
            .label(),
            "reconnecting"
        );
    }
}
