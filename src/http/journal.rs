//! `GET /journal?day=YYYY-MM-DD`: the trade journal of one CME trading day as a CSV download.
//! The file name is built from the parsed date, so no request can name another file.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::app::App;
use super::reply::{Reply, json_reply};
use crate::journal;

/// The day's CSV; 400 for a missing or malformed day, 404 when no fill was journaled that day.
pub(crate) async fn download(app: &App, query: Option<&str>) -> Reply {
    let day = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "day")
        .map(|(_, v)| v.into_owned());
    let Some(day) = day else {
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "error": "give the trading day: /journal?day=YYYY-MM-DD"}),
        );
    };
    let day = match journal::parse_day(&day) {
        Ok(d) => d,
        Err(e) => {
            return json_reply(
                StatusCode::BAD_REQUEST,
                json!({"ok": false, "error": e.to_string()}),
            );
        }
    };
    let not_found = || {
        json_reply(
            StatusCode::NOT_FOUND,
            json!({"ok": false, "error": format!("no fills journaled on trading day {day}")}),
        )
    };
    let Some(dir) = &app.cfg.journal_dir else {
        return not_found();
    };
    let bytes = match tokio::fs::read(journal::path_for(dir, day)).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        Err(e) => {
            tracing::error!("reading the journal of {day}: {e}");
            return json_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"ok": false, "error": "the journal could not be read"}),
            );
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"moontick-journal-{day}.csv\""
    )) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    r
}
