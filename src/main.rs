//! The `moontick` binary: parses the command line, loads the configuration and calls into the
//! library.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use moontick::config::Config;
use moontick::secret::Secret;
use moontick::sim::SimConfig;
use moontick::sim::fault_spec::FaultSpec;

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
    /// The engine (the default). Without ProjectX credentials it runs against the built-in
    /// simulator on loopback.
    Run,
    /// Run the built-in ProjectX gateway simulator on loopback until Ctrl-C.
    Sim(SimArgs),
    /// Load and validate strategies without trading; exit status 1 on any error.
    Check {
        /// Strategy files or directories (default: STRATEGIES_DIR, else `strategies`).
        files: Vec<PathBuf>,
    },
    /// Print a fresh `JWT_TOKEN=...` line and its expiry (reuses JWT_TOKEN while it needs no
    /// refresh: over 5 minutes, or half its lifetime, left).
    Token,
    /// Record quotes, trades and depth of the named contracts to RECORD_DIR without trading,
    /// until Ctrl-C (see docs/recording.md).
    Record {
        /// Tickers (`MNQ`, `ES`, …) or full contract ids.
        #[arg(required = true)]
        symbols: Vec<String>,
    },
    /// Run strategies over a recording, or over bars fetched with --bars (see README,
    /// "Backtesting"): the same engine, risk guard and `bot` API on a simulated clock, orders
    /// filled by the simulator's matching engine against the recorded (or bar-derived) quotes.
    /// Prints a summary; writes trades.csv, equity.csv and report.html.
    Backtest(BacktestArgs),
    /// Play a recording through the engine in scaled real time with the HTTP server up (status
    /// page, dashboard, /status, /metrics), to watch strategies as if live. Never live: orders
    /// fill in the simulated exchange against the recorded quotes, as in `backtest`. Prints the
    /// backtest's summary at the end and serves until Ctrl-C (see README, "Replay").
    Replay(ReplayArgs),
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

#[derive(clap::Args)]
struct BacktestArgs {
    /// Strategy files (`*.lua`).
    #[arg(required = true)]
    strategies: Vec<PathBuf>,
    /// A recording file, a day's directory or a RECORD_DIR; with --bars, the cache's root
    /// (default: RECORD_DIR).
    #[arg(long, required_unless_present = "bars")]
    data: Option<PathBuf>,
    /// Play bars of this timeframe (`1m`, `5s`, `1h`, …) fetched from History/retrieveBars
    /// for --from..--to instead of a recording (see README, "Backtesting from bars").
    #[arg(long, requires_all = ["from", "to"], value_parser = parse_timeframe)]
    bars: Option<moontick::bars::Timeframe>,
    /// The first CME trading day of --bars, YYYY-MM-DD.
    #[arg(long, requires = "bars", value_parser = parse_day)]
    from: Option<chrono::NaiveDate>,
    /// The last CME trading day of --bars, YYYY-MM-DD.
    #[arg(long, requires = "bars", value_parser = parse_day)]
    to: Option<chrono::NaiveDate>,
    /// Commission per contract per side, in dollars (default: the product's usual fee).
    #[arg(long)]
    commission: Option<f64>,
    /// Ticks a market order or triggered stop pays beyond the touch.
    #[arg(long, default_value_t = 0)]
    slippage: u32,
    /// Where trades.csv and equity.csv go.
    #[arg(long, default_value = "backtest")]
    out: PathBuf,
    /// The account's starting balance.
    #[arg(long, default_value_t = 50_000.0)]
    balance: f64,
    /// Sweep one of the strategy's `params` over values (repeatable): every combination runs,
    /// in parallel on every core; one row each in sweep.csv.
    #[arg(long = "param", value_name = "NAME=V1,V2,...")]
    params: Vec<moontick::backtest::ParamAxis>,
    /// What a sweep's rows are sorted by, best first: net_pnl, sharpe, profit_factor,
    /// max_drawdown (smallest first) or win_rate.
    #[arg(long, default_value = "net_pnl", value_name = "METRIC")]
    sort: moontick::backtest::sweep::SortBy,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Strategy files (`*.lua`; default: every one in STRATEGIES_DIR).
    strategies: Vec<PathBuf>,
    /// A recording file, a day's directory or a RECORD_DIR.
    #[arg(long)]
    data: PathBuf,
    /// How many times faster than recorded (`10`, `0.5`), or `max`.
    #[arg(long, default_value = "1", value_parser = moontick::replay::Speed::parse)]
    speed: moontick::replay::Speed,
    /// Stop when the recording has played instead of serving until Ctrl-C.
    #[arg(long)]
    exit_at_end: bool,
    /// Commission per contract per side, in dollars (default: the product's usual fee).
    #[arg(long)]
    commission: Option<f64>,
    /// Ticks a market order or triggered stop pays beyond the touch.
    #[arg(long, default_value_t = 0)]
    slippage: u32,
    /// Where trades.csv, equity.csv and report.html go at the end.
    #[arg(long, default_value = "replay")]
    out: PathBuf,
    /// The account's starting balance.
    #[arg(long, default_value_t = 50_000.0)]
    balance: f64,
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
    /// A fault switched on at start, as JSON (repeatable), e.g.
    /// `--fault '{"fault":"delay","endpoint":"Order/place","ms":500}'`; the same switches as
    /// `POST /sim/faults` (see README).
    #[arg(long = "fault", value_name = "JSON", value_parser = FaultSpec::parse)]
    faults: Vec<FaultSpec>,
}

