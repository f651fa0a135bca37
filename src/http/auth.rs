//! Who may see and steer the account: [`gate`], the one check every protected route calls (the
//! webhook secret in `X-Webhook-Secret`, or a session cookie from `POST /login`), browser
//! sessions, and the same-origin check on actions.
//!
//! A session cookie holds a random token, never the secret; tokens live in memory only (a
//! restart logs everyone out) and are compared in constant time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{COOKIE, HOST, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{HeaderMap, StatusCode};
use rand::RngCore;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::app::{App, authorized};
use super::reply::{Reply, json_reply};
use crate::rate::SlidingWindow;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "moontick_session";
/// How long a login lasts.
const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Sessions kept at most; the oldest is dropped for a new one.
const MAX_SESSIONS: usize = 32;
/// Failed logins allowed per minute, over all callers, before logins are refused for a while.
const FAILED_LOGINS_PER_MINUTE: usize = 10;

/// What a route is about to do.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access {
    /// Shows account data (`GET /`, `/events`, `/status`, `/journal`).
    Read,
    /// Changes something (`POST /halt`, `/resume`, `/flatten`, pause/resume): a browser's
    /// request must come from the dashboard's own origin.
    Act,
}

/// Browser sessions and the failed-login budget.
pub(crate) struct Sessions {
    // A std mutex: held for a scan of at most MAX_SESSIONS tokens, never across an await.
    live: Mutex<Vec<(String, Instant)>>,
    failures: SlidingWindow,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            live: Mutex::new(Vec::new()),
            failures: SlidingWindow::new(FAILED_LOGINS_PER_MINUTE, Duration::from_secs(60)),
        }
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are credentials: only their number is shown.
        let n = self.lock().len();
        write!(f, "Sessions({n})")
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Instant)>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session's token: 32 random bytes from the thread's CSPRNG, in hex.
    fn create(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut live = self.lock();
        live.retain(|(_, exp)| *exp > now);
        if live.len() >= MAX_SESSIONS {
            live.remove(0);
        }
        live.push((token.clone(), now + SESSION_TTL));
        token
    }

    /// Whether `token` names a live session. Every token is compared, in constant time.
    fn valid(&self, token: &str) -> bool {
        let now = Instant::now();
        let live = self.lock();
        let mut ok = false;
        for (t, exp) in live.iter() {
            ok |= bool::from(t.as_bytes().ct_eq(token.as_bytes())) & (*exp > now);
        }
        ok
    }

    fn remove(&self, token: &str) {
        self.lock()
            .retain(|(t, _)| !bool::from(t.as_bytes().ct_eq(token.as_bytes())));
    }
}

/// The session token a request's cookies carry, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v)
}

/// Whether a browser sent the request from our own page: `Sec-Fetch-Site: same-origin`, or an
/// `Origin` whose host is the `Host` the request was sent to. `None` when the request carries
/// neither (not a browser: curl, a script).
fn same_origin(headers: &HeaderMap) -> Option<bool> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return Some(site == "same-origin");
    }
    let origin = header("origin")?;
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    Some(origin_host.is_some_and(|h| !host.is_empty() && h.eq_ignore_ascii_case(host)))
}

/// The one check every route that shows or changes the account calls. `candidates` are other
/// places a script may put the secret (the body's `secret`/`passphrase` on `/halt`). Allowed:
/// the secret in `X-Webhook-Secret` or a candidate; or a live session cookie (for an action,
/// only from our own origin); or anything when no secret is configured (loopback only, enforced
/// by `Config`). A browser's action from another origin is refused even then.
///
/// # Errors
/// The response to give instead: 401 without credentials, 403 for a cross-origin action.
pub(crate) fn gate<'a>(
    app: &App,
    headers: &'a HeaderMap,
    access: Access,
    candidates: impl Iterator<Item = &'a str>,
) -> Result<(), Reply> {
    let origin = same_origin(headers);
    let forbidden = || {
        json_reply(
            StatusCode::FORBIDDEN,
            json!({"ok": false, "error": "cross-origin request refused"}),
        )
    };
    if matches!(access, Access::Act) && origin == Some(false) {
        return Err(forbidden());
    }
    if app.cfg.secret.is_none() || authorized(&app.cfg.secret, headers, candidates) {
        return Ok(());
    }
    if session_cookie(headers).is_some_and(|t| app.sessions.valid(t)) {
        // A cookie rides along with any request the browser makes: an action needs proof that
        // our page made it.
        if matches!(access, Access::Act) && origin != Some(true) {
            return Err(forbidden());
        }
        return Ok(());
    }
    Err(json_reply(StatusCode::UNAUTHORIZED, json!({"ok": false})))
}

/// Whether the request came over HTTPS (directly, or through a proxy that says so, as Railway's
/// does): the cookie is then marked `Secure`.
fn behind_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| {
            p.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("https")
        })
}

