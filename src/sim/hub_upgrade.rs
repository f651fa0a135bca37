//! The hubs' HTTP side: the token check (query `access_token` or `Authorization: Bearer`),
//! `POST <hub>/negotiate` with the connection tokens it hands out, and the WebSocket upgrade over
//! hyper that hands the socket to a hub session (`hub`).

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::auth::TokenError;
use super::hub::run;
use super::hubs::HubKind;
use super::market_hub::MarketSession;
use super::reply::{Reply, bearer, empty, json as json_reply, unauthorized};
use super::shared::Shared;
use super::user_hub::UserSession;
use crate::secret::Secret;

/// `/hubs/market` or `/hubs/user`, optionally followed by `/negotiate`.
fn parse_path(path: &str) -> Option<(HubKind, bool)> {
    let rest = path.get(6..)?.trim_end_matches('/');
    let (name, negotiate) = match rest.rsplit_once('/') {
        Some((name, tail)) if tail.eq_ignore_ascii_case("negotiate") => (name, true),
        Some(_) => return None,
        None => (rest, false),
    };
    let kind = if name.eq_ignore_ascii_case("market") {
        HubKind::Market
    } else if name.eq_ignore_ascii_case("user") {
        HubKind::User
    } else {
        return None;
    };
    Some((kind, negotiate))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_params(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        // The JS client may append `access_token` a second time; the first one wins.
        .fold(HashMap::new(), |mut m, (k, v)| {
            m.entry(k).or_insert(v);
            m
        })
}

/// Serves a request under `/hubs/`: `negotiate` (POST) or the WebSocket upgrade (GET).
pub(crate) async fn handle(shared: Arc<Shared>, mut req: Request<Incoming>) -> Reply {
    let Some((kind, negotiate)) = parse_path(req.uri().path()) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if let Some(status) = shared.faults.hub_snapshot().reject_upgrades {
        return empty(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE));
    }
    let params = query_params(req.uri().query());
    // Browsers cannot set headers on an upgrade, so SignalR carries the token in the query;
    // other clients send the header. Either is accepted, the query first (as ASP.NET's
    // JwtBearer setup for SignalR does).
    let token = params
        .get("access_token")
        .filter(|t| !t.is_empty())
        .cloned()
        .or_else(|| bearer(req.headers()));
    if let Err(e) = shared.tokens.verify(token.as_deref()) {
        shared.stats().hub_unauthorized += 1;
        tracing::debug!(hub = ?kind, reason = ?e, "simulator refused a hub token");
        return unauthorized(e != TokenError::Missing);
    }
    let token = token.unwrap_or_default();

    if negotiate {
        if req.method() != Method::POST {
            return empty(StatusCode::METHOD_NOT_ALLOWED);
        }
        let version = params
            .get("negotiateVersion")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        return negotiate_reply(&shared, kind, version);
    }

    if req.method() != Method::GET || !is_websocket_upgrade(&req) {
        // Only the WebSockets transport is offered (negotiate says so).
        return json_reply(
            StatusCode::BAD_REQUEST,
            b"WebSocket upgrade expected".to_vec(),
            "text/plain; charset=utf-8",
        );
    }
    if let Some(id) = params.get("id")
        && !shared.hubs.take(id, kind)
    {
        // ASP.NET answers an unknown or reused connection token with 404.
        return json_reply(
            StatusCode::NOT_FOUND,
            b"No Connection with that ID".to_vec(),
            "text/plain; charset=utf-8",
        );
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    let accept = derive_accept_key(key.as_bytes());
    {
        let mut stats = shared.stats();
        stats.hub_tokens.push(Secret::new(token));
        stats.hub_connects += 1;
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                // tungstenite zero-fills its whole read buffer (128 KiB by default) before
                // every read; client messages are small.
                let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                match kind {
                    HubKind::Market => {
                        let session = MarketSession::counting(shared.quotes_sent.clone());
                        run(shared, session, ws).await
                    }
                    HubKind::User => run(shared, UserSession::default(), ws).await,
                }
            }
            Err(e) => tracing::debug!(error = %e, "hub upgrade failed"),
        }
    });
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(want))
            })
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// The negotiate answer. Version 1 hands out a separate connection token (the `id` of the
/// upgrade); version 0 (no `negotiateVersion` in the query, as signalrcore sends) uses the
/// connection id itself, as ASP.NET does.
fn negotiate_reply(shared: &Shared, kind: HubKind, version: u32) -> Reply {
    let connection_id = random_id();
    let mut body = json!({
        "connectionId": connection_id,
        "negotiateVersion": version.min(1),
        "availableTransports": [
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
        ],
    });
    let token = if version >= 1 {
        let token = random_id();
        body["connectionToken"] = json!(token);
        token
    } else {
        connection_id
    };
    shared.hubs.remember(token, kind);
    shared.stats().hub_negotiations += 1;
    tracing::debug!(hub = ?kind, version, "hub negotiated");
    json_reply(
        StatusCode::OK,
        serde_json::to_vec(&body).expect("negotiate reply serializes"),
        "application/json; charset=utf-8",
    )
}

/// 22 URL-safe characters, like ASP.NET's connection ids.
fn random_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = rand::random::<u128>();
    (0..22)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_paths_parse() {
        assert_eq!(parse_path("/hubs/market"), Some((HubKind::Market, false)));
        assert_eq!(
            parse_path("/HUBS/User/negotiate"),
            Some((HubKind::User, true))
        );
        assert_eq!(parse_path("/hubs/market/"), Some((HubKind::Market, false)));
        assert_eq!(parse_path("/hubs/other"), None);
        assert_eq!(parse_path("/hubs/market/x"), None);
    }

    #[test]
    fn query_values_are_decoded_and_the_first_wins() {
        let p = query_params(Some("access_token=a%2Bb&id=x&access_token=second&flag"));
        assert_eq!(p["access_token"], "a+b");
        assert_eq!(p["id"], "x");
        assert_eq!(p["flag"], "");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn random_ids_differ() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
    }
}
