//! Hub state every session shares: which hub each negotiated connection token is good for, and
//! the stop signal that closes every session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

/// A negotiated connection token must be used within this long (ASP.NET keeps them a little
/// while for the transport request that follows).
const NEGOTIATED_TTL: Duration = Duration::from_secs(120);

/// Hub state shared by all sessions: negotiated connection tokens and the stop signal.
pub(crate) struct Hubs {
    negotiated: Mutex<HashMap<String, (HubKind, std::time::Instant)>>,
    stop: watch::Sender<bool>,
}

impl Default for Hubs {
    fn default() -> Self {
        Self {
            negotiated: Mutex::new(HashMap::new()),
            stop: watch::channel(false).0,
        }
    }
}

impl Hubs {
    /// Closes every open hub session (the simulator is stopping).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Turns true when the simulator stops.
    pub(crate) fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub(super) fn remember(&self, token: String, kind: HubKind) {
        let mut map = self.negotiated.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < NEGOTIATED_TTL);
        map.insert(token, (kind, std::time::Instant::now()));
    }

    /// A connection token is good for one connection to the hub that issued it.
    pub(super) fn take(&self, token: &str, kind: HubKind) -> bool {
        let mut map = self.negotiated.lock().unwrap_or_else(|p| p.into_inner());
        match map.remove(token) {
            Some((k, at)) => k == kind && at.elapsed() < NEGOTIATED_TTL,
            None => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HubKind {
    Market,
    User,
}
