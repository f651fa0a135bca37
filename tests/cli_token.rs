//! `moontick token`, the real binary against the simulator: prints a usable token, reuses a
//! valid JWT_TOKEN without logging in, and never writes a secret to its log output.

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;
use moontick::gateway::Token;
use moontick::secret::Secret;

async fn run_token(sim: &moontick::sim::Simulator, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_moontick"));
    cmd.arg("token")
        .current_dir(dir.path())
        .env_clear()
        .env("PROJECT_X_API_URL", sim.url())
        .env("RUST_LOG", "trace");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("token exits")
        .unwrap()
}

fn printed_token(out: &Output) -> Secret {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("JWT_TOKEN="))
        .expect("a JWT_TOKEN= line");
    assert!(stdout.contains("# expires: "), "{stdout}");
    Secret::new(line)
}

#[tokio::test]
async fn logs_in_with_credentials_and_prints_the_token_only_on_stdout() {
    let sim = start_sim(|_| {}).await;
    let out = run_token(
        &sim,
        &[("PROJECT_X_USERNAME", USER), ("PROJECT_X_API_KEY", KEY)],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = printed_token(&out);
    assert!(
        Token::parse(token.clone())
            .unwrap()
            .is_fresh(Duration::from_secs(3600))
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("logged in"), "{stderr}");
    assert!(
        !stderr.contains(token.expose()),
        "the token leaked into the logs"
    );
    assert!(!stderr.contains(KEY), "the API key leaked into the logs");
    assert_eq!(sim.stats().logins, 1);
}

#[tokio::test]
async fn reuses_a_valid_jwt_token_without_logging_in() {
    let sim = start_sim(|_| {}).await;
    let jwt = fresh_token(&sim).await;
    let logins = sim.stats().logins;
    let out = run_token(&sim, &[("JWT_TOKEN", jwt.expose())]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(printed_token(&out), jwt);
    assert_eq!(sim.stats().logins, logins);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Loaded JWT from environment (expires: "),
        "{stderr}"
    );
    assert!(!stderr.contains(jwt.expose()));
}

#[tokio::test]
async fn expired_token_without_credentials_exits_non_zero_naming_the_variables() {
    let sim = start_sim(|c| c.token_lifetime = Duration::from_secs(1)).await;
    let jwt = fresh_token(&sim).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let out = run_token(&sim, &[("JWT_TOKEN", jwt.expose())]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PROJECT_X_USERNAME") && stderr.contains("PROJECT_X_API_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains(jwt.expose()));
}

#[tokio::test]
async fn bad_configuration_lists_every_problem() {
    let sim = start_sim(|_| {}).await;
    let out = run_token(
        &sim,
        &[
            ("PROJECT_X_USERNAME", USER),
            ("PORT", "nope"),
            ("LOG_FORMAT", "xml"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in ["PROJECT_X_API_KEY", "PORT", "LOG_FORMAT"] {
        assert!(stderr.contains(name), "{name} missing: {stderr}");
    }
}
