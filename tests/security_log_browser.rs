//! The Security log and the team log in a real headless Chromium, reached from the
//! settings menu, filtered with the form; screenshots under target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::webdriver::{Driver, shot};
use common::*;
use doorman::model::Role;

/// Full-page screenshots at a phone's width (390) and a laptop's (1,366), to look at.
async fn both_widths(b: &common::webdriver::Browser, name: &str) {
    b.screen_width(390).await;
    b.screenshot_page(&shot(&format!("{name}-390.png"))).await;
    b.screen_width(1366).await;
    b.screenshot_page(&shot(&format!("{name}-1366.png"))).await;
    b.screen_width(1280).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_log_tabs_in_a_browser() {
    let s = start().await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let bob = login(&s, "bob@acme.test", SAFARI_IPHONE).await;
    login(&s, "bob@acme.test", FIREFOX_WIN).await;
    s.login_raw("bob@acme.test", "not the password", CHROME_MAC, None, None)
        .await;
    let admin = s.token("ada@acme.test").await;
    s.delete(&format!("/api/v1/admin/sessions/{}", bob.id), &admin)
        .await;

    let driver = Driver::start().await;
    let b = driver.browser().await;
    b.goto(&s.url("/login")).await;
    b.type_into("input[name=email]", "ada@acme.test").await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_url("/settings/security/sessions").await;

    b.click("nav.menu a[href='/settings/security/log']").await;
    b.wait_for_url("/settings/security/log").await;
    let log = b.text("ol.log").await;
    assert!(log.contains("You signed in"), "{log}");
    assert!(
        !log.contains("session.created") && !log.contains("themself"),
        "{log}"
    );
    both_widths(&b, "security-log").await;

    b.click("nav.menu a[href='/settings/team/log']").await;
    b.wait_for_url("/settings/team/log").await;
    let table = b.text("ol.log").await;
    assert!(
        table.contains("A sign-in as bob@acme.test was refused: a wrong password."),
        "{table}"
    );
    assert!(
        table.contains("An administrator (ada@acme.test) ended a session of bob@acme.test"),
        "{table}"
    );
    assert!(!table.contains("· ·") && !table.contains("BY"), "{table}");
    both_widths(&b, "team-log").await;

    // Filter by type with the form.
    b.goto(&s.url("/settings/team/log?type=session.ended"))
        .await;
    let table = b.text("ol.log").await;
    assert!(
        table.contains("ended a session of") && !table.contains("was refused"),
        "{table}"
    );
    assert!(b.text(".notice").await.contains("matching the filters"));
    b.screenshot(&shot("team-log-filtered.png")).await;

    // The user picker: pick Bob by his email.
    b.goto(&s.url("/settings/team/log")).await;
    b.type_into("input[name=user]", "bob@acme.test").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_for_url("user=bob%40acme.test").await;
    let only = b.text("ol.log").await;
    assert!(
        only.contains("bob@acme.test") && !only.contains("ada@acme.test signed in"),
        "{only}"
    );
    b.screenshot(&shot("team-log-user.png")).await;
    b.quit().await;
}
