//! The ProjectX gateway: wire model (REST payloads and hub names), endpoints, session (token,
//! judged fresh by a [`Clock`]), the transport with its request budgets, errors, the REST
//! client and symbol resolution.

pub mod budget;
pub mod client;
pub mod clock;
pub mod endpoint;
pub mod error;
pub mod hub_names;
pub mod requests;
pub mod session;
pub mod symbols;
pub mod transport;
pub mod wire;

use std::sync::Arc;

pub use client::GatewayClient;
pub use clock::{Clock, ManualClock, WallClock};
pub use endpoint::Endpoint;
pub use error::{AuthError, GatewayError};
pub use session::{Credentials, Session, Token};
pub use symbols::SymbolResolver;
pub use transport::{Transport, TransportOptions};

/// Builds the transport, session and client for one gateway.
///
/// # Errors
/// When `jwt` is unreadable and there are no credentials, or the HTTP client cannot be built.
pub fn connect(
    api_url: &str,
    jwt: Option<crate::secret::Secret>,
    credentials: Option<Credentials>,
    options: TransportOptions,
) -> anyhow::Result<GatewayClient> {
    let transport = Arc::new(Transport::new(
        api_url,
        budget::RestBudget::client_default(),
        options,
    )?);
    let session = Arc::new(Session::new(transport, jwt, credentials)?);
    Ok(GatewayClient::new(session))
}
