//! The ProjectX gateway: wire model, endpoints, session (token) and REST client.

pub mod budget;
pub mod endpoint;
pub mod requests;
pub mod wire;

pub use endpoint::Endpoint;