fn cookie(headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    let secure = if behind_https(headers) {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The secret a login form or JSON body carries.
fn login_secret(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v.get("secret").and_then(Value::as_str).map(str::to_owned);
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.into_owned())
}

/// `POST /login`: the secret (form field or JSON `secret`) for a session cookie. A form post is
/// sent back to `/`; a JSON one gets `{"ok": true}`. Wrong secrets answer 401 (the login page
/// again for a form), and too many of them in a minute 429 for everyone.
pub(crate) fn login(app: &App, headers: &HeaderMap, body: &[u8]) -> Reply {
    let form = !body.first().is_some_and(|b| *b == b'{');
    if same_origin(headers) == Some(false) {
        return json_reply(
            StatusCode::FORBIDDEN,
            json!({"ok": false, "error": "cross-origin request refused"}),
        );
    }
    let Some(secret) = &app.cfg.secret else {
        // Nothing to log in to: loopback without a secret.
        return done(form, json_reply(StatusCode::OK, json!({"ok": true})));
    };
    let now = tokio::time::Instant::now();
    if app.sessions.failures.used(now) >= FAILED_LOGINS_PER_MINUTE {
        tracing::warn!("login refused: too many failed logins in the last minute");
        return json_reply(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "too many failed logins; try again in a minute"}),
        );
    }
    let given = login_secret(body).unwrap_or_default();
    if !secret.ct_eq(&given) {
        let _ = app.sessions.failures.try_acquire(now);
        tracing::warn!("failed dashboard login");
        return if form {
            super::dashboard::login_page(StatusCode::UNAUTHORIZED, true)
        } else {
            json_reply(StatusCode::UNAUTHORIZED, json!({"ok": false}))
        };
    }
    let token = app.sessions.create();
    tracing::info!("dashboard login");
    let mut r = done(form, json_reply(StatusCode::OK, json!({"ok": true})));
    r.headers_mut()
        .insert(SET_COOKIE, cookie(headers, &token, SESSION_TTL.as_secs()));
    r
}

/// `POST /logout`: ends the session and clears the cookie.
pub(crate) fn logout(app: &App, headers: &HeaderMap) -> Reply {
    if same_origin(headers) == Some(false) {
        return json_reply(
            StatusCode::FORBIDDEN,
            json!({"ok": false, "error": "cross-origin request refused"}),
        );
    }
    if let Some(t) = session_cookie(headers) {
        app.sessions.remove(t);
    }
    let mut r = done(true, json_reply(StatusCode::OK, json!({"ok": true})));
    r.headers_mut().insert(SET_COOKIE, cookie(headers, "", 0));
    r
}

/// A form post is answered with a redirect to the dashboard (so a reload does not post again).
fn done(form: bool, json: Reply) -> Reply {
    if !form {
        return json;
    }
    let mut r = json_reply(StatusCode::SEE_OTHER, json!({"ok": true}));
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn sessions_are_random_live_and_removable() {
        let s = Sessions::default();
        let a = s.create();
        let b = s.create();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.valid(&a) && s.valid(&b));
        assert!(!s.valid("") && !s.valid(&a[..63]));
        s.remove(&a);
        assert!(!s.valid(&a) && s.valid(&b));
        assert_eq!(format!("{s:?}"), "Sessions(1)");
        for _ in 0..MAX_SESSIONS {
            s.create();
        }
        assert!(!s.valid(&b), "the oldest session goes first");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; moontick_session=abc; b=2")]);
        assert_eq!(session_cookie(&h), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "moontick_session=xyz")]);
        assert_eq!(session_cookie(&h), Some("xyz"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "x_moontick_session=1")])),
            None
        );
    }

    #[test]
    fn same_origin_reads_fetch_metadata_then_origin() {
        let h = |p: &[(&'static str, &str)]| same_origin(&headers(p));
        assert_eq!(h(&[]), None);
        assert_eq!(h(&[("sec-fetch-site", "same-origin")]), Some(true));
        assert_eq!(
            h(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://h:1"),
                ("host", "h:1")
            ]),
            Some(false)
        );
        assert_eq!(h(&[("origin", "http://h:1"), ("host", "h:1")]), Some(true));
        assert_eq!(
            h(&[("origin", "https://evil.example"), ("host", "h:1")]),
            Some(false)
        );
        assert_eq!(h(&[("origin", "null"), ("host", "h:1")]), Some(false));
    }

    #[test]
    fn the_cookie_is_secure_behind_https_and_never_readable_by_scripts() {
        let plain = cookie(&HeaderMap::new(), "t", 60);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        let tls = cookie(&headers(&[("x-forwarded-proto", "https")]), "t", 60);
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
    }

    #[test]
    fn the_login_secret_comes_from_a_form_or_json() {
        assert_eq!(login_secret(b"secret=a%2Bb&x=1").as_deref(), Some("a+b"));
        assert_eq!(login_secret(br#"{"secret":"s"}"#).as_deref(), Some("s"));
        assert_eq!(login_secret(b"x=1"), None);
    }
}
