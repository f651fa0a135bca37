//! `GET /events`: the status pushed to the dashboard as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::{BodyExt, Either, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::app::App;
use super::reply::{Body, json_reply};
use super::status_json;

/// How often an event stream looks at the status: well inside the 1 s the page may lag.
const POLL: Duration = Duration::from_millis(250);
/// A stream that has sent nothing for this long sends the status anyway (it keeps proxies from
/// closing an idle connection, and the page's clock for quote ages honest).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Event streams open at once; more get 503.
const MAX_STREAMS: usize = 16;

/// The status as the stream sends it: the `/status` object without the parts that change
/// rarely and weigh most (`fills`, `equity`), which go as events of their own.
struct Parts {
    status: Value,
    fills: Option<Value>,
    equity: Option<Value>,
}

fn parts(app: &App) -> Parts {
    let mut status = status_json::status(app);
    let (fills, equity) = match status.as_object_mut() {
        Some(o) => (o.remove("fills"), o.remove("equity")),
        None => (None, None),
    };
    Parts {
        status,
        fills,
        equity,
    }
}

/// `GET /events`: `status` events (the `/status` object without `fills` and `equity`) when it
/// changes, checked four times a second, and at least every few seconds; `fills` and `equity`
/// events when those change. Ends when the client goes away or the server shuts down.
pub(crate) fn events(app: Arc<App>) -> Response<Body> {
    if app.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        app.streams.fetch_sub(1, Ordering::SeqCst);
        return json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ok": false, "error": "too many dashboards open"}),
        )
        .map(Either::Left);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let mut closing = app.closing.subscribe();
    tokio::spawn(async move {
        let mut last: [String; 3] = Default::default();
        let mut sent_at = tokio::time::Instant::now();
        loop {
            let p = parts(&app);
            let mut out = String::new();
            // `now_ms` changes every time; whether the rest changed decides.
            let mut compare = p.status.clone();
            if let Some(o) = compare.as_object_mut() {
                o.remove("now_ms");
            }
            let compare = compare.to_string();
            if compare != last[0] || sent_at.elapsed() >= HEARTBEAT {
                out.push_str(&format!("event: status\ndata: {}\n\n", p.status));
                last[0] = compare;
            }
            for (i, name, v) in [(1, "fills", p.fills), (2, "equity", p.equity)] {
                let text = v.map(|v| v.to_string()).unwrap_or_default();
                if !text.is_empty() && text != last[i] {
                    out.push_str(&format!("event: {name}\ndata: {text}\n\n"));
                    last[i] = text;
                }
            }
            if !out.is_empty() {
                if tx.send(Bytes::from(out)).await.is_err() {
                    break;
                }
                sent_at = tokio::time::Instant::now();
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = tx.closed() => break,
                _ = closing.wait_for(|c| *c) => break,
            }
        }
        app.streams.fetch_sub(1, Ordering::SeqCst);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let bytes = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let mut r = Response::new(Either::Right(StreamBody::new(stream).boxed_unsync()));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx-style proxies not to buffer the stream.
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    r
}
