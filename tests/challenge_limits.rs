//! Anonymous requests cannot grow the database (SPEC §19): pending passkey sign-ins
//! (`/login/passkey/begin`, which anyone may call) and second steps are kept at most 20
//! per client address (IPv6: per /64), the oldest dropped first, so that the newest,
//! the one a person is in the middle of, still works. Through the real server; the
//! total bound is a unit test in `src/db/challenges.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::factors::{enrol, password_step, second_step};
use common::webdriver::Driver;
use common::*;
use doorman::config::Cidr;
use doorman::model::Role;

/// The per-address bound (`domain::signin::second_step::MAX_PENDING_PER_HOLDER`).
const PER_ADDRESS: i64 = 20;

async fn server() -> TestServer {
    start_with(|c| {
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
    })
    .await
}

/// The value of `Set-Cookie: name=…` in an answer.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (k, rest) = v.split_once('=')?;
            (k == name).then(|| rest.split(';').next().unwrap_or("").to_string())
        })
}

/// POST /login/passkey/begin from `ip` (through the trusted loopback proxy); returns
/// the ceremony's token (its cookie).
async fn begin(s: &TestServer, ip: &str) -> String {
    let resp = client()
        .post(s.url("/login/passkey/begin"))
        .header("x-forwarded-for", ip)
        .header("cookie", "doorman_csrf=pre-csrf-token")
        .form(&[("csrf", "pre-csrf-token"), ("rd", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "begin from {ip}");
    set_cookie(&resp, "doorman_challenge").expect("the ceremony's cookie")
}

/// What the sign-in says to an answer for the ceremony `token` (a credential no
/// authenticator made): the ceremony is still there ("could not sign you in") or gone
/// ("took too long").
async fn ceremony_alive(s: &TestServer, token: &str) -> bool {
    let page = read(
        client()
            .post(s.url("/login/passkey"))
            .header(
                "cookie",
                format!("doorman_csrf=pre-csrf-token; doorman_challenge={token}"),
            )
            .form(&[("csrf", "pre-csrf-token"), ("rd", ""), ("credential", "{}")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 401, "{}", page.body);
    match (
        page.body.contains("could not sign you in"),
        page.body.contains("took too long"),
    ) {
        (true, false) => true,
        (false, true) => false,
        _ => panic!("unexpected answer: {}", page.body),
    }
}

fn pending(s: &TestServer, purpose: &str) -> i64 {
    s.sql_i64(&format!(
        "SELECT count(*) FROM login_challenges WHERE purpose = '{purpose}'"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_sign_ins_pending_per_address_are_bounded_and_the_newest_works() {
    let s = server().await;
    let elsewhere = begin(&s, "198.51.100.7").await;

    let mut from_one: Vec<String> = Vec::new();
    for _ in 0..60 {
        from_one.push(begin(&s, "203.0.113.9").await);
    }
    assert_eq!(
        pending(&s, "passkey_login"),
        PER_ADDRESS + 1,
        "60 begins from one address keep 20 rows (and the other address's one)"
    );
    assert!(
        ceremony_alive(&s, from_one.last().unwrap()).await,
        "the newest is kept"
    );
    assert!(
        !ceremony_alive(&s, &from_one[0]).await,
        "the oldest was dropped"
    );
    assert!(
        ceremony_alive(&s, &from_one[from_one.len() - PER_ADDRESS as usize]).await,
        "the 20 newest are kept"
    );
    assert!(
        !ceremony_alive(&s, &from_one[from_one.len() - PER_ADDRESS as usize - 1]).await,
        "the 21st newest is not"
    );

    // Every address of one IPv6 /64 shares one budget.
    let mut from_64: Vec<String> = Vec::new();
    for i in 0..40 {
        from_64.push(begin(&s, &format!("2001:db8:1:2::{:x}", i + 1)).await);
    }
    assert_eq!(pending(&s, "passkey_login"), 2 * PER_ADDRESS + 1);
    assert!(ceremony_alive(&s, from_64.last().unwrap()).await);
    assert!(!ceremony_alive(&s, &from_64[0]).await);
    // Another /64 has its own.
    let next_64 = begin(&s, "2001:db8:1:3::1").await;
    assert!(ceremony_alive(&s, &next_64).await);
    assert!(
        ceremony_alive(&s, &elsewhere).await,
        "another address's ceremony is untouched by the flood"
    );
    assert_eq!(pending(&s, "passkey_login"), 2 * PER_ADDRESS + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_steps_pending_per_address_are_bounded_and_the_newest_works() {
    let s = server().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ann = s.token("ann@acme.test").await;
    let (_, _, recovery) = enrol(&s, &ann).await;

    let mut challenges = Vec::new();
    for _ in 0..30 {
        let (status, body) = password_step(&s, "ann@acme.test").await;
        assert_eq!(status, 200, "{body}");
        challenges.push(body["challenge"].as_str().unwrap().to_string());
    }
    assert_eq!(pending(&s, "second_factor"), PER_ADDRESS);

    // The oldest was dropped: its code is refused as an expired challenge would be.
    let (status, body) = second_step(&s, &challenges[0], &recovery[0]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_code"))
    );
    // The newest still signs in.
    let (status, body) = second_step(&s, challenges.last().unwrap(), &recovery[1]).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["token"].as_str().is_some());
}

/// A real passkey sign-in in a real browser, started after a flood of begins from the
/// same address, completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_sign_in_started_after_a_flood_completes() {
    let s = start_with_port(|c, port| {
        c.server.public_url = format!("http://localhost:{port}");
    })
    .await;
    let base = format!("http://localhost:{}", s.addr.port());
    s.user("Acme", "ann@acme.test", Role::User).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;
    b.add_virtual_authenticator().await;
    b.goto(&format!("{base}/login")).await;
    b.type_into("input[name=email]", "ann@acme.test").await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_url("/settings/security/sessions").await;
    b.goto(&format!("{base}/settings/security/second-factors"))
        .await;
    b.type_into("form.add-passkey input[name=name]", "Laptop")
        .await;
    b.click("form.add-passkey button").await;
    b.wait_for_text("Create passkey").await;
    b.click("button[data-ceremony=create]").await;
    b.wait_for_text("Your passkey is added.").await;
    b.click("header.top form button").await;
    b.wait_for_url("/login?out=1").await;

    // The browser and the flood share the loopback address.
    for _ in 0..50 {
        let resp = client()
            .post(s.url("/login/passkey/begin"))
            .header("cookie", "doorman_csrf=pre-csrf-token")
            .form(&[("csrf", "pre-csrf-token"), ("rd", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(pending(&s, "passkey_login"), PER_ADDRESS);

    b.goto(&format!("{base}/login")).await;
    b.click("section.passkey-login button[data-ceremony=get]")
        .await;
    b.wait_for_url("/settings/security/sessions").await;
    assert!(b.source().await.contains("Signed in with Passkey"));
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM sessions WHERE auth_methods = 'passkey' AND ended_at IS NULL"
        ),
        1
    );
}
