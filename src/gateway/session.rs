//! The ProjectX session: the JWT, where it came from, and refreshing it before it expires —
//! `Auth/validate` while the token still works, `Auth/loginKey` otherwise — one refresh at a time.
//!
//! The refresh rule: a token is replaced `min(5 min, lifetime / 2)` before it expires (lifetime
//! from its `iat`, else from when we got it), so a short-lived token is refreshed once per half
//! life, never once per request. A failed refresh backs off (1 s doubling to 30 s) while the
//! current token, if it still works, keeps being used. Time comes from a [`Clock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::clock::{Clock, WallClock};
use super::endpoint::Endpoint;
use super::error::{AuthError, GatewayError};
use super::requests::{LoginKeyRequest, LoginPayload, ValidatePayload};
use super::transport::{SendError, Transport};
use crate::secret::Secret;

/// Username and API key for `Auth/loginKey`.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub api_key: Secret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// A JWT and its expiry, read from its own `exp` claim (and `iat`, when it has one).
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Secret,
    pub expires_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
}

impl Token {
    /// Reads `exp` without verifying the signature: only the gateway holds the key, and all we
    /// need is to know when to refresh.
    ///
    /// # Errors
    /// When the text is not a JWT with a numeric `exp`.
    pub fn parse(value: Secret) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Claims {
            exp: i64,
            iat: Option<i64>,
        }
        let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(value.expose())
            .map_err(|e| format!("not a JWT with an `exp` claim ({:?})", e.kind()))?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0)
            .ok_or_else(|| format!("`exp` {} is out of range", claims.exp))?;
        let issued_at = claims.iat.and_then(|t| DateTime::from_timestamp(t, 0));
        Ok(Self {
            value,
            expires_at,
            issued_at,
        })
    }

    /// When to replace it: `min(cap, lifetime / 2)` before expiry, the lifetime running from
    /// `iat`, or from `obtained_at` when the token has none.
    pub fn refresh_at(&self, obtained_at: DateTime<Utc>, cap: Duration) -> DateTime<Utc> {
        let start = self.issued_at.unwrap_or(obtained_at).min(self.expires_at);
        let half = (self.expires_at - start) / 2;
        let margin = chrono::Duration::from_std(cap).map_or(half, |cap| cap.min(half));
        self.expires_at - margin
    }

    /// True while the token has more than `margin` left.
    pub fn is_fresh(&self, margin: Duration) -> bool {
        self.expires_at - Utc::now() > chrono::Duration::from_std(margin).unwrap_or_default()
    }

    pub fn is_expired(&self) -> bool {
        self.expires_at <= Utc::now()
    }
}

/// How soon before expiry a token is replaced, at most (half its lifetime when that is less).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The longest wait between refresh attempts after failures.
const MAX_BACKOFF_SECS: i64 = 30;

struct TokenSlot {
    token: Option<Token>,
    /// When we got it: where its lifetime starts when it has no `iat`.
    obtained_at: DateTime<Utc>,
    /// The gateway answered 401 to this token: do not offer it to `Auth/validate` again.
    rejected: bool,
    /// Failed refreshes in a row, the last one's reason, and when the next may be tried.
    failures: u32,
    last_failure: String,
    retry_at: Option<DateTime<Utc>>,
}

impl TokenSlot {
    fn new(token: Option<Token>, now: DateTime<Utc>) -> Self {
        Self {
            token,
            obtained_at: now,
            rejected: false,
            failures: 0,
            last_failure: String::new(),
            retry_at: None,
        }
    }
}

/// 1 s, doubling, at most [`MAX_BACKOFF_SECS`].
fn backoff(failures: u32) -> chrono::Duration {
    let secs = 1i64 << failures.saturating_sub(1).min(5);
    chrono::Duration::seconds(secs.min(MAX_BACKOFF_SECS))
}

