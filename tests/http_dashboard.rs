//! The dashboard's security and plumbing over real HTTP: with a secret set, no route shows or
//! changes the account without it (checked route by route); `POST /login` gives an `HttpOnly`,
//! `SameSite=Strict` session cookie holding a random token; a cookie's actions must come from
//! our own origin; `/events` streams the status; the secret never appears in a response or log.

mod common;
mod http_support;

use std::time::Duration;

use http_support::{Options, SECRET, Server, start};
use serde_json::Value;

const HOOK: &str = r#"
local M = {}
function M.on_webhook(req) return { ok = true } end
return M
"#;

/// Every route that shows or changes the account, as (method, path).
const PROTECTED: [(&str, &str); 9] = [
    ("GET", "/status"),
    ("GET", "/metrics"),
    ("GET", "/journal?day=2026-11-27"),
    ("GET", "/events"),
    ("POST", "/halt"),
    ("POST", "/resume"),
    ("POST", "/flatten"),
    ("POST", "/strategies/hook/pause"),
    ("POST", "/strategies/hook/resume"),
];

/// A response with its headers and (for a stream, the first chunk of) its body.
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Got {
    fn all_text(&self) -> String {
        let mut t = self.body.clone();
        for (k, v) in &self.headers {
            t.push_str(&format!("\n{k}: {}", v.to_str().unwrap_or("")));
        }
        t
    }

    fn cookie(&self) -> Option<String> {
        let v = self.headers.get("set-cookie")?.to_str().ok()?;
        Some(v.split(';').next()?.to_owned())
    }
}

async fn send(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Got {
    // Redirects are looked at, not followed.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut r = client
        .request(method.parse().unwrap(), format!("{}{path}", s.url))
        .body(body.to_owned());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let mut resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let streaming = headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("") == "text/event-stream");
    let body = if streaming {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .expect("the stream sends at once")
            .unwrap()
            .unwrap_or_default();
        String::from_utf8_lossy(&chunk).into_owned()
    } else {
        resp.text().await.unwrap()
    };
    Got {
        status,
        headers,
        body,
    }
}

async fn login(s: &Server, headers: &[(&str, &str)]) -> Got {
    let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    send(s, "POST", "/login", &h, &format!("secret={SECRET}")).await
}

