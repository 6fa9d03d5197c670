//! Drives real headless Chromium through team management: an admin invites a person
//! from the Users page, the person accepts in a second browser and is signed in, and
//! the admin sees them active. Screenshots of the Users page, the acceptance page, the
//! Profile page, the Accounts page and the forgotten-password page are saved under
//! target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;

use common::webdriver::{Browser, Driver};
use common::*;
use doorman::model::Role;

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join(name)
}

async fn sign_in(b: &Browser, server: &TestServer, email: &str) {
    b.goto(&server.url("/login")).await;
    b.type_into("input[name=email]", email).await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_url("/settings/security/sessions").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_invites_a_person_who_accepts_in_another_browser() {
    let server = start().await;
    server.user("Acme", "ada@acme.test", Role::Admin).await;
    server.user("Acme", "bob@acme.test", Role::User).await;
    server.api_login("bob@acme.test", SAFARI_IPHONE).await;

    let driver = Driver::start().await;
    let admin = driver.browser().await;
    let newcomer = driver.browser().await;
    sign_in(&admin, &server, "ada@acme.test").await;

    // The settings menu leads to the Users page.
    admin.click("nav.menu a[href='/settings/team/users']").await;
    admin.wait_for_url("/settings/team/users").await;
    assert!(admin.source().await.contains("bob@acme.test"));

    admin
        .type_into(
            "form[action$='/invite'] input[name=email]",
            "nora@acme.test",
        )
        .await;
    admin
        .type_into("form[action$='/invite'] input[name=name]", "Nora")
        .await;
    admin
        .click("form[action$='/invite'] button[type=submit]")
        .await;
    let link = admin.text(".link-box").await;
    assert!(link.contains("/invite?token="), "{link}");
    assert!(admin.text("table.users").await.contains("invited"));
    admin.screenshot(&shot("team-users-invited.png")).await;

    // The person opens the link in their own browser.
    let path = &link[link.find("/invite").unwrap()..];
    newcomer.goto(&server.url(path.trim())).await;
    assert!(newcomer.source().await.contains("nora@acme.test"));
    newcomer
        .type_into("input[name=password]", "password123")
        .await;
    newcomer.click("button[type=submit]").await;
    assert!(
        newcomer
            .text(".notice.error")
            .await
            .contains("too easy to guess")
    );
    newcomer.screenshot(&shot("invite-accept.png")).await;
    newcomer.type_into("input[name=name]", " Newcomer").await;
    newcomer
        .type_into("input[name=password]", "violet tractor umbrella")
        .await;
    newcomer.click("button[type=submit]").await;
    newcomer.wait_for_url("/settings/security/sessions").await;
    assert!(newcomer.text("header.top").await.contains("nora@acme.test"));

    // Their profile.
    newcomer.click("nav.menu a[href='/settings/profile']").await;
    newcomer.wait_for_url("/settings/profile").await;
    assert!(newcomer.source().await.contains("Change password"));
    newcomer.screenshot(&shot("profile.png")).await;

    // The admin sees them, active, with one session.
    admin.goto(&server.url("/settings/team/users?q=nora")).await;
    let row = admin.text("table.users tbody tr").await;
    assert!(
        row.contains("nora@acme.test") && row.contains("active"),
        "{row}"
    );
    assert!(row.contains("Nora Newcomer"), "{row}");
    admin.goto(&server.url("/settings/team/users")).await;
    admin
        .click("table.users tbody tr:nth-child(2) details summary")
        .await;
    admin.screenshot(&shot("team-users.png")).await;

    // The sign-in page links to the forgotten-password page.
    let stranger = driver.browser().await;
    stranger.goto(&server.url("/login")).await;
    stranger.click("a[href='/forgot']").await;
    stranger.wait_for_url("/forgot").await;
    stranger
        .type_into("input[name=email]", "nobody@acme.test")
        .await;
    stranger.click("button[type=submit]").await;
    assert!(
        stranger
            .text(".notice")
            .await
            .contains("If an account exists for that address, we have sent a link.")
    );
    stranger.screenshot(&shot("forgot.png")).await;

    admin.quit().await;
    newcomer.quit().await;
    stranger.quit().await;
    for name in [
        "team-users-invited.png",
        "invite-accept.png",
        "profile.png",
        "team-users.png",
        "forgot.png",
    ] {
        let len = std::fs::metadata(shot(name)).unwrap().len();
        assert!(len > 5_000, "{name} is a real screenshot ({len} bytes)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_renames_an_account() {
    let server = start().await;
    server.user("Acme", "owner@acme.test", Role::Owner).await;
    server.user("Beta", "bea@beta.test", Role::Admin).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;
    sign_in(&b, &server, "owner@acme.test").await;
    b.click("nav.menu a[href='/settings/team/accounts']").await;
    b.wait_for_url("/settings/team/accounts").await;
    b.type_into("form[action$='/create'] input[name=name]", "Gamma")
        .await;
    b.click("form[action$='/create'] button").await;
    assert!(
        b.text(".notice.ok")
            .await
            .contains("The account Gamma was created.")
    );
    b.screenshot(&shot("team-accounts.png")).await;
    b.quit().await;
    assert!(std::fs::metadata(shot("team-accounts.png")).unwrap().len() > 5_000);
}
