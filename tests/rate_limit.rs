#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Failed sign-in limits per email and per IP (SPEC §7, §8 `security.login_rate_limit`).
mod common;

use common::*;
use doorman::config::Cidr;
use doorman::model::Role;
use serde_json::{Value, json};

/// A server that limits to 3 failures and believes `X-Forwarded-For` from loopback, so
/// tests can sign in "from" several addresses.
async fn limited() -> TestServer {
    let s = start_with(|c| {
        c.security.login_rate_limit.failures = 3;
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    s
}

async fn attempt(s: &TestServer, email: &str, password: &str, from: &str) -> (u16, Value) {
    let resp = client()
        .post(s.url("/api/v1/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

fn assert_limited(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 429, "{what}: {body}");
    assert_eq!(body["error"], "rate_limited", "{what}: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("Try again"),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourth_failure_for_an_email_is_refused_even_with_the_right_password() {
    let s = limited().await;
    // Three failures for one email, each from another address.
    for (i, from) in ["1.1.1.1", "2.2.2.2", "3.3.3.3"].into_iter().enumerate() {
        let (status, body) = attempt(&s, "ann@acme.test", "wrong password", from).await;
        assert_eq!(status, 401, "failure {}: {body}", i + 1);
    }
    // Any case of the email, from a fourth address, with the right password.
    let (status, body) = attempt(&s, "ANN@acme.test", PASSWORD, "4.4.4.4").await;
    assert_limited(status, &body, "4th attempt for the email");
    let (status, body) = attempt(&s, "ann@acme.test", PASSWORD, "4.4.4.4").await;
    assert_limited(status, &body, "5th attempt for the email");
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 0);

    // Another email from that fourth address is not affected.
    let (status, body) = attempt(&s, "bob@acme.test", PASSWORD, "4.4.4.4").await;
    assert_eq!(status, 201, "{body}");
    // The refusals are kept in the history: one record per (email, address) a minute
    // (SPEC §18), however many were refused.
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM login_records WHERE reason = 'rate_limited'"),
        1
    );

    // The sign-in page gives the same answer.
    let b = browser();
    let page = b
        .get(s.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let resp = b
        .post(s.url("/login"))
        .header("x-forwarded-for", "5.5.5.5")
        .form(&[
            ("email", "ann@acme.test"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
            ("rd", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.text().await.unwrap().contains("Too many failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_is_limited_across_emails() {
    let s = limited().await;
    for email in ["x1@acme.test", "x2@acme.test", "ann@acme.test"] {
        let (status, body) = attempt(&s, email, "wrong password", "9.9.9.9").await;
        assert_eq!(status, 401, "{email}: {body}");
    }
    let (status, body) = attempt(&s, "bob@acme.test", PASSWORD, "9.9.9.9").await;
    assert_limited(status, &body, "another email from the same address");
    // The same user from elsewhere is fine: bob had no failures.
    let (status, body) = attempt(&s, "bob@acme.test", PASSWORD, "8.8.8.8").await;
    assert_eq!(status, 201, "{body}");

    // Without a trusted proxy every client is the TCP peer: one address for all.
    let plain = start_with(|c| c.security.login_rate_limit.failures = 3).await;
    plain.user("Acme", "ann@acme.test", Role::User).await;
    for email in ["x1@acme.test", "x2@acme.test", "x3@acme.test"] {
        let (status, _) = attempt(&plain, email, "wrong password", "1.1.1.1").await;
        assert_eq!(status, 401);
    }
    let (status, body) = attempt(&plain, "ann@acme.test", PASSWORD, "2.2.2.2").await;
    assert_limited(status, &body, "X-Forwarded-For from an untrusted peer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successes_do_not_count() {
    let s = limited().await;
    let from = "7.7.7.7";
    for _ in 0..2 {
        assert_eq!(
            attempt(&s, "ann@acme.test", "wrong password", from).await.0,
            401
        );
    }
    for _ in 0..5 {
        let (status, body) = attempt(&s, "ann@acme.test", PASSWORD, from).await;
        assert_eq!(status, 201, "{body}");
    }
    // Still two failures on record: the third is answered normally, the fourth is not.
    assert_eq!(
        attempt(&s, "ann@acme.test", "wrong password", from).await.0,
        401
    );
    let (status, body) = attempt(&s, "ann@acme.test", PASSWORD, from).await;
    assert_limited(status, &body, "after three failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_gets_at_most_the_limit_through() {
    let s = limited().await;
    let url = s.url("/api/v1/login");
    let attempts = (0..20).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            client()
                .post(url)
                .header("x-forwarded-for", "6.6.6.6")
                .json(&json!({"email": "ann@acme.test", "password": "wrong password"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for a in attempts.collect::<Vec<_>>() {
        statuses.push(a.await.unwrap());
    }
    let through = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        (1..=3).contains(&through),
        "{through} attempts got through: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM login_records WHERE reason = 'wrong_password'"),
        through as i64
    );
    let (status, body) = attempt(&s, "ann@acme.test", PASSWORD, "6.6.6.6").await;
    assert_limited(status, &body, "after the burst");
}
