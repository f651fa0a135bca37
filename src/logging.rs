//! Log output: readable lines or JSON (`LOG_FORMAT`), filtered by `RUST_LOG`, coloured only on a
//! terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Logs go to stderr so that commands printing a result
/// (`moontick token`, `moontick quote`) keep stdout clean.
pub fn init(format: LogFormat, filter: &str) {
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter_for(filter))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Colour only for a person watching a terminal: escape codes in a redirected log (a file,
/// `docker logs`, a log shipper) are noise. `NO_COLOR` set to anything but the empty string
/// turns colour off everywhere (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }
}
