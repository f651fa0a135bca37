//! The session against the simulator over loopback: JWT from the environment, refresh through
//! validate or login at `min(5 min, lifetime / 2)` before expiry, one refresh for many callers
//! and never one per request, backoff after a failed refresh, 401 → refresh → one retry, 429
//! back-off, and no secret in any log line. Token time runs on a manual clock the session and
//! the simulator share: expiry is stepped, never slept through.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use common::*;
use moontick::gateway::budget::RestBudget;
use moontick::gateway::{
    AuthError, Clock, Credentials, Endpoint, GatewayClient, GatewayError, ManualClock, Session,
    Transport,
};
use moontick::secret::Secret;
use moontick::sim::faults::FaultReply;
use moontick::sim::{SimConfig, Simulator};

/// A simulator whose tokens are issued and expire by `clock`.
async fn sim_on(clock: &Arc<ManualClock>, tune: impl FnOnce(&mut SimConfig)) -> Simulator {
    let clock = clock.clone();
    start_sim(move |c| {
        c.clock = clock;
        tune(c);
    })
    .await
}

/// A session that judges freshness by `clock`.
fn session_on(
    sim: &Simulator,
    clock: &Arc<ManualClock>,
    jwt: Option<Secret>,
    creds: Option<Credentials>,
) -> Arc<Session> {
    let transport =
        Arc::new(Transport::new(&sim.url(), RestBudget::client_default(), fast_options()).unwrap());
    Arc::new(
        Session::new(transport, jwt, creds)
            .expect("session builds")
            .with_clock(clock.clone()),
    )
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(chrono::Utc::now()))
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
    let clock = manual_clock();
    let sim = sim_on(&clock, |c| c.token_lifetime = Duration::from_secs(60)).await;
    let jwt = fresh_token(&sim).await;
    clock.advance(Span::seconds(61));
    let session = session_on(&sim, &clock, Some(jwt.clone()), Some(credentials()));
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
async fn a_four_minute_token_is_refreshed_through_validate_at_half_its_lifetime() {
    let clock = manual_clock();
    let sim = sim_on(&clock, |c| c.token_lifetime = Duration::from_secs(4 * 60)).await;
    let jwt = fresh_token(&sim).await;
    // No credentials: only Auth/validate can refresh it.
    let session = session_on(&sim, &clock, Some(jwt.clone()), None);
    // Under the 5-minute margin from the start, yet not due until half its lifetime is gone.
    assert_eq!(session.ensure_valid_token().await.unwrap(), jwt);
    clock.advance(Span::seconds(119));
    assert_eq!(session.ensure_valid_token().await.unwrap(), jwt);
    assert_eq!(session.validate_count(), 0);
    clock.advance(Span::seconds(2));
    let new = session.ensure_valid_token().await.unwrap();
    assert_ne!(new, jwt);
    assert_eq!(session.validate_count(), 1);
    assert_eq!(session.login_count(), 0);
    assert_eq!(
        sim.stats().last_bearer.as_ref(),
        Some(&jwt),
        "validate presents the old token"
    );
    assert_eq!(session.ensure_valid_token().await.unwrap(), new);
    assert_eq!(session.validate_count(), 1, "the new token is fresh again");
    assert_no_secret_logged(&[jwt.expose(), new.expose()]);
}

/// Before: with a lifetime under the 5-minute margin, every request called `Auth/validate`
/// (~20/s), filled the REST budget and delayed orders by 45 s.
#[tokio::test]
async fn a_short_lived_token_is_refreshed_once_per_half_life_never_per_request() {
    let clock = manual_clock();
    let sim = sim_on(&clock, |c| c.token_lifetime = Duration::from_secs(60)).await;
    let session = session_on(&sim, &clock, None, Some(credentials()));
    let client = GatewayClient::new(session.clone());
    let first = session.ensure_valid_token().await.unwrap();
    // 100 requests over 50 s of token time: the refresh point (30 s) is crossed once.
    for _ in 0..100 {
        assert!(!client.accounts(true).await.unwrap().is_empty());
        clock.advance(Span::milliseconds(500));
    }
    assert_eq!(session.validate_count(), 1);
    assert_eq!(session.login_count(), 1, "the first token only");
    let stats = sim.stats();
    assert_eq!((stats.validates, stats.logins), (1, 1));
    assert_eq!(stats.calls(Endpoint::AccountSearch), 100);
    assert_ne!(session.ensure_valid_token().await.unwrap(), first);
}

