//! The ProjectX session: the JWT, where it came from, and refreshing it before it expires —
//! `Auth/validate` while the token still works, `Auth/loginKey` otherwise — one refresh at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::Endpoint;
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

/// A JWT and its expiry, read from its own `exp` claim.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Secret,
    pub expires_at: DateTime<Utc>,
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
        }
        let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(value.expose())
            .map_err(|e| format!("not a JWT with an `exp` claim ({:?})", e.kind()))?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0)
            .ok_or_else(|| format!("`exp` {} is out of range", claims.exp))?;
        Ok(Self { value, expires_at })
    }

    /// True while the token has more than `margin` left.
    pub fn is_fresh(&self, margin: Duration) -> bool {
        self.expires_at - Utc::now() > chrono::Duration::from_std(margin).unwrap_or_default()
    }

    pub fn is_expired(&self) -> bool {
        self.expires_at <= Utc::now()
    }
}

/// How soon before expiry a token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

#[derive(Default)]
struct TokenSlot {
    token: Option<Token>,
    /// The gateway answered 401 to this token: do not offer it to `Auth/validate` again.
    rejected: bool,
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
            slot: RwLock::new(TokenSlot {
                token,
                rejected: false,
            }),
            refresh_lock: tokio::sync::Mutex::new(()),
            margin: REFRESH_MARGIN,
            logins: AtomicU64::new(0),
            validates: AtomicU64::new(0),
        })
    }

    /// Replaces the 5-minute refresh margin (tests use short-lived tokens).
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
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

    /// A token with more than the refresh margin left, refreshing first when needed. Many
    /// callers at once cause one refresh: the others wait for it and share its result.
    ///
    /// # Errors
    /// When the token is expired or nearly so and neither `Auth/validate` nor a login works.
    pub async fn ensure_valid_token(&self) -> Result<Secret, AuthError> {
        if let Some(token) = self.fresh_token() {
            return Ok(token);
        }
        let _refreshing = self.refresh_lock.lock().await;
        if let Some(token) = self.fresh_token() {
            return Ok(token);
        }
        self.refresh().await
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
            .ok_or_else(|| AuthError::token_problem(None, false))
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

    /// Keeps the token fresh in the background so a long run never meets an expired one.
    /// Abort the handle to stop it.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let session = Arc::clone(self);
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let wait = match session.expires_at() {
                    Some(at) => {
                        let refresh_at =
                            at - chrono::Duration::from_std(session.margin).unwrap_or_default();
                        (refresh_at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
                    }
                    None => Duration::ZERO,
                };
                // Sleep a little past the margin so the refresh sees a token inside it.
                tokio::time::sleep(wait + Duration::from_millis(50)).await;
                match session.ensure_valid_token().await {
                    Ok(_) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        let backoff = Duration::from_secs(5 * u64::from(failures.min(12)));
                        tracing::error!("token refresh failed ({e}); trying again in {backoff:?}");
                        tokio::time::sleep(backoff).await;
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

    fn fresh_token(&self) -> Option<Secret> {
        let slot = self.read_slot();
        let token = slot.token.as_ref()?;
        (!slot.rejected && token.is_fresh(self.margin)).then(|| token.value.clone())
    }

    /// Must be called with `refresh_lock` held.
    async fn refresh(&self) -> Result<Secret, AuthError> {
        let (current, rejected) = {
            let slot = self.read_slot();
            (slot.token.clone(), slot.rejected)
        };
        if let Some(token) = current.as_ref().filter(|t| !rejected && !t.is_expired()) {
            match self.validate(&token.value).await {
                Ok(new) => return Ok(self.store(new, "refreshed through Auth/validate")),
                Err(why) => tracing::warn!("Auth/validate did not refresh the token ({why})"),
            }
        }
        let Some(credentials) = &self.credentials else {
            return Err(AuthError::token_problem(
                current.map(|t| t.expires_at),
                rejected,
            ));
        };
        let token = self.login(credentials).await?;
        Ok(self.store(token, "logged in with API key"))
    }

    fn store(&self, token: Token, how: &str) -> Secret {
        tracing::info!(
            "Token {how} (expires: {})",
            token.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let value = token.value.clone();
        *self.write_slot() = TokenSlot {
            token: Some(token),
            rejected: false,
        };
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
