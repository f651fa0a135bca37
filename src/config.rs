//! Typed configuration from the environment and `.env`: validated once, every problem reported
//! at once, secrets redacted. The library never reads the environment itself; `main` builds a
//! [`Config`] and hands each part what it needs.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use crate::gateway::Credentials;
use crate::notify::NotifyConfig;
use crate::secret::Secret;

/// The risk guard's global limits (owned by `risk`), read here like every other setting.
pub use crate::risk::RiskLimits;

pub const DEFAULT_API_URL: &str = "https://api.topstepx.com";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// How strategies are kept responsive and bounded (issues 9 and 10): coalescing, watchdog,
/// shutdown. Copied into the script host's `HostConfig` by `run`.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyRuntime {
    /// `QUOTE_BACKLOG`: quotes waiting for one strategy beyond which they coalesce (latest per
    /// contract) until it catches up.
    pub quote_backlog: usize,
    /// `QUOTE_BACKLOG_MS`: age of a strategy's oldest waiting delivery beyond which quotes
    /// coalesce likewise.
    pub quote_backlog_age: Duration,
    /// `STRATEGY_WATCHDOG_MS`: a callback running longer marks its strategy stuck.
    pub watchdog: Duration,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long shutdown waits for strategies to stop.
    pub shutdown_timeout: Duration,
}

/// Everything the program reads from its environment.
#[derive(Clone)]
pub struct Config {
    pub jwt_token: Option<Secret>,
    pub username: Option<String>,
    pub api_key: Option<Secret>,
    pub api_url: String,
    /// `wss://` (or `ws://` for a local simulator) URL of the market hub.
    pub market_hub_url: String,
    pub user_hub_url: String,
    /// Name of the hub event carrying quotes (`GatewayQuote`).
    pub quote_event: String,
    pub account_id: Option<i32>,
    pub port: u16,
    /// Address the HTTP server binds: `BIND_ADDR` (or `HOST` when it is an IP), else `0.0.0.0` inside a container
    /// (where loopback is unreachable from outside), else `127.0.0.1`.
    pub bind_addr: IpAddr,
    pub webhook_secret: Option<Secret>,
    /// `WEBHOOK_DEDUPE_SECS`: a webhook repeating one seen this recently is not run again.
    pub webhook_dedupe_window: Duration,
    pub strategies_dir: PathBuf,
    pub state_dir: PathBuf,
    pub risk: RiskLimits,
    pub log_format: LogFormat,
    /// `RUST_LOG`: which log lines to write (`info` by default).
    pub log_filter: String,
    /// Whole-request timeout of a REST call.
    pub rest_timeout: Duration,
    /// `NOT_PLACED_GRACE_SECS`: how long after a place whose outcome is unknown a lookup that
    /// finds nothing may report the order "not placed" (until then it stays `unknown`).
    pub not_placed_grace: Duration,
    pub strategy_runtime: StrategyRuntime,
    /// `RECORD_DIR` (default `data`): where market data is recorded; `None` when set empty.
    pub record_dir: Option<PathBuf>,
    /// `RECORD_MAX_MB` (default 1024) in bytes: the cap of one recording file.
    pub record_max_bytes: u64,
    /// `NOTIFY_URL` and `NOTIFY_EVENTS`; the URLs are secrets (they carry tokens).
    pub notify: NotifyConfig,
}

impl fmt::Debug for Config {
    // Written out so that adding a secret field cannot print it by accident: every field
    // goes through here, and secrets are `Secret`, whose Debug is `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("jwt_token", &self.jwt_token)
            .field("username", &self.username)
            .field("api_key", &self.api_key)
            .field("api_url", &self.api_url)
            .field("market_hub_url", &self.market_hub_url)
            .field("user_hub_url", &self.user_hub_url)
            .field("quote_event", &self.quote_event)
            .field("account_id", &self.account_id)
            .field("port", &self.port)
            .field("bind_addr", &self.bind_addr)
            .field("webhook_secret", &self.webhook_secret)
            .field("webhook_dedupe_window", &self.webhook_dedupe_window)
            .field("strategies_dir", &self.strategies_dir)
            .field("state_dir", &self.state_dir)
            .field("risk", &self.risk)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("rest_timeout", &self.rest_timeout)
            .field("not_placed_grace", &self.not_placed_grace)
            .field("strategy_runtime", &self.strategy_runtime)
            .field("record_dir", &self.record_dir)
            .field("record_max_bytes", &self.record_max_bytes)
            .field("notify", &self.notify)
            .finish()
    }
}

