//! Second factors in the browser (SPEC §12), through the pages as a browser posts them:
//! the second step at /login/verify, enrolment forced by policy, the Second factors
//! page, and "Confirm it's you" before each guarded action, carrying on afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::factors::{code, enrol, key_bytes, settle, stale};
use common::*;
use doorman::model::Role;

const FACTORS: &str = "/settings/security/second-factors";
const SESSIONS: &str = "/settings/security/sessions";

/// GET a page with the browser; its body.
async fn page(b: &reqwest::Client, s: &TestServer, path: &str) -> Page {
    read(b.get(s.url(path)).send().await.unwrap()).await
}

/// The value of `data-secret="…"` (the key of a new authenticator) in a page.
fn shown_key(html: &str) -> Vec<u8> {
    let marker = "data-secret=\"";
    let start = html.find(marker).expect("a key on the page") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    key_bytes(&html[start..end])
}

#[tokio::test]
async fn the_second_step_is_bound_to_the_browser_and_counts_wrong_codes() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    let (_, key, codes) = enrol(&s, &token).await;

    let b = browser();
    let resp = browser_login(&s, &b, "ann@acme.test").await;
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        "/login/verify",
        "the password leads to the second step"
    );
    // Another browser has no challenge: it is sent back to sign in.
    let other = page(&browser(), &s, "/login/verify").await;
    assert_eq!(other.status, 303);
    assert!(other.location.starts_with("/login?expired=1"));
    // The sessions page is still closed to this browser.
    assert_eq!(page(&b, &s, SESSIONS).await.status, 303);

    let verify = page(&b, &s, "/login/verify").await;
    assert_eq!(verify.status, 200);
    assert!(verify.body.contains("Two-step verification"));
    let csrf = form_value(&verify.body, "csrf").unwrap();
    let wrong = post_form(
        &b,
        &s,
        "/login/verify",
        &[("csrf", &csrf), ("code", "000000")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("That code is not right"));
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM login_records WHERE reason = 'wrong_code'"),
        1
    );
    settle().await;
    let right = post_form(
        &b,
        &s,
        "/login/verify",
        &[("csrf", &csrf), ("code", &code(&key, 0))],
    )
    .await;
    assert_eq!(right.status, 303, "{}", right.body);
    assert_eq!(right.location, SESSIONS);
    let sessions = page(&b, &s, SESSIONS).await;
    assert_eq!(sessions.status, 200);
    assert!(sessions.body.contains("Password + authenticator app"));

    // With a recovery code, the person is asked to look at their factors.
    let b2 = browser();
    browser_login(&s, &b2, "ann@acme.test").await;
    let verify = page(&b2, &s, "/login/verify").await;
    let csrf = form_value(&verify.body, "csrf").unwrap();
    let done = post_form(
        &b2,
        &s,
        "/login/verify",
        &[("csrf", &csrf), ("code", &codes[0])],
    )
    .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location, format!("{FACTORS}?review=1"));
    let review = page(&b2, &s, &done.location).await;
    assert!(review.body.contains("You signed in with a recovery code"));
}

