#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The sign-in form (SPEC §3, §6, §8): CSRF, cookies, the return address, logout, and
//! the headers every page carries.
mod common;

use common::*;
use doorman::config::Application;
use doorman::model::Role;

const SESSIONS: &str = "/settings/security/sessions";

/// Every `Set-Cookie` of `name` in a response.
fn set_cookies(resp: &reqwest::Response, name: &str) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .filter(|c| c.starts_with(&format!("{name}=")))
        .collect()
}

/// The one `Set-Cookie` of `name`; its value and its attributes (lower-cased).
fn one_cookie(resp: &reqwest::Response, name: &str) -> (String, Vec<String>) {
    let all = set_cookies(resp, name);
    assert_eq!(all.len(), 1, "Set-Cookie {name}: {all:?}");
    let mut parts = all[0].split(';').map(|p| p.trim().to_string());
    let value = parts.next().unwrap()[name.len() + 1..].to_string();
    (value, parts.map(|p| p.to_ascii_lowercase()).collect())
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location ({})", resp.status()))
        .to_str()
        .unwrap()
        .to_string()
}

fn assert_page_headers(resp: &reqwest::Response, what: &str) {
    let h = resp.headers();
    let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_string());
    let csp = get("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{what}: {csp}"
    );
    assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{what}");
    assert_eq!(
        get("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        get("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
}

async fn login_form_csrf(server: &TestServer, b: &reqwest::Client, path: &str) -> String {
    let resp = b.get(server.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    let page = resp.text().await.unwrap();
    form_value(&page, "csrf").expect("csrf field")
}

async fn post_login(
    server: &TestServer,
    b: &reqwest::Client,
    csrf: &str,
    password: &str,
    rd: &str,
) -> reqwest::Response {
    b.post(server.url("/login"))
        .form(&[
            ("email", "ann@acme.test"),
            ("password", password),
            ("csrf", csrf),
            ("rd", rd),
        ])
        .send()
        .await
        .unwrap()
}

fn sessions_count(s: &TestServer) -> i64 {
    s.sql_i64("SELECT count(*) FROM sessions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_sets_csrf_cookie_and_field() {
    let s = start().await;
    let resp = client().get(s.url("/login")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_page_headers(&resp, "GET /login");
    assert!(
        resp.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let (cookie, attrs) = one_cookie(&resp, "doorman_csrf");
    assert!(cookie.len() >= 20, "{cookie}");
    assert!(attrs.contains(&"httponly".to_string()), "{attrs:?}");
    assert!(attrs.contains(&"samesite=lax".to_string()), "{attrs:?}");
    let page = resp.text().await.unwrap();
    assert_eq!(form_value(&page, "csrf").as_deref(), Some(cookie.as_str()));
    assert!(page.contains("type=\"password\""));

    // Each new visitor gets their own value.
    let other = client().get(s.url("/login")).send().await.unwrap();
    assert_ne!(one_cookie(&other, "doorman_csrf").0, cookie);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_without_the_right_csrf_is_refused() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    let csrf = login_form_csrf(&s, &b, "/login").await;

    // No csrf field at all.
    let resp = b
        .post(s.url("/login"))
        .form(&[("email", "ann@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_page_headers(&resp, "403 page");
    assert!(set_cookies(&resp, "doorman_session").is_empty());
    assert!(resp.text().await.unwrap().contains("expired"));

    // A wrong one, and the cookie's value with one character changed.
    let mut flipped = csrf.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    for bad in ["x".repeat(csrf.len()), String::from_utf8(flipped).unwrap()] {
        let resp = post_login(&s, &b, &bad, PASSWORD, "").await;
        assert_eq!(resp.status(), 403);
        assert!(set_cookies(&resp, "doorman_session").is_empty());
    }

    // The right value in the field, but no cookie (another site's form).
    let resp = post_login(&s, &client(), &csrf, PASSWORD, "").await;
    assert_eq!(resp.status(), 403);
    assert!(set_cookies(&resp, "doorman_session").is_empty());

    assert_eq!(sessions_count(&s), 0, "no session from a refused form");
    assert_eq!(s.sql_i64("SELECT count(*) FROM login_records"), 0);

    // The same browser with the right value signs in.
    let resp = post_login(&s, &b, &csrf, PASSWORD, "").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(sessions_count(&s), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_session_and_device_cookies() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    let resp = browser_login(&s, &b, "ann@acme.test").await;
    assert_eq!(location(&resp), SESSIONS);
    assert_page_headers(&resp, "303 after sign-in");

    let (token, attrs) = one_cookie(&resp, "doorman_session");
    assert_eq!(token.len(), 43);
    for want in ["httponly", "samesite=lax", "path=/"] {
        assert!(attrs.contains(&want.to_string()), "{want}: {attrs:?}");
    }
    assert!(
        !attrs.contains(&"secure".to_string()),
        "no Secure on http: {attrs:?}"
    );
    let (device, attrs) = one_cookie(&resp, "doorman_device");
    assert_eq!(device.len(), 32);
    assert!(attrs.contains(&"max-age=34560000".to_string()), "{attrs:?}");
    assert!(attrs.contains(&"httponly".to_string()), "{attrs:?}");
    assert!(attrs.contains(&"path=/".to_string()), "{attrs:?}");
    // The pre-sign-in CSRF cookie is spent.
    let (_, attrs) = one_cookie(&resp, "doorman_csrf");
    assert!(attrs.contains(&"max-age=0".to_string()), "{attrs:?}");

    let page = b.get(s.url(SESSIONS)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_page_headers(&page, "sessions page");
    let html = page.text().await.unwrap();
    assert!(html.contains("Active sessions") && html.contains("Current"));
    assert!(html.contains("ann@acme.test"));

    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    let (app, dev): (String, String) = c
        .query_row("SELECT application, device_id FROM sessions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(app, "web");
    assert_eq!(dev, device);

    // A signed-in browser visiting /login goes straight to its sessions.
    let again = b.get(s.url("/login")).send().await.unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), SESSIONS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_public_url_makes_cookies_secure() {
    let s = start_with(|c| c.server.public_url = "https://doorman.example.com".into()).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    // Cookies are handled by hand: a cookie store would not send Secure cookies over http.
    let get = client().get(s.url("/login")).send().await.unwrap();
    let (csrf, attrs) = one_cookie(&get, "doorman_csrf");
    assert!(attrs.contains(&"secure".to_string()), "{attrs:?}");
    let resp = client()
        .post(s.url("/login"))
        .header("cookie", format!("doorman_csrf={csrf}"))
        .form(&[
            ("email", "ann@acme.test"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
            ("rd", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    for name in ["doorman_session", "doorman_device"] {
        let (_, attrs) = one_cookie(&resp, name);
        for want in ["secure", "httponly", "samesite=lax", "path=/"] {
            assert!(
                attrs.contains(&want.to_string()),
                "{name} {want}: {attrs:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_cookie_is_reused_at_the_next_sign_in() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;

    // Sign out, then in again with the same browser.
    let page = b
        .get(s.url(SESSIONS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let out = b
        .post(s.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let resp = browser_login(&s, &b, "ann@acme.test").await;
    let (device, _) = one_cookie(&resp, "doorman_device");

    assert_eq!(sessions_count(&s), 2);
    assert_eq!(
        s.sql_i64("SELECT count(DISTINCT device_id) FROM sessions"),
        1
    );
    assert_eq!(s.sql_i64("SELECT count(*) FROM devices"), 1);
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    let stored: String = c
        .query_row("SELECT device_id FROM devices", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, device);

    // Another browser is another device.
    browser_login(&s, &browser(), "ann@acme.test").await;
    assert_eq!(
        s.sql_i64("SELECT count(DISTINCT device_id) FROM sessions"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_address_of_an_application_is_followed() {
    let s = start_with(|c| {
        c.applications = vec![Application {
            name: "Grafana".into(),
            url: "https://grafana.example.com".into(),
            ..Default::default()
        }];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let rd = "https://grafana.example.com/d/abc?orgId=1";
    let b = browser();
    let page = b
        .get(s.url("/login?rd=https%3A%2F%2Fgrafana.example.com%2Fd%2Fabc%3ForgId%3D1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(form_value(&page, "rd").as_deref(), Some(rd));
    let csrf = form_value(&page, "csrf").unwrap();
    let resp = post_login(&s, &b, &csrf, PASSWORD, rd).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), rd);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE application = 'Grafana'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_address_off_site_is_not_followed() {
    let s = start_with(|c| {
        c.applications = vec![Application {
            name: "Grafana".into(),
            url: "https://grafana.example.com".into(),
            ..Default::default()
        }];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    for rd in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "https://grafana.example.com.evil.example/",
        "https://grafana.example.com@evil.example/",
        "http://grafana.example.com/",
        "javascript:alert(1)",
        " //evil.example",
        // Cannot be a Location header: must not leave the browser without one.
        "https://grafana.example.com/\r\nSet-Cookie: x=1",
        "/settings\r\nSet-Cookie: x=1",
    ] {
        let b = browser();
        let csrf = login_form_csrf(&s, &b, "/login").await;
        let resp = post_login(&s, &b, &csrf, PASSWORD, rd).await;
        assert_eq!(resp.status(), 303, "{rd}");
        assert_eq!(location(&resp), SESSIONS, "{rd}");
    }
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE application <> 'web'"),
        0
    );

    // A path on Doorman itself is fine.
    let b = browser();
    let csrf = login_form_csrf(&s, &b, "/login").await;
    let resp = post_login(
        &s,
        &b,
        &csrf,
        PASSWORD,
        "/settings/security/sessions?tab=mine",
    )
    .await;
    assert_eq!(location(&resp), "/settings/security/sessions?tab=mine");

    // Nor when an already signed-in browser opens the sign-in page.
    for rd in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example"] {
        let resp = b
            .get(s.url(&format!("/login?rd={rd}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{rd}");
        assert_eq!(location(&resp), SESSIONS, "{rd}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_the_page_says_so() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    let resp = browser_login(&s, &b, "ann@acme.test").await;
    let (token, _) = one_cookie(&resp, "doorman_session");
    let page = b
        .get(s.url(SESSIONS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").expect("csrf on the sessions page");

    // A wrong csrf changes nothing.
    let refused = b
        .post(s.url("/logout"))
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(b.get(s.url(SESSIONS)).send().await.unwrap().status(), 200);

    let out = b
        .post(s.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(location(&out).starts_with("/login"), "{}", location(&out));
    let (cleared, attrs) = one_cookie(&out, "doorman_session");
    assert!(cleared.is_empty() && attrs.contains(&"max-age=0".to_string()));
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL AND end_reason = 'logout'"
        ),
        1
    );

    // The browser dropped its cookie: plain sign-in page.
    let next = b.get(s.url(SESSIONS)).send().await.unwrap();
    assert_eq!(next.status(), 303);
    assert!(location(&next).starts_with("/login"));

    // A browser still holding the old cookie is told its session ended.
    let stale = client()
        .get(s.url(SESSIONS))
        .header("cookie", format!("doorman_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 303);
    let to = location(&stale);
    assert!(to.starts_with("/login?") && to.contains("ended="), "{to}");
    let notice = client().get(s.url(&to)).send().await.unwrap();
    assert_eq!(notice.status(), 200);
    assert!(
        notice
            .text()
            .await
            .unwrap()
            .contains("Your session has ended. Please sign in again."),
        "{to}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_shows_the_form_again_with_401() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    let csrf = login_form_csrf(&s, &b, "/login").await;
    for (email, password) in [
        ("ann@acme.test", "wrong password"),
        ("nobody@acme.test", PASSWORD),
    ] {
        let resp = b
            .post(s.url("/login"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf", csrf.as_str()),
                ("rd", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{email}");
        assert_page_headers(&resp, "401 page");
        assert!(set_cookies(&resp, "doorman_session").is_empty());
        let html = resp.text().await.unwrap();
        assert!(html.contains("Invalid email or password."), "{email}");
        // The form is shown again, ready for another try.
        assert!(form_value(&html, "csrf").is_some());
        assert!(!html.contains(password), "the password is not echoed");
    }
    assert_eq!(sessions_count(&s), 0);

    // What was typed is shown back escaped, never as markup.
    let evil = "\"><script>alert(1)</script>";
    let resp = b
        .post(s.url("/login"))
        .form(&[
            ("email", evil),
            ("password", "x"),
            ("csrf", csrf.as_str()),
            ("rd", evil),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
    let page = b
        .get(s.url("/login?rd=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>alert(1)"), "{page}");

    // The same form still works with the right password.
    let resp = post_login(&s, &b, &csrf, PASSWORD, "").await;
    assert_eq!(resp.status(), 303);
}