/// Holds the current token and refreshes it. Shared (`Arc`) by the REST client, the hubs and
/// the background refresher.
pub struct Session {
    transport: Arc<Transport>,
    credentials: Option<Credentials>,
    slot: RwLock<TokenSlot>,
    // A tokio mutex because it is held across the refresh's await points; the fast path never
    // takes it.
    refresh_lock: tokio::sync::Mutex<()>,
    margin: Duration,
    clock: Arc<dyn Clock>,
    logins: AtomicU64,
    validates: AtomicU64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base_url", &self.transport.base_url())
            .field("credentials", &self.credentials)
            .field("expires_at", &self.expires_at())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts from `JWT_TOKEN` when given (no login call while it is valid) and keeps the
    /// credentials for when it is not.
    ///
    /// # Errors
    /// When `jwt` is not a readable JWT and there are no credentials to fall back on.
    pub fn new(
        transport: Arc<Transport>,
        jwt: Option<Secret>,
        credentials: Option<Credentials>,
    ) -> Result<Self, AuthError> {
        let token = match jwt.map(Token::parse) {
            Some(Ok(token)) => {
                tracing::info!(
                    "Loaded JWT from environment (expires: {})",
                    token.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
                );
                Some(token)
            }
            Some(Err(why)) if credentials.is_some() => {
                tracing::warn!("JWT_TOKEN is unusable ({why}); will log in with the API key");
                None
            }
            Some(Err(why)) => {
                return Err(AuthError::NoCredentials {
                    problem: format!("JWT_TOKEN is unusable: {why}"),
                });
            }
            None => None,
        };
        Ok(Self {
            transport,
            credentials,
            slot: RwLock::new(TokenSlot::new(token, Utc::now())),
            refresh_lock: tokio::sync::Mutex::new(()),
            margin: REFRESH_MARGIN,
            clock: Arc::new(WallClock),
            logins: AtomicU64::new(0),
            validates: AtomicU64::new(0),
        })
    }

