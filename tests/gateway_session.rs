//! The session against the simulator over loopback: JWT from the environment, refresh through
//! validate or login, one refresh for many callers, 401 → refresh → one retry, 429 back-off,
//! and no secret in any log line.

mod common;

use std::time::Duration;

use common::*;
use moontick::gateway::{AuthError, Endpoint, GatewayClient, GatewayError};
use moontick::secret::Secret;
use moontick::sim::faults::FaultReply;

async fn wait_until_expired(token: &Secret) {
    let exp = moontick::gateway::Token::parse(token.clone())
        .unwrap()
        .expires_at;
    while chrono::Utc::now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn valid_jwt_from_environment_is_used_with_zero_login_calls() {
    let sim = start_sim(|_| {}).await;
    let jwt = fresh_token(&sim).await;
    let logins_before = sim.stats().logins;
    let session = session(&sim, Some(jwt.clone()), Some(credentials()));
    let client = GatewayClient::new(session.clone());
    assert!(!client.accounts(true).await.unwrap().is_empty());
    assert_eq!(session.login_count(), 0);
    assert_eq!(session.validate_count(), 0);
    assert_eq!(
        sim.stats().logins,
        logins_before,
        "the simulator saw a login"
    );
    assert_eq!(session.ensure_valid_token().await.unwrap(), jwt);
    assert!(
        logs()
            .text()
            .contains("Loaded JWT from environment (expires: ")
    );
    assert_no_secret_logged(&[jwt.expose(), KEY]);
}

#[tokio::test]
async fn expired_jwt_is_replaced_by_a_login() {
    let sim = start_sim(|c| c.token_lifetime = Duration::from_secs(1)).await;
    let jwt = fresh_token(&sim).await;
    wait_until_expired(&jwt).await;
    let session = session(&sim, Some(jwt.clone()), Some(credentials()));
    let new = session.ensure_valid_token().await.unwrap();
    assert_ne!(new, jwt);
    assert_eq!(session.login_count(), 1);
    assert_eq!(
        session.validate_count(),
        0,
        "an expired token cannot be validated"
    );
    assert_no_secret_logged(&[jwt.expose(), new.expose(), KEY]);
}

#[tokio::test]
async fn token_with_under_five_minutes_left_is_refreshed_through_validate() {
    let sim = start_sim(|c| c.token_lifetime = Duration::from_secs(4 * 60)).await;
    let jwt = fresh_token(&sim).await;
    // No credentials: only Auth/validate can refresh it.
    let session = session(&sim, Some(jwt.clone()), None);
    let new = session.ensure_valid_token().await.unwrap();
    assert_ne!(new, jwt);
    assert_eq!(session.validate_count(), 1);
    assert_eq!(session.login_count(), 0);
    assert_eq!(
        sim.stats().last_bearer.as_ref(),
        Some(&jwt),
        "validate presents the old token"
    );
    // The new token also has 4 minutes: every call refreshes again, but one at a time.
    assert_no_secret_logged(&[jwt.expose(), new.expose()]);
}

#[tokio::test]
async fn twenty_concurrent_callers_cause_exactly_one_refresh() {
    let sim = start_sim(|_| {}).await;
    // Four minutes left: inside the refresh margin. Tokens the simulator issues from here on
    // live 24 h, so one refresh satisfies every caller.
    let stale = sim.mint_token(chrono::Duration::minutes(4));
    let session = session(&sim, Some(stale), Some(credentials()));
    let validates_before = sim.stats().validates;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = GatewayClient::new(session.clone());
        tasks.push(tokio::spawn(async move {
            client.accounts(true).await.map(|a| a.len())
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap() > 0);
    }
    assert_eq!(session.validate_count(), 1);
    assert_eq!(session.login_count(), 0);
    assert_eq!(sim.stats().validates - validates_before, 1);
}

#[tokio::test]
async fn expired_token_without_credentials_names_the_missing_variables() {
    let sim = start_sim(|c| c.token_lifetime = Duration::from_secs(1)).await;
    let jwt = fresh_token(&sim).await;
    wait_until_expired(&jwt).await;
    let client = GatewayClient::new(session(&sim, Some(jwt), None));
    let err = client.accounts(true).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, GatewayError::Auth(AuthError::NoCredentials { .. })),
        "{err:?}"
    );
    for needle in [
        "expired",
        "PROJECT_X_USERNAME",
        "PROJECT_X_API_KEY",
        "JWT_TOKEN",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
}

#[tokio::test]
async fn unauthorized_call_refreshes_once_and_retries_once() {
    let sim = start_sim(|_| {}).await;
    let client = client(&sim);
    client.accounts(true).await.unwrap();
    let before = sim.stats();
    sim.faults()
        .fail_next(1, Some(Endpoint::AccountSearch), FaultReply::Unauthorized);
    assert!(!client.accounts(true).await.unwrap().is_empty());
    let after = sim.stats();
    assert_eq!(
        after.calls(Endpoint::AccountSearch) - before.calls(Endpoint::AccountSearch),
        2
    );
    assert_eq!(
        client.session().login_count(),
        2,
        "one login at start, one after the 401"
    );

    // A gateway that keeps answering 401 gets exactly one retry, then a clear error.
    sim.faults()
        .fail_next(10, Some(Endpoint::AccountSearch), FaultReply::Unauthorized);
    let before = sim.stats().calls(Endpoint::AccountSearch);
    let err = client.accounts(true).await.unwrap_err();
    assert!(matches!(err, GatewayError::Unauthorized { .. }), "{err:?}");
    assert_eq!(sim.stats().calls(Endpoint::AccountSearch) - before, 2);
    sim.faults().clear();
}

#[tokio::test]
async fn rate_limited_call_waits_for_retry_after_and_succeeds() {
    let sim = start_sim(|_| {}).await;
    let client = client(&sim);
    client.accounts(true).await.unwrap();
    sim.faults().fail_next(
        2,
        Some(Endpoint::AccountSearch),
        FaultReply::TooManyRequests {
            retry_after: Duration::from_secs(1),
        },
    );
    let before = sim.stats().calls(Endpoint::AccountSearch);
    let started = std::time::Instant::now();
    assert!(!client.accounts(true).await.unwrap().is_empty());
    assert_eq!(sim.stats().calls(Endpoint::AccountSearch) - before, 3);
    // The simulator sends Retry-After: 1; both waits were honoured.
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn wrong_api_key_is_reported_as_invalid_credentials() {
    let sim = start_sim(|_| {}).await;
    let bad = moontick::gateway::Credentials {
        username: USER.into(),
        api_key: Secret::new("wrong-key-123"),
    };
    let err = session(&sim, None, Some(bad))
        .ensure_valid_token()
        .await
        .unwrap_err();
    match &err {
        AuthError::LoginRejected {
            code, code_name, ..
        } => {
            assert_eq!((*code, *code_name), (3, "InvalidCredentials"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.to_string().contains("wrong-key-123"));
    assert!(!format!("{err:?}").contains("wrong-key-123"));
    assert_no_secret_logged(&["wrong-key-123", KEY]);
}

#[tokio::test]
async fn rejected_logins_are_a_clear_error() {
    let sim = start_sim(|_| {}).await;
    sim.faults().reject_logins(true);
    let err = session(&sim, None, Some(credentials()))
        .ensure_valid_token()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("InvalidCredentials"), "{err}");
}

#[tokio::test]
async fn background_refresher_replaces_the_token_before_it_expires() {
    let sim = start_sim(|c| c.token_lifetime = Duration::from_secs(3)).await;
    let session = session_with_margin(&sim, None, Some(credentials()), Duration::from_secs(2));
    let first = session.current().await.unwrap();
    let refresher = session.spawn_refresher();
    // The refresher acts ~2 s before expiry, so the next token arrives before the first expires.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = session.expires_at().unwrap();
        if now > first.expires_at {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refresh happened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        chrono::Utc::now() < first.expires_at,
        "refreshed only after expiry"
    );
    refresher.abort();
}