#[tokio::test]
async fn with_a_secret_nothing_about_the_account_is_reachable_without_it() {
    let _logs = common::logs();
    let s = start(&[("hook", HOOK)], Options::default()).await;
    s.ops
        .set_status(serde_json::json!({"account": 4242, "positions": [{"symbol": "MNQ"}]}));
    let mut seen = Vec::new();
    for (method, path) in PROTECTED {
        for creds in [
            vec![],
            vec![("cookie", "moontick_session=0123456789abcdef")],
            vec![("x-webhook-secret", "wrong")],
            vec![("authorization", "Bearer wrong")],
        ] {
            let got = send(&s, method, path, &creds, "{}").await;
            assert_eq!(
                got.status, 401,
                "{method} {path} with {creds:?}: {}",
                got.body
            );
            assert!(!got.body.contains("4242"), "{method} {path}");
            seen.push(got);
        }
    }
    // The page itself is the login form: no dashboard, no data.
    let page = send(&s, "GET", "/", &[], "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"action="/login""#), "{}", page.body);
    assert!(!page.body.contains("/assets/app.js") && !page.body.contains("4242"));
    let wrong = send(
        &s,
        "POST",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        "secret=nope",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.cookie().is_none());
    assert!(wrong.body.contains("Wrong secret"));
    assert!(s.ops.halted().is_none(), "no halt went through");
    assert_eq!(s.ops.flattened(), 0, "no flatten went through");
    assert_eq!(s.host.strategy("hook").unwrap().state.as_str(), "running");
    seen.extend([page, wrong]);
    for g in &seen {
        assert!(
            !g.all_text().contains(SECRET),
            "the secret was in a response"
        );
    }
}

#[tokio::test]
async fn login_sets_a_session_cookie_that_opens_the_page_status_and_events() {
    let _logs = common::logs();
    let s = start(&[("hook", HOOK)], Options::default()).await;
    s.ops.set_status(serde_json::json!({"account": 4242}));
    let got = login(&s, &[]).await;
    assert_eq!(got.status, 303, "a form login goes back to the page");
    assert_eq!(got.headers["location"], "/");
    let set = got.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    assert!(
        !set.contains(SECRET),
        "the cookie is a token, never the secret"
    );
    let cookie = got.cookie().unwrap();
    let c = [("cookie", cookie.as_str())];

    let page = send(&s, "GET", "/", &c, "").await;
    assert!(page.body.contains("/assets/app.js"), "{}", page.body);
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let status = send(&s, "GET", "/status", &c, "").await;
    assert_eq!(status.status, 200);
    let v: Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(v["account"], 4242);
    assert_eq!(v["strategies"][0]["name"], "hook");
    let events = send(&s, "GET", "/events", &c, "").await;
    assert_eq!(events.status, 200);
    assert!(
        events.body.starts_with("event: status\ndata: {"),
        "{}",
        events.body
    );
    assert!(events.body.contains(r#""account":4242"#), "{}", events.body);

    // Behind Railway's proxy the cookie is Secure.
    let tls = login(&s, &[("x-forwarded-proto", "https")]).await;
    assert!(
        tls.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );

    // Logging out ends the session.
    let out = send(
        &s,
        "POST",
        "/logout",
        &[c[0], ("origin", &s.url), ("host", &s.url[7..])],
        "",
    )
    .await;
    assert_eq!(out.status, 303);
    assert_eq!(send(&s, "GET", "/status", &c, "").await.status, 401);
    for g in [got, page, status, events, tls, out] {
        assert!(!g.all_text().contains(SECRET));
    }
    common::assert_no_secret_logged(&[SECRET]);
}

#[tokio::test]
async fn a_cookies_actions_must_come_from_our_own_origin() {
    let _logs = common::logs();
    let s = start(&[("hook", HOOK)], Options::default()).await;
    let cookie = login(&s, &[]).await.cookie().unwrap();
    let host = s.url.trim_start_matches("http://").to_owned();
    let c = ("cookie", cookie.as_str());
    // No proof of origin, another origin, a cross-site fetch: refused.
    for extra in [
        vec![],
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "null")],
    ] {
        let mut h = vec![c, ("host", host.as_str())];
        h.extend(extra.iter().copied());
        let got = send(&s, "POST", "/halt", &h, "{}").await;
        assert_eq!(got.status, 403, "{extra:?}: {}", got.body);
    }
    assert!(s.ops.halted().is_none());
    // From our page: every action works.
    let ours = [c, ("sec-fetch-site", "same-origin")];
    assert_eq!(send(&s, "POST", "/halt", &ours, "{}").await.status, 200);
    assert!(s.ops.halted().is_some());
    assert_eq!(send(&s, "POST", "/resume", &ours, "{}").await.status, 200);
    assert!(s.ops.halted().is_none());
    assert_eq!(send(&s, "POST", "/flatten", &ours, "{}").await.status, 200);
    assert_eq!(s.ops.flattened(), 1);
    let origin = s.url.clone();
    let by_origin = [c, ("origin", origin.as_str()), ("host", host.as_str())];
    let got = send(&s, "POST", "/strategies/hook/pause", &by_origin, "{}").await;
    assert_eq!(got.status, 200, "{}", got.body);
    http_support::wait_until("paused", || {
        s.host.strategy("hook").unwrap().state.as_str() == "paused"
    })
    .await;
    let (code, body) = s.hook("hook", &serde_json::json!({})).await;
    assert_eq!(code, 503, "a paused strategy takes no webhook: {body}");
    assert_eq!(body["error"], "strategy is paused");
    assert_eq!(
        send(&s, "POST", "/strategies/nope/pause", &ours, "{}")
            .await
            .status,
        404
    );
    assert_eq!(
        send(&s, "POST", "/strategies/hook/resume", &ours, "{}")
            .await
            .status,
        200
    );
    http_support::wait_until("running", || {
        s.host.strategy("hook").unwrap().state.as_str() == "running"
    })
    .await;
    assert_eq!(s.hook("hook", &serde_json::json!({})).await.0, 200);
    // Scripts keep using the header, with or without an Origin.
    let got = send(
        &s,
        "POST",
        "/flatten",
        &[("x-webhook-secret", SECRET)],
        "{}",
    )
    .await;
    assert_eq!(got.status, 200);
    let got = send(
        &s,
        "POST",
        "/halt",
        &[
            ("x-webhook-secret", SECRET),
            ("origin", "https://evil.example"),
        ],
        "{}",
    )
    .await;
    assert_eq!(
        got.status, 403,
        "a browser's cross-origin action is refused even with the secret"
    );
}

#[tokio::test]
async fn failed_logins_are_limited() {
    let _logs = common::logs();
    let s = start(&[("hook", HOOK)], Options::default()).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    for _ in 0..10 {
        assert_eq!(
            send(&s, "POST", "/login", &form, "secret=guess")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        send(&s, "POST", "/login", &form, "secret=guess")
            .await
            .status,
        429
    );
    let right = login(&s, &[]).await;
    assert_eq!(right.status, 429, "not even the right secret while limited");
}

#[tokio::test]
async fn on_loopback_without_a_secret_the_dashboard_just_works() {
    let _logs = common::logs();
    let s = start(
        &[("hook", HOOK)],
        Options {
            secret: None,
            ..Options::default()
        },
    )
    .await;
    let page = send(&s, "GET", "/", &[], "").await;
    assert!(page.body.contains("/assets/app.js"));
    assert_eq!(send(&s, "GET", "/events", &[], "").await.status, 200);
    assert_eq!(send(&s, "POST", "/flatten", &[], "{}").await.status, 200);
    // Still no cross-site action from a browser.
    let evil = [("sec-fetch-site", "cross-site")];
    assert_eq!(send(&s, "POST", "/halt", &evil, "{}").await.status, 403);
    assert!(s.ops.halted().is_none());
}

#[tokio::test]
async fn assets_are_served_from_the_binary_within_budget() {
    let _logs = common::logs();
    let s = start(&[("hook", HOOK)], Options::default()).await;
    let mut total = 0;
    for (name, kind) in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("uPlot.min.css", "text/css"),
    ] {
        let got = send(&s, "GET", &format!("/assets/{name}"), &[], "").await;
        assert_eq!(got.status, 200, "{name}");
        assert!(
            got.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        total += got.body.len();
    }
    total += send(&s, "GET", "/", &[("x-webhook-secret", SECRET)], "")
        .await
        .body
        .len();
    assert!(total < 200 * 1024, "page and assets weigh {total} bytes");
    assert_eq!(
        send(&s, "GET", "/assets/nope.js", &[], "").await.status,
        404
    );
}

#[tokio::test]
async fn the_event_stream_follows_changes_and_ends_with_the_server() {
    let _logs = common::logs();
    let mut s = start(&[("hook", HOOK)], Options::default()).await;
    s.ops.set_status(serde_json::json!({"account": 1}));
    let mut events = s
        .client
        .get(format!("{}/events", s.url))
        .header("x-webhook-secret", SECRET)
        .send()
        .await
        .unwrap();
    let mut next = async || {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("the stream answers")
            .unwrap();
        chunk.map(|c| String::from_utf8_lossy(&c).into_owned())
    };
    assert!(next().await.unwrap().contains(r#""account":1"#));
    s.ops.set_status(serde_json::json!({"account": 2}));
    loop {
        let text = next().await.expect("the stream stays open");
        if text.contains(r#""account":2"#) {
            break;
        }
    }
    // Shutting down ends the stream at once instead of waiting out the drain deadline.
    s.shutdown();
    let ended = loop {
        match next().await {
            None => break true,
            Some(_) => continue,
        }
    };
    assert!(ended);
    let task = s.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(4), task)
        .await
        .expect("the server stops before its 5 s drain deadline")
        .unwrap()
        .unwrap();
}