/// Every problem found in the configuration, one per line.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads the process environment and `.env` in the working directory (the environment wins).
    ///
    /// # Errors
    /// Every invalid or inconsistent variable, at once; an unreadable `.env` too.
    pub fn from_process() -> Result<Self, ConfigErrors> {
        let mut vars: HashMap<String, String> = HashMap::new();
        match dotenvy::from_path_iter(".env") {
            Ok(iter) => {
                for item in iter {
                    match item {
                        Ok((k, v)) => {
                            vars.insert(k, v);
                        }
                        Err(e) => return Err(ConfigErrors(vec![format!(".env: {e}")])),
                    }
                }
            }
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigErrors(vec![format!(".env: {e}")])),
        }
        vars.extend(std::env::vars());
        // No guessing from `/.dockerenv`: development containers and CI machines are containers
        // too, and a plain local run there must stay on loopback (and need no secret). Our image
        // sets `BIND_ADDR=0.0.0.0` itself, and Railway is recognised by its own variables.
        Self::from_vars_in(&vars, false)
    }

    /// Builds a config from variables (as the environment would give them).
    ///
    /// # Errors
    /// Every invalid or inconsistent variable, at once.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigErrors> {
        Self::from_vars_in(vars, false)
    }

    /// As [`Config::from_vars`]; `in_container` makes the HTTP server bind `0.0.0.0` unless
    /// `BIND_ADDR` says otherwise.
    ///
    /// # Errors
    /// Every invalid or inconsistent variable, at once.
    pub fn from_vars_in(
        vars: &HashMap<String, String>,
        in_container: bool,
    ) -> Result<Self, ConfigErrors> {
        let mut r = Reader {
            vars,
            errors: Vec::new(),
        };
        let jwt_token = r.string("JWT_TOKEN").map(Secret::new);
        let username = r.string("PROJECT_X_USERNAME");
        let api_key = r.string("PROJECT_X_API_KEY").map(Secret::new);
        match (&username, &api_key) {
            (Some(_), None) => r.error("PROJECT_X_USERNAME is set but PROJECT_X_API_KEY is not"),
            (None, Some(_)) => r.error("PROJECT_X_API_KEY is set but PROJECT_X_USERNAME is not"),
            _ => {}
        }
        let api_url = r
            .url("PROJECT_X_API_URL", &["http", "https"])
            .unwrap_or_else(|| Url::parse(DEFAULT_API_URL).expect("default URL parses"));
        let market_hub_url = r
            .url("PROJECT_X_MARKET_HUB_URL", &["http", "https", "ws", "wss"])
            .unwrap_or_else(|| default_hub_url(&api_url, "market"));
        let user_hub_url = r
            .url("PROJECT_X_USER_HUB_URL", &["http", "https", "ws", "wss"])
            .unwrap_or_else(|| default_hub_url(&api_url, "user"));
        let quote_event = r
            .string("PROJECT_X_QUOTE_EVENT")
            .unwrap_or_else(|| "GatewayQuote".into());
        let account_id = r.parse::<i32>("PROJECT_X_ACCOUNT_ID", "an account id (integer)");
        let port = r
            .parse::<u16>("PORT", "a TCP port (0-65535)")
            .unwrap_or(8080);
        let webhook_secret = r.string("WEBHOOK_SECRET").map(Secret::new);
        // Railway always sets its own variables; there the server must be reachable.
        let in_container = in_container || r.string("RAILWAY_ENVIRONMENT").is_some();
        // `HOST` is honoured only when it is an IP address: some platforms and shells set it to
        // a host name, which must not stop the engine from starting.
        let host = r.string("HOST").and_then(|h| h.parse::<IpAddr>().ok());
        let bind_addr = r
            .parse::<IpAddr>("BIND_ADDR", "an IP address (e.g. 0.0.0.0 or 127.0.0.1)")
            .or(host)
            .unwrap_or(if in_container {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            });
        let webhook_dedupe_window = Duration::from_secs(
            r.parse::<u64>("WEBHOOK_DEDUPE_SECS", "a number of seconds (0 disables)")
                .unwrap_or(60),
        );
        let strategies_dir = r
            .string("STRATEGIES_DIR")
            .unwrap_or_else(|| "strategies".into())
            .into();
        let state_dir = r
            .string("STATE_DIR")
            .unwrap_or_else(|| "state".into())
            .into();
        let risk = RiskLimits {
            max_order_size: r.positive("MAX_ORDER_SIZE").unwrap_or(5),
            max_position: r.positive("MAX_POSITION").unwrap_or(10),
            daily_loss_limit: r
                .parse::<f64>("DAILY_LOSS_LIMIT", "an amount in dollars")
                .filter(|v| {
                    let ok = v.is_finite() && *v > 0.0;
                    if !ok {
                        r.errors
                            .push("DAILY_LOSS_LIMIT must be a positive amount".into());
                    }
                    ok
                })
                .unwrap_or(1000.0),
            max_orders_per_minute: r.positive("MAX_ORDERS_PER_MINUTE").unwrap_or(30),
        };
        let log_format = match r.string("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                r.error(format!(
                    "LOG_FORMAT must be `pretty` or `json`, not {other:?}"
                ));
                LogFormat::Pretty
            }
        };
        let log_filter = r.string("RUST_LOG").unwrap_or_else(|| "info".into());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter) {
            r.error(format!(
                "RUST_LOG is not a valid filter ({e}): {log_filter:?}"
            ));
        }
        let rest_timeout = Duration::from_secs(u64::from(
            r.positive("PROJECT_X_TIMEOUT_SECS").unwrap_or(10),
        ));
        let not_placed_grace = Duration::from_secs(u64::from(
            r.positive("NOT_PLACED_GRACE_SECS").unwrap_or(120),
        ));
        let strategy_runtime = StrategyRuntime {
            quote_backlog: r.positive("QUOTE_BACKLOG").unwrap_or(10_000) as usize,
            quote_backlog_age: Duration::from_millis(u64::from(
                r.positive("QUOTE_BACKLOG_MS").unwrap_or(50),
            )),
            watchdog: Duration::from_millis(u64::from(
                r.positive("STRATEGY_WATCHDOG_MS").unwrap_or(2_000),
            )),
            shutdown_timeout: Duration::from_secs(u64::from(
                r.positive("SHUTDOWN_TIMEOUT_SECS").unwrap_or(15),
            )),
        };
        // Set but empty disables recording; unset records to `data`.
        let record_dir = match vars.get("RECORD_DIR") {
            Some(v) if v.trim().is_empty() => None,
            _ => Some(
                r.string("RECORD_DIR")
                    .unwrap_or_else(|| "data".into())
                    .into(),
            ),
        };
        let record_max_bytes = r
            .parse::<f64>("RECORD_MAX_MB", "a size in megabytes")
            .filter(|mb| {
                let ok = mb.is_finite() && *mb > 0.0;
                if !ok {
                    r.errors
                        .push("RECORD_MAX_MB must be a positive number of megabytes".into());
                }
                ok
            })
            .map_or(1024 << 20, |mb| (mb * 1_048_576.0) as u64);
        let notify = NotifyConfig::parse(
            r.string("NOTIFY_URL").as_deref(),
            r.string("NOTIFY_EVENTS").as_deref(),
        )
        .unwrap_or_else(|errors| {
            r.errors.extend(errors);
            NotifyConfig::default()
        });
        if !r.errors.is_empty() {
            return Err(ConfigErrors(r.errors));
        }
        Ok(Self {
            jwt_token,
            username,
            api_key,
            api_url: api_url.as_str().trim_end_matches('/').to_string(),
            market_hub_url: ws_scheme(market_hub_url),
            user_hub_url: ws_scheme(user_hub_url),
            quote_event,
            account_id,
            port,
            bind_addr,
            webhook_secret,
            webhook_dedupe_window,
            strategies_dir,
            state_dir,
            risk,
            log_format,
            log_filter,
            rest_timeout,
            not_placed_grace,
            strategy_runtime,
            record_dir,
            record_max_bytes,
            notify,
        })
    }

    /// Checks what serving HTTP needs: a `WEBHOOK_SECRET` whenever the server would listen beyond
    /// loopback (anyone who can reach the port could otherwise trade through the webhooks).
    /// Only `moontick run` serves HTTP, so the other commands do not call this.
    ///
    /// # Errors
    /// The problem, naming the variables to set.
    pub fn check_http(&self) -> Result<(), ConfigErrors> {
        if !self.bind_addr.is_loopback() && self.webhook_secret.is_none() {
            return Err(ConfigErrors(vec![format!(
                "WEBHOOK_SECRET is required when the HTTP server listens beyond loopback \
                 (it would bind {}); set WEBHOOK_SECRET, or BIND_ADDR=127.0.0.1",
                self.bind_addr
            )]));
        }
        Ok(())
    }

    /// Username and API key, when both are set.
    pub fn credentials(&self) -> Option<Credentials> {
        Some(Credentials {
            username: self.username.clone()?,
            api_key: self.api_key.clone()?,
        })
    }

    /// True when there is any way to reach the live gateway (a token or credentials).
    pub fn has_gateway_credentials(&self) -> bool {
        self.jwt_token.is_some() || self.credentials().is_some()
    }
}

struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn error(&mut self, e: impl Into<String>) {
        self.errors.push(e.into());
    }

    /// A set, non-blank variable, trimmed (values pasted into dashboards often carry spaces).
    fn string(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    fn parse<T: std::str::FromStr>(&mut self, name: &str, what: &str) -> Option<T> {
        let raw = self.string(name)?;
        match raw.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(format!("{name} must be {what}, not {raw:?}"));
                None
            }
        }
    }

    fn positive(&mut self, name: &str) -> Option<u32> {
        match self.parse::<u32>(name, "a positive integer")? {
            0 => {
                self.error(format!("{name} must be a positive integer, not 0"));
                None
            }
            v => Some(v),
        }
    }

    fn url(&mut self, name: &str, schemes: &[&str]) -> Option<Url> {
        let raw = self.string(name)?;
        match Url::parse(&raw) {
            Ok(u) if schemes.contains(&u.scheme()) && u.host().is_some() => Some(u),
            Ok(u) => {
                self.error(format!(
                    "{name} must be a {} URL, not {:?}",
                    schemes.join("/"),
                    u.scheme()
                ));
                None
            }
            Err(e) => {
                self.error(format!("{name} is not a URL ({e}): {raw:?}"));
                None
            }
        }
    }
}

/// The hub beside an API URL: ProjectX serves `api.<firm>` and `rtc.<firm>/hubs/*`; any other
/// host (the simulator) serves both on itself.
fn default_hub_url(api: &Url, hub: &str) -> Url {
    let mut url = api.clone();
    if let Some(rest) = api.host_str().and_then(|h| h.strip_prefix("api.")) {
        let _ = url.set_host(Some(&format!("rtc.{rest}")));
    }
    url.set_path(&format!("/hubs/{hub}"));
    url.set_query(None);
    url
}

/// Hubs are WebSockets: `https://` becomes `wss://`, `http://` becomes `ws://`.
fn ws_scheme(url: Url) -> String {
    let s = url.as_str();
    if let Some(rest) = s.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = s.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
