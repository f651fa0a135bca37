//! The one-shot commands behind the CLI (`token`, …): each takes the typed config and prints
//! its result on stdout.

use anyhow::Context;

use crate::config::Config;
use crate::gateway::{self, TransportOptions};

/// `moontick token`: prints `JWT_TOKEN=<token>` and its expiry, reusing the environment's token
/// while it has over 5 minutes left, refreshing or logging in otherwise.
///
/// # Errors
/// No token and no credentials, or the gateway refused both refresh and login.
pub async fn token(config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.has_gateway_credentials(),
        "no ProjectX credentials: set PROJECT_X_USERNAME and PROJECT_X_API_KEY (or JWT_TOKEN)"
    );
    let options = TransportOptions {
        timeout: config.rest_timeout,
        ..TransportOptions::default()
    };
    let client = gateway::connect(
        &config.api_url,
        config.jwt_token.clone(),
        config.credentials(),
        options,
    )?;
    let token = client
        .session()
        .current()
        .await
        .context("getting a token")?;
    println!("JWT_TOKEN={}", token.value.expose());
    println!(
        "# expires: {}",
        token.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    Ok(())
}