impl SimArgs {
    fn into_config(self) -> SimConfig {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], self.port)),
            user: self.user,
            api_key: Secret::new(self.api_key),
            token_lifetime: Duration::from_secs(self.token_lifetime),
            quote_rate: self.quote_rate,
            seed: self.seed,
            faults: self.faults,
            ..SimConfig::default()
        }
    }
}

fn main() -> ExitCode {
    moontick::tls::ensure_crypto_provider();
    let cli = Cli::parse();
    let config = match Config::from_process() {
        Ok(c) => c,
        Err(e) => {
            eprint!("moontick: {e}");
            return ExitCode::from(2);
        }
    };
    moontick::logging::init(config.log_format, &config.log_filter);
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Backtest(args) = command {
        return match backtest(&config, args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("moontick: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    let result = runtime.block_on(async {
        match command {
            Command::Run => run(&config).await,
            Command::Sim(args) => {
                let stop = shutdown_signal()?;
                moontick::commands::sim(args.into_config(), stop).await
            }
            Command::Token => moontick::commands::token(&config).await,
            Command::Quote { symbol, wait } => {
                let wait = Duration::from_secs_f64(wait.clamp(0.0, 60.0));
                moontick::commands::quote(&config, &symbol, wait).await
            }
            Command::Record { symbols } => {
                let stop = shutdown_signal()?;
                moontick::run::record::record(&config, &symbols, stop).await
            }
            Command::Check { files } => moontick::commands::check(&config, files),
            Command::Replay(args) => replay(&config, args).await,
            Command::Backtest(_) => unreachable!("handled before the runtime starts"),
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

/// `moontick backtest`: runs on its own (simulated) clock, without the async runtime.
fn backtest(config: &Config, args: BacktestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.commission.is_none_or(|c| c.is_finite() && c >= 0.0),
        "--commission must be a non-negative number of dollars"
    );
    let bars = match (args.bars, args.from, args.to) {
        (Some(timeframe), Some(from), Some(to)) => Some(moontick::backtest::BarsRange {
            timeframe,
            from,
            to,
            cache: args.data.clone().or_else(|| config.record_dir.clone()),
            gateway: config.clone(),
        }),
        _ => None,
    };
    let cfg = moontick::backtest::BacktestConfig {
        strategies: args.strategies,
        data: args.data.unwrap_or_default(),
        bars,
        commission: args.commission,
        slippage_ticks: args.slippage,
        limits: config.risk.clone(),
        balance: args.balance,
        work_dir: args.out.join(".strategies"),
    };
    if !args.params.is_empty() {
        let sweep = moontick::backtest::sweep::sweep(&cfg, &args.params, args.sort, None)?;
        sweep.write(&args.out)?;
        print!("{}", sweep.table());
        println!("sweep.csv in {}", args.out.display());
        return Ok(());
    }
    let report = moontick::backtest::run(&cfg)?;
    moontick::backtest::write_outputs(&report, &args.out)?;
    print!("{}", report.summary());
    println!(
        "trades.csv, equity.csv and report.html in {}",
        args.out.display()
    );
    Ok(())
}

fn parse_timeframe(s: &str) -> Result<moontick::bars::Timeframe, String> {
    moontick::bars::Timeframe::parse(s).map_err(|e| e.to_string())
}

fn parse_day(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| format!("{e}: a CME trading day is written YYYY-MM-DD"))
}

/// `moontick replay`: binds the HTTP port like `run`, then plays until Ctrl-C (see README).
async fn replay(config: &Config, args: ReplayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.commission.is_none_or(|c| c.is_finite() && c >= 0.0),
        "--commission must be a non-negative number of dollars"
    );
    config.check_http()?;
    let stop = shutdown_signal()?;
    let listener = bind_http(config).await?;
    let cfg = moontick::replay::ReplayConfig {
        backtest: moontick::backtest::BacktestConfig {
            strategies: args.strategies,
            data: args.data,
            bars: None,
            commission: args.commission,
            slippage_ticks: args.slippage,
            limits: config.risk.clone(),
            balance: args.balance,
            work_dir: args.out.join(".strategies"),
        },
        speed: args.speed,
        exit_at_end: args.exit_at_end,
        out: Some(args.out),
    };
    moontick::replay::replay(config, cfg, listener, stop)
        .await
        .map(drop)
}

/// The HTTP server's port (`PORT` on `BIND_ADDR`).
async fn bind_http(config: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = SocketAddr::new(config.bind_addr, config.port);
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the HTTP server to {addr} (PORT / BIND_ADDR)"))
}

/// `moontick run`: binds the HTTP port, then runs until Ctrl-C or SIGTERM.
async fn run(config: &Config) -> anyhow::Result<()> {
    // The configuration is checked before the port is taken, so its error comes first.
    config.check_http()?;
    let stop = shutdown_signal()?;
    let listener = bind_http(config).await?;
    moontick::run::run(config, listener, stop).await
}

/// Resolves on Ctrl-C or SIGTERM (what Docker and Railway send). The handlers are installed
/// at once, so a signal during start-up is not lost (nor kills the process unsaved).
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
