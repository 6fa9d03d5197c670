#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::*;
use doorman::model::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_login_roundtrip() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let (status, body) = status_json(client().get(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let t = s.token("ANN@acme.test").await;
    let (status, me) = s.get("/api/v1/me", &t).await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["email"], "ann@acme.test");
    assert_eq!(me["session"]["current"], true);
}

/// The value of an unlabelled (or exactly labelled) series in `/metrics`.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_answers_sign_ins_and_their_cost() {
    // Gauges read afresh at every scrape, so the one after the sign-in counts it.
    let s = start_with(|c| c.metrics.gauge_cache = std::time::Duration::ZERO).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let scrape = || async {
        let resp = client().get(s.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        resp.text().await.unwrap()
    };
    let before = scrape().await;
    assert_eq!(series(&before, "doorman_sign_in_seconds_count"), 0.0);
    assert_eq!(series(&before, "doorman_password_check_seconds_count"), 0.0);

    let t = s.token("ann@acme.test").await;
    let (status, _) = s
        .login_raw("ann@acme.test", "wrong password", CHROME_MAC, None, None)
        .await;
    assert_eq!(status, 401);
    for _ in 0..3 {
        assert_eq!(s.get("/api/v1/me", &t).await.0, 200);
    }
    assert_eq!(s.get("/api/v1/me", "not-a-token").await.0, 401);
    // The forward-auth verdicts are answered ahead of the router, and counted by path.
    for _ in 0..2 {
        assert_eq!(s.get("/auth/verify", &t).await.0, 200);
    }
    assert_eq!(s.get("/api/authz/forward-auth", "not-a-token").await.0, 401);
    // So are the API's two busiest reads on GET, `/api/v1/me` above and this one (HEAD
    // goes through the router), counted by their paths.
    assert_eq!(s.get("/api/v1/sessions", &t).await.0, 200);
    let head = client().head(s.url("/api/v1/sessions")).bearer_auth(&t);
    assert_eq!(head.send().await.unwrap().status(), 200);
    let (status, body) = s.get("/api/v2/nothing", &t).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    let after = scrape().await;
    let verify_ok = r#"doorman_http_requests_total{route="/auth/verify",status="200"}"#;
    let fa_401 = r#"doorman_http_requests_total{route="/api/authz/forward-auth",status="401"}"#;
    let api_404 = r#"doorman_http_requests_total{route="/api",status="404"}"#;
    assert_eq!(series(&after, verify_ok), 2.0);
    assert_eq!(series(&after, fa_401), 1.0);
    assert_eq!(series(&after, api_404), 1.0);
    let me_ok = r#"doorman_http_requests_total{route="/api/v1/me",status="200"}"#;
    let me_401 = r#"doorman_http_requests_total{route="/api/v1/me",status="401"}"#;
    assert_eq!(series(&after, me_ok), 3.0);
    assert_eq!(series(&after, me_401), 1.0);
    let mine_ok = r#"doorman_http_requests_total{route="/api/v1/sessions",status="200"}"#;
    assert_eq!(series(&after, mine_ok), 2.0);
    assert_eq!(
        series(&after, r#"doorman_sign_ins_total{outcome="success"}"#),
        1.0
    );
    assert_eq!(
        series(&after, r#"doorman_sign_ins_total{outcome="failure"}"#),
        1.0
    );
    assert_eq!(series(&after, "doorman_active_sessions"), 1.0);
    // One successful sign-in timed whole; both attempts ran argon2 and were timed.
    assert_eq!(series(&after, "doorman_sign_in_seconds_count"), 1.0);
    assert_eq!(series(&after, "doorman_password_check_seconds_count"), 2.0);
    let whole = series(&after, "doorman_sign_in_seconds_sum");
    let hashes = series(&after, "doorman_password_check_seconds_sum");
    assert!(hashes > 0.0, "{hashes}");
    // The successful sign-in took at least its own hash (half of the two, roughly: the
    // hashes cost the same, so the sign-in is longer than the shorter of them).
    assert!(whole > hashes / 4.0, "sign-in {whole} s, hashes {hashes} s");
}
