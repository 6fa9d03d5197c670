//! The Security log tab and the team log in a real headless Chromium, reached from the
//! tabs, filtered with the form; screenshots under target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;

use common::webdriver::Driver;
use common::*;
use doorman::model::Role;

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join(name)
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

    b.click("nav.tabs a[href='/settings/security/log']").await;
    b.wait_for_url("/settings/security/log").await;
    assert!(b.text("table.events").await.contains("Signed in"));
    b.screenshot(&shot("security-log.png")).await;

    b.click("nav.tabs a[href='/settings/team/log']").await;
    b.wait_for_url("/settings/team/log").await;
    let table = b.text("table.events").await;
    assert!(
        table.contains("bob@acme.test") && table.contains("Sign-in refused"),
        "{table}"
    );
    assert!(table.contains("terminated by admin"), "{table}");
    b.screenshot(&shot("team-log.png")).await;

    // Filter by type with the form.
    b.goto(&s.url("/settings/team/log?type=session.ended"))
        .await;
    let table = b.text("table.events").await;
    assert!(
        table.contains("Session ended") && !table.contains("Sign-in refused"),
        "{table}"
    );
    assert!(b.text(".notice").await.contains("matching the filters"));
    b.screenshot(&shot("team-log-filtered.png")).await;
    b.quit().await;
}