#[tokio::test]
async fn a_failed_refresh_backs_off_while_the_working_token_keeps_serving() {
    let clock = manual_clock();
    let sim = sim_on(&clock, |c| c.token_lifetime = Duration::from_secs(60)).await;
    let jwt = fresh_token(&sim).await;
    let session = session_on(&sim, &clock, Some(jwt.clone()), None);
    let client = GatewayClient::new(session.clone());
    clock.advance(Span::seconds(31));
    sim.faults()
        .fail_next(1000, Some(Endpoint::Validate), FaultReply::ServerError);
    for _ in 0..20 {
        assert!(!client.accounts(true).await.unwrap().is_empty());
    }
    assert_eq!(session.validate_count(), 1, "one attempt, then backoff");
    clock.advance(Span::seconds(1));
    client.accounts(true).await.unwrap();
    assert_eq!(session.validate_count(), 2, "again after 1 s");
    client.accounts(true).await.unwrap();
    assert_eq!(session.validate_count(), 2, "then 2 s");
    sim.faults().clear();
    clock.advance(Span::seconds(2));
    let new = session.ensure_valid_token().await.unwrap();
    assert_ne!(new, jwt);
    assert_eq!(session.validate_count(), 3);

    // Expired, with validate and login both failing: one typed error per attempt, and the
    // calls in between get a typed backoff error without reaching the gateway.
    let clock = manual_clock();
    let sim = sim_on(&clock, |c| c.token_lifetime = Duration::from_secs(60)).await;
    let jwt = fresh_token(&sim).await;
    let session = session_on(&sim, &clock, Some(jwt.clone()), Some(credentials()));
    sim.faults()
        .fail_next(1000, Some(Endpoint::Validate), FaultReply::ServerError);
    sim.faults().reject_logins(true);
    clock.advance(Span::seconds(59));
    assert_eq!(
        session.ensure_valid_token().await.unwrap(),
        jwt,
        "still works"
    );
    assert_eq!((session.validate_count(), session.login_count()), (1, 1));
    clock.advance(Span::seconds(2));
    let err = session.ensure_valid_token().await.unwrap_err();
    assert!(matches!(err, AuthError::LoginRejected { .. }), "{err:?}");
    for _ in 0..5 {
        let err = session.ensure_valid_token().await.unwrap_err();
        assert!(
            matches!(err, AuthError::RefreshBackoff { failures: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("InvalidCredentials"), "{err}");
    }
    assert_eq!((session.validate_count(), session.login_count()), (1, 2));
}

#[tokio::test]
async fn twenty_concurrent_callers_cause_exactly_one_refresh() {
    let clock = manual_clock();
    let sim = sim_on(&clock, |_| {}).await;
    // A four-minute token with one minute left: past its refresh point. Tokens the simulator
    // issues from here on live 24 h, so one refresh satisfies every caller.
    let stale = sim.mint_token(chrono::Duration::minutes(4));
    clock.advance(Span::minutes(3));
    let session = session_on(&sim, &clock, Some(stale), Some(credentials()));
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
    let clock = manual_clock();
    let sim = sim_on(&clock, |c| c.token_lifetime = Duration::from_secs(60)).await;
    let jwt = fresh_token(&sim).await;
    clock.advance(Span::seconds(61));
    let client = GatewayClient::new(session_on(&sim, &clock, Some(jwt), None));
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
async fn background_refresher_replaces_the_token_at_its_refresh_point() {
    let clock = manual_clock();
    let sim = sim_on(&clock, |c| c.token_lifetime = Duration::from_secs(60)).await;
    let session = session_on(&sim, &clock, None, Some(credentials()));
    let first = session.current().await.unwrap();
    assert_eq!(
        session.next_refresh_at(),
        first.expires_at - Span::seconds(30),
        "half of a 60 s lifetime"
    );
    let refresher = session.spawn_refresher();
    clock.advance(Span::seconds(29));
    tokio::task::yield_now().await;
    assert_eq!(session.expires_at(), Some(first.expires_at), "not yet due");
    clock.advance(Span::seconds(2));
    // The refresher wakes on the clock; the refresh itself is a real call over loopback.
    tokio::time::timeout(Duration::from_secs(10), async {
        while session.expires_at() == Some(first.expires_at) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the refresher replaced the token");
    assert!(clock.now() < first.expires_at, "refreshed before expiry");
    assert_eq!(session.validate_count(), 1);
    refresher.abort();
}
