//! A real relying party signs in with Doorman's OpenID Connect provider (SPEC §20):
//! Debian's Apache with `mod_auth_openidc` protects a page, and a real headless Chromium
//! opens it, is sent to Doorman, signs in (with the second step when the application
//! requires one) and lands on the page with the right `REMOTE_USER` and claims.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::apache::{Apache, OidcClient as ApacheClient};
use common::factors::{code, enrol, settle};
use common::webdriver::Driver;
use common::*;
use doorman::config::{Application, OidcClient};
use doorman::model::Role;

/// Doorman on `http://localhost:<port>` (the browser's cookies for it stay apart from
/// Apache's on 127.0.0.1) with Apache registered as the client of application "Intranet".
async fn setup(require_second_factor: bool) -> (TestServer, Apache, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let (secret, hash) = oidc_secret();
    let apache = Apache::start(&ApacheClient {
        issuer: &issuer,
        client_id: "intranet",
        client_secret: &secret,
        id_token_alg: "ES256",
    })
    .await;
    let oidc = OidcClient {
        client_id: "intranet".into(),
        client_secret_hash: hash,
        redirect_uris: vec![apache.redirect_uri()],
        backchannel_logout_uri: apache.backchannel_logout_uri(),
        ..Default::default()
    };
    let url = apache.url("/protected");
    let iss = issuer.clone();
    let server = start_on(listener, move |c| {
        c.server.public_url = iss;
        c.applications = vec![Application {
            name: "Intranet".into(),
            url,
            require_second_factor,
            oidc: Some(oidc),
            ..Default::default()
        }];
    })
    .await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    (server, apache, issuer)
}

/// The `name=value` lines of the protected page.
fn field(page: &str, name: &str) -> String {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} on the page: {page}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_mod_auth_openidc_signs_in_through_doorman() {
    let (_s, apache, issuer) = setup(false).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;

    b.goto(&apache.url("/protected/")).await;
    let at = b.wait_for_url("/login").await;
    assert!(
        at.starts_with(&issuer),
        "Apache sent the browser to Doorman's sign-in: {at}\n{}",
        apache.error_log()
    );
    b.type_into("input[name=email]", "ann@acme.test").await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_url(&apache.url("/protected/")).await;
    let page = b.text("body").await;
    assert_eq!(
        field(&page, "user"),
        "ann@acme.test",
        "{page}\n{}",
        apache.error_log()
    );
    assert_eq!(field(&page, "email"), "ann@acme.test");
    let sub = field(&page, "sub");
    assert!(!sub.is_empty() && !sub.contains('@'), "opaque sub: {sub}");
    assert!(!field(&page, "sid").is_empty(), "{page}");
    assert!(field(&page, "amr").contains("pwd"), "{page}");

    // Signed in: the next visit goes straight to the page.
    b.goto(&apache.url("/protected/")).await;
    assert_eq!(field(&b.text("body").await, "user"), "ann@acme.test");
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_that_requires_a_second_factor_gets_the_second_step() {
    let (s, apache, issuer) = setup(true).await;
    let api = login(&s, "ann@acme.test", CHROME_MAC).await;
    let (_, key, _) = enrol(&s, &api.token).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;

    b.goto(&apache.url("/protected/")).await;
    let at = b.wait_for_url("/login").await;
    assert!(at.starts_with(&issuer), "{at}\n{}", apache.error_log());
    b.type_into("input[name=email]", "ann@acme.test").await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_url("/login/verify").await;
    settle().await;
    b.type_into("input[name=code]", &code(&key, 1)).await;
    b.click("form[action='/login/verify'] button").await;
    b.wait_for_url(&apache.url("/protected/")).await;
    let page = b.text("body").await;
    assert_eq!(
        field(&page, "user"),
        "ann@acme.test",
        "{page}\n{}",
        apache.error_log()
    );
    let amr = field(&page, "amr");
    assert!(amr.contains("pwd") && amr.contains("otp"), "{page}");
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_a_second_factor_is_asked_for_one_by_such_an_application() {
    let (s, apache, issuer) = setup(true).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;

    // Signed in to Doorman with the password alone, before there was a second factor.
    b.goto(&format!("{issuer}/login")).await;
    b.type_into("input[name=email]", "ann@acme.test").await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_url("/settings/security/sessions").await;
    let api = login(&s, "ann@acme.test", CHROME_MAC).await;
    let (_, key, _) = enrol(&s, &api.token).await;

    // The application requires a second factor: Doorman asks that session for one.
    b.goto(&apache.url("/protected/")).await;
    let at = b.wait_for_url("/oidc/authorize").await;
    assert!(at.starts_with(&issuer), "{at}\n{}", apache.error_log());
    b.wait_for_text("asks for a second factor").await;
    settle().await;
    b.type_into("input[name=step_up_code]", &code(&key, 1))
        .await;
    b.click("form[action='/oidc/authorize/confirm'] button[type=submit]")
        .await;
    b.wait_for_url(&apache.url("/protected/")).await;
    let page = b.text("body").await;
    assert_eq!(
        field(&page, "user"),
        "ann@acme.test",
        "{page}\n{}",
        apache.error_log()
    );
    assert!(field(&page, "amr").contains("otp"), "{page}");
    b.quit().await;
}

/// Back-channel logout (SPEC §21): with `OIDCSessionType server-cache`, a Terminate in
/// Doorman reaches Apache's back-channel endpoint, and its next request goes back to
/// sign-in within five seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_in_doorman_signs_out_of_apache_through_its_back_channel() {
    let (s, apache, issuer) = setup(false).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;
    b.goto(&apache.url("/protected/")).await;
    b.wait_for_url("/login").await;
    b.type_into("input[name=email]", "ann@acme.test").await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_url(&apache.url("/protected/")).await;
    let page = b.text("body").await;
    let sid = field(&page, "sid");
    assert_eq!(field(&page, "user"), "ann@acme.test", "{page}");

    let api = login(&s, "ann@acme.test", CHROME_MAC).await;
    let (status, body) = s
        .delete(&format!("/api/v1/sessions/{sid}"), &api.token)
        .await;
    assert_eq!(status, 204, "{body}");
    let ended = std::time::Instant::now();
    let sent_back = eventually(std::time::Duration::from_secs(5), || async {
        b.goto(&apache.url("/protected/")).await;
        let at = b.current_url().await;
        at.starts_with(&issuer) && at.contains("/login")
    })
    .await;
    assert!(
        sent_back,
        "Apache still answers {:?} after the Terminate (logout: {:?})\n{}",
        b.current_url().await,
        s.sql_text("SELECT status || ' ' || coalesce(last_error, '') FROM oidc_logouts"),
        apache.error_log()
    );
    assert!(ended.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM oidc_logouts WHERE status = 'delivered'"),
        1
    );
    b.quit().await;
}
