//! The `moontick` binary: parses the command line and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "moontick",
    version,
    about = "A trading engine for the ProjectX Gateway API, with Lua strategies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate strategies without trading; exit status 1 on any error.
    Check {
        /// Strategy files or directories (default: $STRATEGIES_DIR or `strategies`).
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { mut files } => {
            if files.is_empty() {
                files.push(
                    std::env::var_os("STRATEGIES_DIR")
                        .map_or_else(|| PathBuf::from("strategies"), PathBuf::from),
                );
            }
            if moontick::script::check::run(&files, &mut std::io::stdout().lock()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
