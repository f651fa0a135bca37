//! Hub authentication: where tokens come from, how the token goes into the hub URL, and how it
//! is kept out of logs and errors.

use std::future::Future;
use std::sync::Arc;

use super::error::{HubError, TokenError};
use crate::secret::Secret;

/// Where a hub connection gets its token, asked afresh before every (re)connect, because the hub
/// URL carries the token and a token that expired while we were disconnected must be replaced.
///
/// Implementers write `async fn token(&self) -> Result<Secret, TokenError>`. The error is logged
/// and shown in the connection state, so it must never contain the token.
pub trait TokenSource: Send + Sync + 'static {
    fn token(&self) -> impl Future<Output = Result<Secret, TokenError>> + Send;
}

/// A token that never changes (a `JWT_TOKEN` from the environment, or tests).
#[derive(Debug, Clone)]
pub struct FixedToken(pub Secret);

impl TokenSource for FixedToken {
    async fn token(&self) -> Result<Secret, TokenError> {
        Ok(self.0.clone())
    }
}

impl<T: TokenSource> TokenSource for Arc<T> {
    fn token(&self) -> impl Future<Output = Result<Secret, TokenError>> + Send {
        (**self).token()
    }
}

/// The hub URL with the token appended as `access_token`, and `http(s)` mapped to `ws(s)`.
///
/// # Errors
/// `Url` when the scheme is not one of `https`, `http`, `wss`, `ws`.
pub fn hub_url(base: &str, token: &Secret) -> Result<String, HubError> {
    let base = base.trim();
    let lower = base.to_ascii_lowercase();
    let (scheme, rest) = [
        ("https://", "wss://"),
        ("http://", "ws://"),
        ("wss://", "wss://"),
        ("ws://", "ws://"),
    ]
    .iter()
    .find(|(from, _)| lower.starts_with(from))
    .map(|(from, to)| (*to, &base[from.len()..]))
    .ok_or_else(|| {
        HubError::Url(format!(
            "{base:?} must start with https://, http://, wss:// or ws://"
        ))
    })?;
    let sep = if rest.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{scheme}{rest}{sep}access_token={}",
        percent_encode(token.expose())
    ))
}

/// Escapes everything but RFC 3986 unreserved characters (a JWT is already all unreserved but
/// for its dots, so this rarely changes anything; it protects against odd tokens).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL with the `access_token` value replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find("access_token=") {
        let value_start = i + "access_token=".len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        rest = &rest[value_start..];
        rest = rest.find('&').map_or("", |j| &rest[j..]);
    }
    out.push_str(rest);
    out
}

/// Removes the token from error text coming from libraries that might echo the URL.
pub(super) fn redact(text: &str, token: &Secret) -> String {
    let t = token.expose();
    if t.is_empty() {
        return redact_url(text);
    }
    redact_url(&text.replace(t, "***").replace(&percent_encode(t), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_url_maps_schemes_and_appends_the_token() {
        let t = Secret::new("ab.c+d");
        assert_eq!(
            hub_url("https://rtc.x.com/hubs/market", &t).unwrap(),
            "wss://rtc.x.com/hubs/market?access_token=ab.c%2Bd"
        );
        assert_eq!(
            hub_url("HTTP://h:1/hubs/user?x=1", &t).unwrap(),
            "ws://h:1/hubs/user?x=1&access_token=ab.c%2Bd"
        );
        assert_eq!(
            hub_url("wss://h/hubs/m", &t).unwrap(),
            "wss://h/hubs/m?access_token=ab.c%2Bd"
        );
        assert!(matches!(hub_url("ftp://h", &t), Err(HubError::Url(_))));
    }

    #[test]
    fn redaction_hides_the_token() {
        assert_eq!(
            redact_url("wss://h/hubs/m?access_token=SECRET&id=1"),
            "wss://h/hubs/m?access_token=***&id=1"
        );
        assert_eq!(
            redact_url("wss://h/m?a=1&access_token=SECRET"),
            "wss://h/m?a=1&access_token=***"
        );
        let t = Secret::new("SECRET");
        let text = redact("failed for wss://h/m?access_token=SECRET and SECRET", &t);
        assert!(!text.contains("SECRET"), "{text}");
    }
}
