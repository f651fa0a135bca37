//! The gateway session as the hubs' token source: every (re)connect asks the session for a fresh
//! token, and a login failure becomes a typed [`TokenError`] (the session's errors never carry
//! the token).

use std::sync::Arc;

use crate::gateway::{AuthError, Session};
use crate::secret::Secret;
use crate::signalr::{TokenError, TokenSource};

/// Adapts a [`Session`] to [`TokenSource`].
#[derive(Debug, Clone)]
pub struct SessionTokens(pub Arc<Session>);

impl SessionTokens {
    pub fn new(session: Arc<Session>) -> Self {
        SessionTokens(session)
    }
}

impl From<Arc<Session>> for SessionTokens {
    fn from(session: Arc<Session>) -> Self {
        SessionTokens(session)
    }
}

impl TokenSource for SessionTokens {
    async fn token(&self) -> Result<Secret, TokenError> {
        self.0.ensure_valid_token().await.map_err(token_error)
    }
}

/// Refusals stay refusals; a login that could not be made at all may work on the next try.
fn token_error(e: AuthError) -> TokenError {
    match e {
        AuthError::LoginFailed { .. } | AuthError::RefreshBackoff { .. } => {
            TokenError::Unavailable(e.to_string())
        }
        AuthError::NoCredentials { .. }
        | AuthError::LoginRejected { .. }
        | AuthError::UnreadableToken(_) => TokenError::Refused(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_failures_map_to_typed_token_errors() {
        let failed = AuthError::LoginFailed {
            user: "u".into(),
            reason: "HTTP 503".into(),
        };
        assert_eq!(
            token_error(failed),
            TokenError::Unavailable("login as \"u\" failed: HTTP 503".into())
        );
        let rejected = AuthError::UnreadableToken("bad base64".into());
        assert!(matches!(token_error(rejected), TokenError::Refused(_)));
    }
}
