#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Actions that confirm once and offer only what has something to act on (SPEC §22):
//! Terminate asks for the reason in its confirmation, the Users Sessions view has one
//! bulk action, "Reset second factors" only for a person who has some, "End all other
//! sessions" asks once (the browser's dialog or the server's page with the password,
//! never both), and an unknown address gets the styled 404 page.
mod common;

use common::factors::{enrol, stale};
use common::*;
use doorman::model::Role;

const PAGE: &str = "/settings/security/sessions";
const USERS: &str = "/settings/security/sessions/users";

async fn get(b: &reqwest::Client, s: &TestServer, path: &str) -> Page {
    read(b.get(s.url(path)).send().await.unwrap()).await
}

/// The opening tag of the form that posts to `action`.
fn form_tag<'a>(html: &'a str, action: &str) -> &'a str {
    let at = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form to {action}: {html}"));
    let start = html[..at].rfind("<form").unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_sessions_view_offers_one_action_per_thing() {
    let s = start().await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let bob = s.user("Acme", "bob@acme.test", Role::User).await;
    let cat = s.user("Acme", "cat@acme.test", Role::User).await;
    let bob_token = s.token("bob@acme.test").await;
    s.token("bob@acme.test").await;
    s.token("cat@acme.test").await;
    enrol(&s, &bob_token).await;
    let b = browser();
    browser_login(&s, &b, "ada@acme.test").await;

    let p = get(&b, &s, USERS).await;
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("name=\"reason\""), "a reason box per row");
    let terminate = form_tag(&p.body, &format!("{USERS}/terminate"));
    assert!(terminate.contains("data-confirm=\""), "{terminate}");
    assert!(terminate.contains("data-reason=\""), "{terminate}");

    // Filtered to one person: one bulk action, named after them.
    let p = get(&b, &s, &format!("{USERS}?user_id={}", bob.id.0)).await;
    assert_eq!(p.status, 200);
    assert_eq!(
        p.body
            .matches("action=\"/settings/security/sessions/users/end-")
            .count(),
        1
    );
    assert!(
        p.body.contains("End all sessions of bob@acme.test (2)"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("/end-user"), "{}", p.body);
    // Bob has an authenticator app: his factors can be reset; Cat has none.
    assert!(p.body.contains("Reset second factors"), "{}", p.body);
    let p = get(&b, &s, &format!("{USERS}?user_id={}", cat.id.0)).await;
    assert!(p.body.contains("End all sessions of cat@acme.test (1)"));
    assert!(!p.body.contains("Reset second factors"), "{}", p.body);

    // The old "end all of this user" address is gone.
    let csrf = form_value(&p.body, "csrf").unwrap();
    let p = post_form(
        &b,
        &s,
        &format!("{USERS}/end-user"),
        &[
            ("csrf", &csrf),
            ("confirm", "yes"),
            ("target", &cat.id.0.to_string()),
        ],
    )
    .await;
    assert_eq!(p.status, 404);
    assert!(alive(&s, &bob_token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_all_other_sessions_asks_once() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let other = s.token("ann@acme.test").await;
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    let action = format!("{PAGE}/end-others");

    // Just signed in: the browser's dialog is the one question.
    let p = get(&b, &s, PAGE).await;
    assert!(
        form_tag(&p.body, &action).contains("data-confirm="),
        "{}",
        p.body
    );
    let csrf = form_value(&p.body, "csrf").unwrap();

    // An hour later: no dialog; the server's page asks, with the password on it.
    stale(&s);
    let p = get(&b, &s, PAGE).await;
    assert!(
        !form_tag(&p.body, &action).contains("data-confirm="),
        "{}",
        p.body
    );
    let asked = post_form(&b, &s, &action, &[("csrf", &csrf)]).await;
    assert_eq!(asked.status, 200);
    assert!(
        asked.body.contains("End all 1 other sessions?"),
        "{}",
        asked.body
    );
    assert!(
        asked.body.contains("name=\"step_up_password\""),
        "{}",
        asked.body
    );
    assert!(alive(&s, &other).await, "ended unasked");
    let done = post_form(
        &b,
        &s,
        &action,
        &[
            ("csrf", &csrf),
            ("confirm", "yes"),
            ("step_up_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "a second question: {}", done.body);
    assert!(!alive(&s, &other).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_address_gets_the_styled_404_page() {
    let s = start().await;
    for path in [
        "/no-such-page",
        "/settings/nothing",
        "/settings/security/sessions/x/y",
    ] {
        let p = get(&browser(), &s, path).await;
        assert_eq!(p.status, 404, "{path}");
        assert!(
            p.body.contains("<h1>Page not found</h1>"),
            "{path}: {}",
            p.body
        );
        assert!(p.body.contains("/assets/style.css"), "{path}");
        assert!(p.body.contains("class=\"skip-link\""), "{path}");
    }
    // The API keeps its JSON answers.
    let resp = client().get(s.url("/api/v1/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(!resp.text().await.unwrap().contains("Page not found"));
}
