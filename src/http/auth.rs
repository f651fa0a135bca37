//! Who may see and steer the account: [`gate`], the one check every protected route calls (the
//! webhook secret in `X-Webhook-Secret`, or a session cookie from `POST /login`), logging in and
//! out, and the same-origin check on actions. The sessions themselves are in
//! [`session`](super::session).

use hyper::header::{COOKIE, HOST, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::app::{App, authorized};
use super::pages;
use super::reply::{Reply, json_reply};
use super::session::{FAILED_LOGINS_PER_MINUTE, SESSION_TTL};

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "moontick_session";

/// What a route is about to do.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access {
    /// Shows account data (`GET /`, `/events`, `/status`, `/journal`).
    Read,
    /// Changes something (`POST /halt`, `/resume`, `/flatten`, pause/resume): a browser's
    /// request must come from the dashboard's own origin.
    Act,
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

/// Why [`gate`] turned a request away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No secret, no live session: 401.
    Unauthorized,
    /// A browser's action from another origin, or a session's action without proof of origin:
    /// 403.
    CrossOrigin,
}

impl From<Denied> for Reply {
    fn from(d: Denied) -> Reply {
        match d {
            Denied::Unauthorized => json_reply(StatusCode::UNAUTHORIZED, json!({"ok": false})),
            Denied::CrossOrigin => cross_origin(),
        }
    }
}

fn cross_origin() -> Reply {
    json_reply(
        StatusCode::FORBIDDEN,
        json!({"ok": false, "error": "cross-origin request refused"}),
    )
}

/// The one check every route that shows or changes the account calls. `candidates` are other
/// places a script may put the secret (the body's `secret`/`passphrase` on `/halt`). Allowed:
/// the secret in `X-Webhook-Secret` or a candidate; or a live session cookie (for an action,
/// only from our own origin); or anything when no secret is configured (loopback only, enforced
/// by `Config`). A browser's action from another origin is refused even then.
///
/// # Errors
/// Why not; `Reply::from` it for the response (401 or 403).
pub(crate) fn gate<'a>(
    app: &App,
    headers: &'a HeaderMap,
    access: Access,
    candidates: impl Iterator<Item = &'a str>,
) -> Result<(), Denied> {
    let origin = same_origin(headers);
    if matches!(access, Access::Act) && origin == Some(false) {
        return Err(Denied::CrossOrigin);
    }
    if app.cfg.secret.is_none() || authorized(&app.cfg.secret, headers, candidates) {
        return Ok(());
    }
    if session_cookie(headers).is_some_and(|t| app.sessions.valid(t)) {
        // A cookie rides along with any request the browser makes: an action needs proof that
        // our page made it.
        if matches!(access, Access::Act) && origin != Some(true) {
            return Err(Denied::CrossOrigin);
        }
        return Ok(());
    }
    Err(Denied::Unauthorized)
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
    let form = body.first().is_none_or(|b| *b != b'{');
    if same_origin(headers) == Some(false) {
        return cross_origin();
    }
    let Some(secret) = &app.cfg.secret else {
        // Nothing to log in to: loopback without a secret.
        return done(form, json_reply(StatusCode::OK, json!({"ok": true})));
    };
    let now = tokio::time::Instant::now();
    if app.sessions.failures().used(now) >= FAILED_LOGINS_PER_MINUTE {
        tracing::warn!("login refused: too many failed logins in the last minute");
        return json_reply(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "too many failed logins; try again in a minute"}),
        );
    }
    let given = login_secret(body).unwrap_or_default();
    if !secret.ct_eq(&given) {
        let _ = app.sessions.failures().try_acquire(now);
        tracing::warn!("failed dashboard login");
        return if form {
            pages::login_page(StatusCode::UNAUTHORIZED, true)
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
        return cross_origin();
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
