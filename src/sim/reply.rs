//! The simulator's HTTP replies and request helpers, shared by the REST pipeline (`http`), the
//! endpoint handlers (`api`) and the hub upgrade (`hub_upgrade`): a leaf, so none of those
//! needs another's internals.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

pub(crate) type Reply = Response<Full<Bytes>>;

pub(crate) fn empty(status: StatusCode) -> Reply {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub(crate) fn json(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The gateway's 401 body shape is not known; ASP.NET's JwtBearer handler answers with an empty
/// body and a `WWW-Authenticate` challenge, so we do the same.
pub(crate) fn unauthorized(had_token: bool) -> Reply {
    let mut r = empty(StatusCode::UNAUTHORIZED);
    let challenge = if had_token {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}
