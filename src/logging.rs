//! Log output: readable lines or JSON (`LOG_FORMAT`), filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Logs go to stderr so that commands printing a result
/// (`moontick token`, `moontick quote`) keep stdout clean.
pub fn init(format: LogFormat, filter: &str) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter_for(filter))
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The filter for a `RUST_LOG`-style spec, with the guards that keep secrets out of the logs
/// whatever the spec asks for. Tests capture logs through the same filter.
pub fn filter_for(spec: &str) -> EnvFilter {
    let base = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    // tungstenite logs the raw WebSocket upgrade request, token included, at trace.
    base.add_directive(
        crate::signalr::LOG_GUARD_DIRECTIVE
            .parse()
            .expect("the guard parses"),
    )
}