#[tokio::test]
async fn policy_sends_the_browser_to_enrol_right_after_the_password() {
    let s = start_with(|c| c.security.require_second_factor = true).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    let resp = browser_login(&s, &b, "ann@acme.test").await;
    assert_eq!(resp.headers()["location"].to_str().unwrap(), "/login/enrol");
    assert_eq!(
        page(&b, &s, SESSIONS).await.status,
        303,
        "nothing else until done"
    );
    let enrol_page = page(&b, &s, "/login/enrol").await;
    assert_eq!(enrol_page.status, 200);
    assert!(
        enrol_page.body.contains("<svg"),
        "the QR code is drawn as SVG"
    );
    let key = shown_key(&enrol_page.body);
    // A reload shows the same key.
    assert_eq!(shown_key(&page(&b, &s, "/login/enrol").await.body), key);
    let csrf = form_value(&enrol_page.body, "csrf").unwrap();
    settle().await;
    let wrong = post_form(
        &b,
        &s,
        "/login/enrol",
        &[("csrf", &csrf), ("code", "000000")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let done = post_form(
        &b,
        &s,
        "/login/enrol",
        &[("csrf", &csrf), ("code", &code(&key, 0))],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your recovery codes"));
    assert_eq!(done.body.matches("<li><code>").count(), 10);
    let sessions = page(&b, &s, SESSIONS).await;
    assert_eq!(sessions.status, 200);
    assert!(sessions.body.contains("Password + authenticator app"));
}

#[tokio::test]
async fn the_second_factors_page_adds_and_removes_an_authenticator_with_step_up() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    let sessions = page(&b, &s, SESSIONS).await;
    assert!(sessions.body.contains(FACTORS), "linked from the tabs");
    let p = page(&b, &s, FACTORS).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Two-step verification is"));
    assert!(p.body.contains("off"));
    let csrf = form_value(&p.body, "csrf").unwrap();

    let setup = post_form(
        &b,
        &s,
        &format!("{FACTORS}/totp"),
        &[("csrf", &csrf), ("name", "Phone")],
    )
    .await;
    assert_eq!(setup.status, 200);
    assert!(setup.body.contains("<svg"));
    let key = shown_key(&setup.body);
    let id = form_value(&setup.body, "id").unwrap();
    settle().await;
    let activated = post_form(
        &b,
        &s,
        &format!("{FACTORS}/activate"),
        &[("csrf", &csrf), ("id", &id), ("code", &code(&key, 0))],
    )
    .await;
    assert_eq!(activated.status, 200, "{}", activated.body);
    assert!(activated.body.contains("Your recovery codes"));
    let p = page(&b, &s, FACTORS).await;
    assert!(p.body.contains("value=\"Phone\"") && p.body.contains("10 of 10 recovery codes left"));

    // Removing after the window asks "Confirm it's you", then goes ahead.
    stale(&s);
    let remove = format!("{FACTORS}/remove");
    let asked = post_form(
        &b,
        &s,
        &remove,
        &[("csrf", &csrf), ("id", &id), ("confirm", "yes")],
    )
    .await;
    assert_eq!(asked.status, 200);
    assert!(asked.body.contains("Confirm it&#39;s you") || asked.body.contains("Confirm it's you"));
    assert_eq!(form_value(&asked.body, "id").as_deref(), Some(id.as_str()));
    let wrong = post_form(
        &b,
        &s,
        &remove,
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("confirm", "yes"),
            ("step_up_password", "not it at all"),
        ],
    )
    .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("not right"));
    let done = post_form(
        &b,
        &s,
        &remove,
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("confirm", "yes"),
            ("step_up_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location, format!("{FACTORS}?done=removed"));
    let p = page(&b, &s, &done.location).await;
    assert!(p.body.contains("The factor is removed."));
    assert!(!p.body.contains("value=\"Phone\""));
}

#[tokio::test]
async fn ending_other_and_listed_sessions_asks_then_carries_on() {
    let s = start().await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let elsewhere = s.token("ada@acme.test").await;
    let bob = s.token("bob@acme.test").await;
    let b = browser();
    browser_login(&s, &b, "ada@acme.test").await;
    let csrf = form_value(&page(&b, &s, SESSIONS).await.body, "csrf").unwrap();
    stale(&s);

    let end_others = format!("{SESSIONS}/end-others");
    let asked = post_form(&b, &s, &end_others, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(asked.status, 200);
    assert!(asked.body.contains("end all your other sessions"));
    assert!(alive(&s, &elsewhere).await, "nothing happened yet");
    let done = post_form(
        &b,
        &s,
        &end_others,
        &[
            ("csrf", &csrf),
            ("confirm", "yes"),
            ("step_up_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location, format!("{SESSIONS}?done=1"));
    assert!(!alive(&s, &elsewhere).await);

    // Confirmed just now: the admin's "end all listed sessions" needs nothing more…
    let listed = format!("{SESSIONS}/users/end-listed");
    let ended = post_form(
        &b,
        &s,
        &listed,
        &[("csrf", &csrf), ("confirm", "yes"), ("q", "nobody")],
    )
    .await;
    assert_eq!(ended.status, 303);
    // …until the window has passed.
    stale(&s);
    let asked = post_form(
        &b,
        &s,
        &listed,
        &[("csrf", &csrf), ("confirm", "yes"), ("q", "bob")],
    )
    .await;
    assert_eq!(asked.status, 200);
    assert!(asked.body.contains("end all listed sessions"));
    assert_eq!(form_value(&asked.body, "q").as_deref(), Some("bob"));
    assert!(alive(&s, &bob).await);
    let done = post_form(
        &b,
        &s,
        &listed,
        &[
            ("csrf", &csrf),
            ("confirm", "yes"),
            ("q", "bob"),
            ("step_up_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!alive(&s, &bob).await);
}