    /// Replaces the 5-minute cap of the refresh margin.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Judges freshness and waits by `clock` (tests step a [`super::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.slot
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .obtained_at = clock.now();
        self.clock = clock;
        self
    }

    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// When the current token expires, if there is one.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.read_slot().token.as_ref().map(|t| t.expires_at)
    }

    /// `Auth/loginKey` calls made so far.
    pub fn login_count(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// `Auth/validate` calls made so far.
    pub fn validate_count(&self) -> u64 {
        self.validates.load(Ordering::Relaxed)
    }

    /// A token that needs no refresh yet, refreshing first when one is due. Many callers at
    /// once cause one refresh: the others wait for it and share its result. While a failed
    /// refresh backs off, a token that still works is returned as it is.
    ///
    /// # Errors
    /// When the token is expired (or rejected) and neither `Auth/validate` nor a login works,
    /// or a refresh failed moments ago and the next attempt is not due yet.
    pub async fn ensure_valid_token(&self) -> Result<Secret, AuthError> {
        if let Some(token) = self.usable_token() {
            return Ok(token);
        }
        let _refreshing = self.refresh_lock.lock().await;
        if let Some(token) = self.usable_token() {
            return Ok(token);
        }
        // A failed refresh backs off; the token, while it still works, serves meanwhile.
        self.refresh()
            .await
            .or_else(|e| self.usable_token().ok_or(e))
    }

    /// The current token and its expiry, refreshed first when needed.
    ///
    /// # Errors
    /// As [`Session::ensure_valid_token`].
    pub async fn current(&self) -> Result<Token, AuthError> {
        self.ensure_valid_token().await?;
        self.read_slot()
            .token
            .clone()
            .ok_or_else(|| AuthError::token_problem(None, false, self.clock.now()))
    }

    /// Called after the gateway answered 401 to `rejected`: replaces it unless another caller
    /// already did, and returns the token to retry with.
    ///
    /// # Errors
    /// When no new token can be had.
    pub async fn refresh_after_unauthorized(&self, rejected: &Secret) -> Result<Secret, AuthError> {
        let _refreshing = self.refresh_lock.lock().await;
        {
            let mut slot = self.write_slot();
            match &slot.token {
                Some(t) if t.value != *rejected && !slot.rejected => return Ok(t.value.clone()),
                _ => slot.rejected = true,
            }
        }
        tracing::warn!("the gateway answered 401 to the current token; getting a new one");
        self.refresh().await
    }

    /// When the next refresh is due: the token's refresh point, or the end of a backoff.
    pub fn next_refresh_at(&self) -> DateTime<Utc> {
        let slot = self.read_slot();
        let due = match &slot.token {
            Some(t) if !slot.rejected => t.refresh_at(slot.obtained_at, self.margin),
            _ => self.clock.now(),
        };
        slot.retry_at.map_or(due, |retry| due.max(retry))
    }

    /// Keeps the token fresh in the background so a long run never meets an expired one.
    /// Abort the handle to stop it.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let session = Arc::clone(self);
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                session.clock.sleep_until(session.next_refresh_at()).await;
                match session.ensure_valid_token().await {
                    Ok(_) => failures = 0,
                    Err(e) => {
                        // A failure that made no gateway call (no credentials) sets no
                        // backoff in the session: wait here too, so this loop never spins.
                        failures += 1;
                        let wait = backoff(failures);
                        tracing::error!("token refresh failed ({e}); trying again in {wait}");
                        let until = session.clock.now() + wait;
                        session.clock.sleep_until(until).await;
                    }
                }
            }
        })
    }

    fn read_slot(&self) -> std::sync::RwLockReadGuard<'_, TokenSlot> {
        self.slot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_slot(&self) -> std::sync::RwLockWriteGuard<'_, TokenSlot> {
        self.slot.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The current token when no refresh is due: before its refresh point, or inside it but
    /// still working while a failed refresh backs off.
    fn usable_token(&self) -> Option<Secret> {
        let now = self.clock.now();
        let slot = self.read_slot();
        let token = slot.token.as_ref()?;
        if slot.rejected || token.expires_at <= now {
            return None;
        }
        let fresh = now < token.refresh_at(slot.obtained_at, self.margin);
        let backing_off = slot.retry_at.is_some_and(|at| now < at);
        (fresh || backing_off).then(|| token.value.clone())
    }

    /// Must be called with `refresh_lock` held.
    async fn refresh(&self) -> Result<Secret, AuthError> {
        let now = self.clock.now();
        let (current, rejected) = {
            let slot = self.read_slot();
            if let Some(retry_at) = slot.retry_at.filter(|at| now < *at) {
                return Err(AuthError::RefreshBackoff {
                    failures: slot.failures,
                    last: slot.last_failure.clone(),
                    retry_at,
                });
            }
            (slot.token.clone(), slot.rejected)
        };
        let mut asked_gateway = false;
        if let Some(token) = current.as_ref().filter(|t| !rejected && t.expires_at > now) {
            asked_gateway = true;
            match self.validate(&token.value).await {
                Ok(new) => return Ok(self.store(new, "refreshed through Auth/validate")),
                Err(why) => tracing::warn!("Auth/validate did not refresh the token ({why})"),
            }
        }
        let result = match &self.credentials {
            Some(credentials) => {
                asked_gateway = true;
                self.login(credentials).await
            }
            None => Err(AuthError::token_problem(
                current.map(|t| t.expires_at),
                rejected,
                self.clock.now(),
            )),
        };
        match result {
            Ok(token) => Ok(self.store(token, "logged in with API key")),
            Err(e) => {
                if asked_gateway {
                    self.note_failure(&e);
                }
                Err(e)
            }
        }
    }

    fn note_failure(&self, e: &AuthError) {
        let now = self.clock.now();
        let mut slot = self.write_slot();
        slot.failures += 1;
        slot.last_failure = e.to_string();
        slot.retry_at = Some(now + backoff(slot.failures));
    }

    fn store(&self, token: Token, how: &str) -> Secret {
        tracing::info!(
            "Token {how} (expires: {})",
            token.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let now = self.clock.now();
        let value = token.value.clone();
        // A token already inside its own refresh point (a gateway that hands back the same
        // token) would otherwise be refreshed again on every request: back off instead.
        let stale = token.refresh_at(now, self.margin) <= now;
        let mut slot = self.write_slot();
        let failures = slot.failures;
        *slot = TokenSlot::new(Some(token), now);
        if stale {
            slot.failures = failures + 1;
            slot.last_failure = "the new token was already due for a refresh".into();
            slot.retry_at = Some(now + backoff(slot.failures));
            tracing::warn!("the gateway issued a token that is already due for a refresh");
        }
        value
    }

    async fn validate(&self, token: &Secret) -> Result<Token, String> {
        self.validates.fetch_add(1, Ordering::Relaxed);
        let reply = self
            .transport
            .send::<(), ValidatePayload>(Endpoint::Validate, Some(token), None)
            .await;
        let envelope = match reply {
            Ok(e) => e,
            Err(SendError::Unauthorized) => return Err("HTTP 401".into()),
            Err(SendError::Other(e)) => return Err(e.to_string()),
        };
        if !envelope.success {
            let name = Endpoint::Validate.error_name(envelope.error_code);
            return Err(format!("{name} ({})", envelope.error_code));
        }
        match envelope.payload.new_token {
            Some(new) => Token::parse(new),
            None => Err("success without a newToken".into()),
        }
    }

    async fn login(&self, credentials: &Credentials) -> Result<Token, AuthError> {
        self.logins.fetch_add(1, Ordering::Relaxed);
        let user = credentials.username.clone();
        let body = LoginKeyRequest {
            user_name: credentials.username.clone(),
            api_key: credentials.api_key.clone(),
        };
        let envelope = self
            .transport
            .send::<_, LoginPayload>(Endpoint::LoginKey, None, Some(&body))
            .await
            .map_err(|e| AuthError::LoginFailed {
                user: user.clone(),
                reason: match e {
                    SendError::Unauthorized => "HTTP 401".into(),
                    SendError::Other(GatewayError::Http { status: 400, .. }) => {
                        "HTTP 400 (the gateway wants both a username and an API key)".into()
                    }
                    SendError::Other(e) => e.to_string(),
                },
            })?;
        match envelope.payload.token {
            Some(token) if envelope.success => {
                Token::parse(token).map_err(AuthError::UnreadableToken)
            }
            _ => Err(AuthError::LoginRejected {
                user,
                code: envelope.error_code,
                code_name: Endpoint::LoginKey.error_name(envelope.error_code),
                message: envelope.error_message,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issued: Option<i64>, exp: i64) -> Token {
        Token {
            value: Secret::new("t"),
            expires_at: DateTime::from_timestamp(exp, 0).unwrap(),
            issued_at: issued.and_then(|t| DateTime::from_timestamp(t, 0)),
        }
    }

    #[test]
    fn the_refresh_margin_is_five_minutes_or_half_the_lifetime() {
        let at = |t: &Token, obtained: i64| {
            t.refresh_at(
                DateTime::from_timestamp(obtained, 0).unwrap(),
                REFRESH_MARGIN,
            )
            .timestamp()
        };
        let day = token(Some(0), 86_400);
        assert_eq!(at(&day, 0), 86_400 - 300);
        let four_minutes = token(Some(1000), 1240);
        assert_eq!(at(&four_minutes, 1000), 1120);
        // Without `iat` the lifetime runs from when the token was obtained.
        let no_iat = token(None, 1060);
        assert_eq!(at(&no_iat, 1000), 1030);
        // Already expired when obtained: due at once, never after its expiry.
        assert_eq!(at(&token(None, 500), 1000), 500);
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let secs: Vec<i64> = (1..=8).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
