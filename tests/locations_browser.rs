//! The location pages in a real headless Chromium: flags beside the places, trusted
//! network names, a moved session, the DB-IP attribution and build date, the alert
//! preferences, and the "Was this you?" pages. Screenshots go to target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::smtp::{self, SmtpServer};
use common::webdriver::{Browser, Driver};
use common::*;
use doorman::config::{Cidr, Network};
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
async fn location_pages_in_a_real_browser() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let server = start_with(move |c| {
        c.mail.smtp_url = url;
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        c.sessions.touch_interval = Duration::from_secs(1);
        c.networks = vec![Network {
            name: "Office".into(),
            cidrs: vec![Cidr("81.2.69.0/24".parse().unwrap())],
            alerts: false,
        }];
    })
    .await;
    server.user("Acme", "ada@acme.test", Role::Admin).await;
    server.user("Acme", "bob@acme.test", Role::User).await;
    // Ada from the office, then a phone in Japan, a laptop in France; Bob's session from
    // London is later used from Japan.
    server
        .api_login_from("ada@acme.test", CHROME_MAC, Some("81.2.69.142"), None)
        .await;
    server
        .api_login_from("ada@acme.test", SAFARI_IPHONE, Some("126.0.0.1"), None)
        .await;
    server
        .api_login_from("ada@acme.test", FIREFOX_WIN, Some("86.210.0.1"), None)
        .await;
    let bob = server
        .api_login_from("bob@acme.test", CHROME_MAC, Some("2a00:23c0::1"), None)
        .await;
    let bob_token = bob["token"].as_str().unwrap().to_string();
    // Time is the subject: a session's use is recorded at most once per touch interval
    // (1 s here), so the use from Japan must come after one has passed.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resp = client()
        .get(server.url("/api/v1/me"))
        .bearer_auth(&bob_token)
        .header("x-forwarded-for", "126.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let moved =
        || server.sql_i64("SELECT count(*) FROM sessions WHERE moved_country_code IS NOT NULL");
    eventually(Duration::from_secs(20), || async { moved() == 1 }).await;
    assert_eq!(moved(), 1);

    let driver = Driver::start().await;
    let b = driver.browser().await;
    sign_in(&b, &server, "ada@acme.test").await;
    assert!(b.count("img.flag").await >= 3, "flags beside the places");
    let page = b.source().await;
    assert!(page.contains("Office · London, United Kingdom"), "{page}");
    assert!(page.contains("IP geolocation by DB-IP"));
    b.screenshot(&shot("locations-my-sessions.png")).await;

    b.goto(&server.url("/settings/security/sessions/users"))
        .await;
    assert!(b.text("main").await.contains("Now seen from"));
    assert!(
        b.text("footer.geoip-status")
            .await
            .contains("Location data: DB-IP Lite, built")
    );
    b.screenshot(&shot("locations-users-sessions.png")).await;

    b.goto(&server.url("/settings/notifications")).await;
    assert_eq!(b.count("input[type=checkbox]").await, 4);
    b.screenshot(&shot("alert-preferences.png")).await;
    b.click("form.lock button").await;
    b.wait_for_url("saved=locked").await;
    assert!(b.text("main").await.contains("locked on"));
    b.screenshot(&shot("alert-preferences-locked.png")).await;

    // Bob's sign-in alert (a new device, away from the office) and its two links.
    server
        .api_login_from("bob@acme.test", FIREFOX_WIN, Some("2a00:23c0::1"), None)
        .await;
    // Ada's three new devices (the phone, the laptop, this browser), Bob's move, and
    // Bob's new device.
    let mails = smtp.wait_for(5, Duration::from_secs(10)).await;
    let alert = mails
        .iter()
        .find(|m| {
            smtp::header(m, "subject")
                .unwrap()
                .starts_with("New sign-in")
                && smtp::header(m, "to").unwrap().contains("bob@")
        })
        .expect("Bob's sign-in alert");
    let text = smtp::text_part(alert);
    let link = |path: &str| {
        let start = text.find(&format!("{path}?t=")).unwrap();
        let token: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        server.url(&token)
    };
    let other = driver.browser().await;
    other.goto(&link("/alerts/confirm")).await;
    assert!(other.text("h1").await.contains("Was this you?"));
    other.screenshot(&shot("alert-confirm.png")).await;
    other.click("button[type=submit]").await;
    assert!(other.text("h1").await.contains("Thank you"));
    assert!(other.text("main").await.contains("Marked as you"));
    other.goto(&link("/alerts/secure")).await;
    other.screenshot(&shot("alert-secure.png")).await;
    other.click("button[type=submit]").await;
    let heading = other.text("h1").await;
    assert!(heading.contains("Account secured"), "{heading}");
    other.screenshot(&shot("alert-secured.png")).await;
    assert!(!alive(&server, &bob_token).await);

    b.quit().await;
    other.quit().await;
    for name in [
        "locations-my-sessions.png",
        "locations-users-sessions.png",
        "alert-preferences.png",
        "alert-confirm.png",
        "alert-secured.png",
    ] {
        let len = std::fs::metadata(shot(name)).unwrap().len();
        assert!(len > 5_000, "{name} is a real screenshot ({len} bytes)");
    }
}
