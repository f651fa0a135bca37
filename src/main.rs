//! The `moontick` binary: parses the command line, loads the configuration and calls into the
//! library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use moontick::config::Config;

#[derive(Parser)]
#[command(
    name = "moontick",
    version,
    about = "Lua-scripted trading engine for the ProjectX Gateway API"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a fresh `JWT_TOKEN=...` line and its expiry (reuses JWT_TOKEN while it has over
    /// 5 minutes left).
    Token,
    /// Print one quote as JSON: live from the market hub, or the latest REST bar when no quote
    /// arrives in time (`"source"` says which).
    Quote {
        /// A ticker (`MNQ`, `ES`, …) or a full contract id.
        symbol: String,
        /// Seconds to wait for a live quote before falling back to bars.
        #[arg(long, default_value_t = 2.0)]
        wait: f64,
    },
}

fn main() -> ExitCode {
    // reqwest and tokio-tungstenite are built without a provider of their own; without this the
    // first TLS connection panics.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let config = match Config::from_process() {
        Ok(c) => c,
        Err(e) => {
            eprint!("moontick: {e}");
            return ExitCode::from(2);
        }
    };
    moontick::logging::init(config.log_format, &config.log_filter);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Token) => moontick::commands::token(&config).await,
            Some(Command::Quote { symbol, wait }) => {
                let wait = std::time::Duration::from_secs_f64(wait.clamp(0.0, 60.0));
                moontick::commands::quote(&config, &symbol, wait).await
            }
            None => anyhow::bail!("no command given: try `moontick --help`"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moontick: {e:#}");
            ExitCode::FAILURE
        }
    }
}
