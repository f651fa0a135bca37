//! Unit tests of the configuration: defaults, URLs, every problem reported at once, secrets never shown.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_point_at_topstepx() {
    let c = Config::from_vars(&vars(&[])).unwrap();
    assert_eq!(c.api_url, "https://api.topstepx.com");
    assert_eq!(c.market_hub_url, "wss://rtc.topstepx.com/hubs/market");
    assert_eq!(c.user_hub_url, "wss://rtc.topstepx.com/hubs/user");
    assert_eq!(c.quote_event, "GatewayQuote");
    assert_eq!(c.port, 8080);
    assert!(!c.has_gateway_credentials());
    let rt = &c.strategy_runtime;
    assert_eq!(
        (
            rt.quote_backlog,
            rt.quote_backlog_age,
            rt.watchdog,
            rt.shutdown_timeout
        ),
        (
            10_000,
            Duration::from_millis(50),
            Duration::from_secs(2),
            Duration::from_secs(15)
        )
    );
    let err = Config::from_vars(&vars(&[("STRATEGY_WATCHDOG_MS", "0")])).unwrap_err();
    assert!(err.to_string().contains("STRATEGY_WATCHDOG_MS"), "{err}");
}

#[test]
fn hub_urls_follow_the_firm_and_https_becomes_wss() {
    let c = Config::from_vars(&vars(&[
        ("PROJECT_X_API_URL", "https://api.alphaticks.projectx.com/"),
        (
            "PROJECT_X_USER_HUB_URL",
            "https://rtc.example.com/hubs/user",
        ),
    ]))
    .unwrap();
    assert_eq!(c.api_url, "https://api.alphaticks.projectx.com");
    assert_eq!(
        c.market_hub_url,
        "wss://rtc.alphaticks.projectx.com/hubs/market"
    );
    assert_eq!(c.user_hub_url, "wss://rtc.example.com/hubs/user");
    let local =
        Config::from_vars(&vars(&[("PROJECT_X_API_URL", "http://127.0.0.1:5000")])).unwrap();
    assert_eq!(local.market_hub_url, "ws://127.0.0.1:5000/hubs/market");
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = Config::from_vars(&vars(&[
        ("PROJECT_X_USERNAME", "me"),
        ("PROJECT_X_ACCOUNT_ID", "abc"),
        ("PORT", "99999"),
        ("PROJECT_X_API_URL", "ftp://x"),
        ("LOG_FORMAT", "xml"),
        ("MAX_POSITION", "0"),
        ("DAILY_LOSS_LIMIT", "-5"),
    ]))
    .unwrap_err();
    assert_eq!(err.0.len(), 7, "{err}");
    let text = err.to_string();
    for name in [
        "PROJECT_X_API_KEY",
        "PROJECT_X_ACCOUNT_ID",
        "PORT",
        "PROJECT_X_API_URL",
        "LOG_FORMAT",
        "MAX_POSITION",
        "DAILY_LOSS_LIMIT",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[test]
fn bind_defaults_to_loopback_and_to_all_interfaces_in_a_container() {
    let c = Config::from_vars(&vars(&[])).unwrap();
    assert_eq!(c.bind_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.webhook_dedupe_window, Duration::from_secs(60));
    let c = Config::from_vars_in(&vars(&[("WEBHOOK_SECRET", "s3cret")]), true).unwrap();
    assert_eq!(c.bind_addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let c = Config::from_vars_in(&vars(&[("BIND_ADDR", "127.0.0.1")]), true).unwrap();
    assert!(c.bind_addr.is_loopback());
    let c = Config::from_vars(&vars(&[("HOST", "::1"), ("WEBHOOK_DEDUPE_SECS", "0")])).unwrap();
    assert!(c.bind_addr.is_loopback());
    assert!(c.webhook_dedupe_window.is_zero());
    let c = Config::from_vars(&vars(&[("HOST", "buildbox.local")])).unwrap();
    assert!(c.bind_addr.is_loopback(), "a host name in HOST is ignored");
}

#[test]
fn listening_beyond_loopback_requires_a_webhook_secret() {
    for (vars_, container) in [
        (vars(&[("BIND_ADDR", "0.0.0.0")]), false),
        (vars(&[]), true),
        (vars(&[("RAILWAY_ENVIRONMENT", "production")]), false),
    ] {
        let c = Config::from_vars_in(&vars_, container).unwrap();
        let err = c.check_http().unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_SECRET"), "{err}");
    }
    let c = Config::from_vars_in(&vars(&[("WEBHOOK_SECRET", "s")]), true).unwrap();
    assert!(c.check_http().is_ok());
    assert!(
        Config::from_vars_in(&vars(&[]), false)
            .unwrap()
            .check_http()
            .is_ok()
    );
    let err = Config::from_vars(&vars(&[("BIND_ADDR", "localhost:80")])).unwrap_err();
    assert!(err.to_string().contains("BIND_ADDR"), "{err}");
}

#[test]
fn debug_never_shows_secrets() {
    let c = Config::from_vars(&vars(&[
        ("JWT_TOKEN", "eyJhbGciOiJIUzI1NiJ9.secret-jwt.sig"),
        ("PROJECT_X_USERNAME", "trader"),
        ("PROJECT_X_API_KEY", "key-abc-123"),
        ("WEBHOOK_SECRET", "hook-xyz"),
        (
            "NOTIFY_URL",
            "https://discord.com/api/webhooks/1/discord-token,https://x.example/h?k=url-token",
        ),
    ]))
    .unwrap();
    let debug = format!("{c:?} {:?}", c.credentials());
    for secret in [
        "secret-jwt",
        "key-abc-123",
        "hook-xyz",
        "discord-token",
        "url-token",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(debug.contains("trader"));
    assert!(c.has_gateway_credentials());
    assert_eq!(c.notify.targets.len(), 2);
}

#[test]
fn bad_notify_settings_are_reported_with_the_rest() {
    let err = Config::from_vars(&vars(&[
        ("NOTIFY_URL", "https://discord.com/nothook-token"),
        ("NOTIFY_EVENTS", "fills,halt,nonsense"),
        ("PORT", "x"),
    ]))
    .unwrap_err();
    assert_eq!(err.0.len(), 3, "{err}");
    assert!(!err.to_string().contains("nothook-token"), "{err}");
}
