//! The simulator's tokens: real HS256 JWTs for its one user with a configurable lifetime, and
//! the check every non-login call makes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::gateway::{Clock, WallClock};
use crate::secret::Secret;

/// What the simulator puts in a token. `jti` makes every token unique, even two issued in the
/// same second; `gen` ties it to a generation so a fault can expire every token at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    #[serde(rename = "gen")]
    pub generation: u64,
}

/// Why a bearer token was refused (all answered HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Invalid,
    Expired,
    /// Logged out, or issued before [`TokenIssuer::invalidate_all`].
    Revoked,
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
    /// Shared with [`Faults`](super::faults::Faults), which bumps it to expire every token.
    generation: Arc<AtomicU64>,
    revoked: Mutex<HashSet<String>>,
    /// Issues and expires tokens by this clock (tests share a manual one with the client).
    clock: Arc<dyn Clock>,
}

impl TokenIssuer {
    /// A fresh random signing key per simulator, so tokens of one run never work on another.
    pub fn new(lifetime: std::time::Duration) -> Self {
        Self::with_generation(lifetime, Arc::default(), Arc::new(WallClock))
    }

    /// Like [`TokenIssuer::new`], with the token generation shared with whoever may bump it,
    /// and the clock that says when tokens are issued and expire.
    pub fn with_generation(
        lifetime: std::time::Duration,
        generation: Arc<AtomicU64>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let key: [u8; 32] = rand::random();
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against `clock` below, not the system time.
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            lifetime: Duration::from_std(lifetime).unwrap_or(Duration::days(1)),
            generation,
            revoked: Mutex::new(HashSet::new()),
            clock,
        }
    }

    /// A token with the configured lifetime.
    pub fn issue(&self, user: &str) -> Secret {
        self.issue_for(user, self.lifetime)
    }

    /// A token that expires `lifetime` from now; a negative lifetime gives an expired token.
    pub fn issue_for(&self, user: &str, lifetime: Duration) -> Secret {
        let now = self.clock.now().timestamp();
        let claims = Claims {
            sub: user.to_string(),
            jti: format!("{:032x}", rand::random::<u128>()),
            iat: now,
            exp: now + lifetime.num_seconds(),
            iss: "moontick-sim".into(),
            generation: self.generation.load(Ordering::Relaxed),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail");
        Secret::new(token)
    }

    /// Checks signature, expiry, generation and revocation.
    ///
    /// # Errors
    /// Why the token is not acceptable.
    pub fn verify(&self, token: Option<&str>) -> Result<Claims, TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        // As jsonwebtoken would with no leeway: valid through the second of `exp`.
        if claims.exp < self.clock.now().timestamp() {
            return Err(TokenError::Expired);
        }
        if claims.generation != self.generation.load(Ordering::Relaxed)
            || self
                .revoked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&claims.jti)
        {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// `Auth/logout`: this token stops working.
    pub fn revoke(&self, jti: &str) {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(jti.to_string());
    }

    /// Every token issued so far stops working (a fault for testing re-login).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_differ() {
        let issuer = TokenIssuer::new(std::time::Duration::from_secs(60));
        let (a, b) = (issuer.issue("demo"), issuer.issue("demo"));
        assert_ne!(a.expose(), b.expose());
        let claims = issuer.verify(Some(a.expose())).unwrap();
        assert_eq!(claims.sub, "demo");
        assert_eq!(claims.exp - claims.iat, 60);
    }

    #[test]
    fn expired_revoked_foreign_and_missing_tokens_are_refused() {
        let issuer = TokenIssuer::new(std::time::Duration::from_secs(60));
        let expired = issuer.issue_for("demo", Duration::seconds(-5));
        assert_eq!(
            issuer.verify(Some(expired.expose())).unwrap_err(),
            TokenError::Expired
        );
        let other = TokenIssuer::new(std::time::Duration::from_secs(60)).issue("demo");
        assert_eq!(
            issuer.verify(Some(other.expose())).unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(issuer.verify(None).unwrap_err(), TokenError::Missing);
        let t = issuer.issue("demo");
        let jti = issuer.verify(Some(t.expose())).unwrap().jti;
        issuer.revoke(&jti);
        assert_eq!(
            issuer.verify(Some(t.expose())).unwrap_err(),
            TokenError::Revoked
        );
        let t = issuer.issue("demo");
        issuer.invalidate_all();
        assert_eq!(
            issuer.verify(Some(t.expose())).unwrap_err(),
            TokenError::Revoked
        );
    }
}
