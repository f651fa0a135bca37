//! The dashboard's pages: `GET /` (the page, or the login form) and its static assets, served
//! from the binary (no build step, no CDN). The data comes from [`events`](super::events).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::reply::{Reply, json_reply};

const PAGE: &str = include_str!("assets/dashboard.html");
const LOGIN: &str = include_str!("assets/login.html");

/// Static files by name: (content, type). Public: they carry no account data.
const ASSETS: [(&str, &[u8], &str); 4] = [
    (
        "app.js",
        include_bytes!("assets/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "app.css",
        include_bytes!("assets/app.css"),
        "text/css; charset=utf-8",
    ),
    // uPlot 1.6.32 (MIT, assets/uPlot.LICENSE), vendored from its npm package's dist/.
    (
        "uPlot.iife.min.js",
        include_bytes!("assets/uPlot.iife.min.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "uPlot.min.css",
        include_bytes!("assets/uPlot.min.css"),
        "text/css; charset=utf-8",
    ),
];

/// Headers every page gets: nothing loads from elsewhere, nothing frames it.
fn page(status: StatusCode, html: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(html.to_owned())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `GET /`: the dashboard.
pub(crate) fn dashboard_page() -> Reply {
    page(StatusCode::OK, PAGE)
}

/// The login form (`GET /` without a session); `failed` after a wrong secret.
pub(crate) fn login_page(status: StatusCode, failed: bool) -> Reply {
    let note = if failed {
        r#"<p class="error" role="alert">Wrong secret.</p>"#
    } else {
        ""
    };
    page(status, &LOGIN.replace("<!--NOTE-->", note))
}

/// `GET /assets/{name}`.
pub(crate) fn asset(name: &str) -> Reply {
    let Some((_, body, kind)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return json_reply(
            StatusCode::NOT_FOUND,
            json!({"ok": false, "error": "not found"}),
        );
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    // Revalidated each load: a new binary may serve a new script under the same name.
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut().insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    r
}
