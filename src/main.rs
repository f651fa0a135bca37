//! The `moontick` binary: parses the command line and calls into the library.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use moontick::secret::Secret;
use moontick::sim::{SimConfig, Simulator};

#[derive(Parser)]
#[command(
    name = "moontick",
    version,
    about = "A trading engine for the ProjectX Gateway API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the built-in ProjectX gateway simulator on loopback until Ctrl-C.
    Sim(SimArgs),
}

#[derive(clap::Args)]
struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The one user the simulator knows.
    #[arg(long, default_value = "demo")]
    user: String,
    /// That user's API key.
    #[arg(long, default_value = "demo")]
    api_key: String,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    token_lifetime: u64,
    /// Quotes per second per contract.
    #[arg(long, default_value_t = 4.0)]
    quote_rate: f64,
    /// Seed of the price walks.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // reqwest is built without a rustls provider; one process-wide provider is installed here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Sim(args) => run_sim(args).await,
    }
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], args.port)),
        user: args.user.clone(),
        api_key: Secret::new(args.api_key.clone()),
        token_lifetime: Duration::from_secs(args.token_lifetime),
        quote_rate: args.quote_rate,
        seed: args.seed,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config)
        .await
        .context("starting the simulator")?;
    // The default key is the public demo value and is printed so a user can paste it; a key
    // chosen on the command line is treated as a secret and not echoed.
    let key = if args.api_key == "demo" {
        "\"demo\""
    } else {
        "as given by --api-key"
    };
    println!(
        "ProjectX simulator at {} (user {:?}, API key {key}); Ctrl-C stops it",
        sim.url(),
        args.user
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}
