//! Every kind of email, sent through the real SMTP sink and drawn in headless Chromium at
//! a phone's width (390 px): one responsive template (viewport meta, one column, large
//! buttons), a text part always, an alert's one primary action and one secondary, times
//! in the reader's time zone too. The HTML parts and their screenshots are written under
//! target/screenshots/mail/ to be looked at.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::smtp::{self, SmtpServer};
use common::webdriver::{Browser, Driver};
use common::*;
use doorman::config::Cidr;
use doorman::model::Role;
use serde_json::json;

const GB: &str = "81.2.69.142";
const JP: &str = "126.0.0.1";
const PROMPT: Duration = Duration::from_secs(20);

fn out(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join("mail")
        .join(name)
}

fn subject(raw: &str) -> String {
    smtp::decode_words(&smtp::header(raw, "subject").unwrap())
}

/// The path and token of a link in a text part.
fn link(text: &str, path: &str) -> String {
    let marker = format!("http://doorman.test{path}?");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{path} in {text}"))
        + marker.len();
    text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

async fn get_from(s: &TestServer, path: &str, token: &str, ip: &str) -> u16 {
    client()
        .get(s.url(path))
        .bearer_auth(token)
        .header("X-Forwarded-For", ip)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Sends one of each kind of email a person or an admin can get.
async fn send_every_kind(s: &TestServer, smtp: &SmtpServer) -> Vec<String> {
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.sql_exec("UPDATE users SET time_zone = 'Europe/Berlin' WHERE email = 'ann@acme.test'");
    let admin = s.token("ada@acme.test").await;
    let mut want = 0;
    let mut wait = |n: usize| {
        want += n;
        let w = want;
        async move { smtp.wait_for(w, PROMPT).await }
    };

    // The invitation.
    let (st, body) = s
        .post(
            "/api/v1/admin/users",
            &admin,
            json!({"email": "nora@acme.test", "name": "Nora", "role": "user", "invite": true}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    wait(1).await;

    // Ann: a first sign-in (no alert), then an iPhone in Japan: a new device and country.
    let home = s
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), None)
        .await;
    let home_token = home["token"].as_str().unwrap().to_string();
    s.api_login_from("ann@acme.test", SAFARI_IPHONE, Some(JP), None)
        .await;
    let mails = wait(1).await;
    let alert_text = smtp::text_part(mails.last().unwrap());

    // The session from Britain is used from Japan: it moved.
    let mut moved = false;
    for _ in 0..4 {
        // Time is the subject: past the touch interval, the next use is written.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(get_from(s, "/api/v1/me", &home_token, JP).await, 200);
        if s.sql_i64("SELECT count(*) FROM alerts WHERE reasons = 'moved'") == 1 {
            moved = true;
            break;
        }
    }
    assert!(moved, "the session moved");
    wait(1).await;

    // A second factor, then a changed password.
    let ann = s.token("ann@acme.test").await;
    wait(1).await; // a new device again
    common::factors::enrol(s, &ann).await;
    wait(1).await;
    let (st, body) = s
        .post(
            "/api/v1/me/password",
            &ann,
            json!({"current_password": PASSWORD, "new_password": "plum kettle orbit 2"}),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    wait(1).await;

    // An email change: the confirmation to the new address, the notice to the old one.
    let (st, body) = s
        .post(
            "/api/v1/me/email",
            &ann,
            json!({"new_email": "ann@new.test", "current_password": "plum kettle orbit 2"}),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    wait(2).await;

    // "This wasn't me": the admins are told, and Ann gets a reset link.
    let t = link(&alert_text, "/alerts/secure");
    let resp = client()
        .post(s.url("/alerts/secure"))
        .form(&[("t", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    wait(2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_email_reads_well_on_a_phone() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let s = start_with(move |c| {
        c.mail.smtp_url = url;
        c.server.public_url = "http://doorman.test".into();
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        c.sessions.touch_interval = Duration::from_secs(1);
        c.alerts.travel_min_km = 25_000.0;
    })
    .await;
    let mails = send_every_kind(&s, &smtp).await;
    assert!(mails.len() >= 10, "{}", mails.len());

    let driver = Driver::start().await;
    let b = driver.browser().await;
    let seen = render(&b, &mails, "").await;

    let find = |needle: &str| {
        seen.iter()
            .find(|(s, _, _)| s.contains(needle))
            .unwrap_or_else(|| panic!("no email about {needle}"))
    };
    // The alert: one primary action and one secondary, nothing more to choose from.
    let (_, text, html) = find("New sign-in");
    assert_eq!(html.matches(r#"class="button""#).count(), 2, "{html}");
    let primary = html
        .find("This wasn't me \u{2014} secure my account")
        .unwrap();
    let secondary = html.find("Yes, it was me").unwrap();
    assert!(primary < secondary, "the primary action first");
    assert!(!text.contains("/alerts/end"), "no third action: {text}");
    assert!(text.contains("Operating system: iOS 17.1"), "{text}");
    assert!(
        text.contains("UTC · ") && text.contains(" in Europe/Berlin"),
        "{text}"
    );
    // Someone without a time zone reads UTC alone.
    let (_, invitation, _) = find("invited");
    assert!(
        invitation.contains(" UTC.") && !invitation.contains(" in Europe/"),
        "{invitation}"
    );
    for kind in [
        "moved",
        "second factor",
        "password was changed",
        "Confirm your new email",
        "asked to change the email",
        "reported",
        "Reset your Doorman password",
    ] {
        find(kind);
    }
    b.quit().await;
}

/// Writes each email's HTML part under target/screenshots/mail/, draws it at 390 px and
/// checks it: a text part, the viewport meta, no wider than the phone, buttons a thumb can
/// hit. Returns (subject, text, HTML) of each.
async fn render(b: &Browser, mails: &[String], prefix: &str) -> Vec<(String, String, String)> {
    b.screen_width(390).await;
    let mut seen = Vec::new();
    for (i, raw) in mails.iter().enumerate() {
        let subject = subject(raw);
        let text = smtp::text_part(raw);
        let html = smtp::html_part(raw);
        assert!(text.starts_with("Hello "), "{subject}: a text part: {text}");
        assert!(
            html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            ),
            "{subject}: {html}"
        );
        assert!(
            !text.contains("iPhone 17.1") && !html.contains("iPhone 17.1"),
            "{subject}"
        );
        let slug: String = subject
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let file = out(&format!("{prefix}{i:02}-{}.html", slug.trim_matches('-')));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &html).unwrap();
        b.goto(&format!("file://{}", file.display())).await;
        let wide = b
            .eval("return document.documentElement.scrollWidth;", vec![])
            .await;
        assert!(
            wide.as_u64().unwrap() <= 390,
            "{subject}: {wide} px wide at 390"
        );
        let heights = b
            .eval("return Array.from(document.querySelectorAll('a.button')).map(a => a.getBoundingClientRect().height);", vec![])
            .await;
        for h in heights.as_array().unwrap() {
            assert!(
                h.as_f64().unwrap() >= 44.0,
                "{subject}: a button {h} px tall"
            );
        }
        b.screenshot_page(&file.with_extension("png")).await;
        seen.push((subject, text, html));
    }
    seen
}

/// Waits for an email whose subject contains `needle`; returns it.
async fn mail_about(smtp: &SmtpServer, needle: &str) -> String {
    let found = |all: Vec<String>| all.into_iter().find(|m| subject(m).contains(needle));
    assert!(
        eventually(PROMPT, || async { found(smtp.messages()).is_some() }).await,
        "no email about {needle}"
    );
    found(smtp.messages()).unwrap()
}

/// The second step fails three times after a right password, a recovery code is used, an
/// admin resets the second factors, the email changes and the password is reset: each
/// notice reads well on a phone too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_notices_read_well_on_a_phone() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let s = start_with(move |c| {
        c.mail.smtp_url = url;
        c.server.public_url = "http://doorman.test".into();
        c.security.login_rate_limit.failures = 50;
    })
    .await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let bob = s.user("Acme", "bob@acme.test", Role::User).await;
    s.sql_exec("UPDATE users SET time_zone = 'America/New_York' WHERE email = 'bob@acme.test'");
    let admin = s.token("ada@acme.test").await;
    let token = s.token("bob@acme.test").await;
    let (_, _, codes) = common::factors::enrol(&s, &token).await;
    mail_about(&smtp, "second factor was added").await;

    // The right password, then three wrong codes: someone knows the password.
    let (st, first) = common::factors::password_step(&s, "bob@acme.test").await;
    assert_eq!(st, 200, "{first}");
    let challenge = first["challenge"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let (st, _) = common::factors::second_step(&s, &challenge, "000000").await;
        assert_eq!(st, 401);
    }
    let known = mail_about(&smtp, "Someone knows your Doorman password").await;

    // A recovery code signs in.
    let (_, again) = common::factors::password_step(&s, "bob@acme.test").await;
    let (st, done) =
        common::factors::second_step(&s, again["challenge"].as_str().unwrap(), &codes[0]).await;
    assert_eq!(st, 201, "{done}");
    mail_about(&smtp, "A recovery code was used").await;

    // An admin resets his second factors.
    let (st, body) = s
        .delete(
            &format!("/api/v1/admin/users/{}/second-factors", bob.id),
            &admin,
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let reset_by_admin = smtp::text_part(&mail_about(&smtp, "second factors were reset").await);
    // Done by someone else: no "if this was you", and no device of the person's.
    assert!(
        !reset_by_admin.contains("If this was you") && reset_by_admin.contains("An administrator"),
        "{reset_by_admin}"
    );

    // He changes his email and confirms it from the new address.
    let token = s.token("bob@acme.test").await;
    let (st, body) = s
        .post(
            "/api/v1/me/email",
            &token,
            json!({"new_email": "bob@new.test", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let confirm = mail_about(&smtp, "Confirm your new email").await;
    let t = link(&smtp::text_part(&confirm), "/settings/profile/email");
    let c = browser();
    let page = read(
        c.get(s.url(&format!("/settings/profile/email?token={t}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = form_value(&page.body, "csrf").unwrap();
    let done = post_form(
        &c,
        &s,
        "/settings/profile/email",
        &[("csrf", &csrf), ("token", &t)],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let changed = mail_about(&smtp, "email of your Doorman account was changed").await;
    assert!(
        smtp::header(&changed, "to")
            .unwrap()
            .contains("bob@acme.test"),
        "to the old address"
    );

    // An admin sends a reset link; he chooses a new password with it.
    let (st, body) = s
        .post(
            &format!("/api/v1/admin/users/{}/password-reset", bob.id),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let reset = mail_about(&smtp, "Reset your Doorman password").await;
    let t = link(&smtp::text_part(&reset), "/reset");
    let c = browser();
    let page = read(
        c.get(s.url(&format!("/reset?token={t}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = form_value(&page.body, "csrf").unwrap();
    let done = post_form(
        &c,
        &s,
        "/reset",
        &[
            ("csrf", &csrf),
            ("token", &t),
            ("password", "plum kettle orbit 3"),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    mail_about(&smtp, "Your Doorman password was reset").await;

    let driver = Driver::start().await;
    let b = driver.browser().await;
    let seen = render(&b, &smtp.messages(), "notice-").await;
    for kind in [
        "Someone knows your Doorman password",
        "A recovery code was used",
        "second factors were reset",
        "Your Doorman password was reset",
        "email of your Doorman account was changed",
    ] {
        assert!(seen.iter().any(|(s, _, _)| s.contains(kind)), "{kind}");
    }
    // Its primary action: change the password.
    let html = smtp::html_part(&known);
    assert!(html.contains("Change your password</a>"), "{html}");
    b.quit().await;
}

/// Profile › Time zone: filled from the browser's with a little script, saved with the
/// form, and a name that is no time zone is refused with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_takes_the_browsers_time_zone() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let zone = || s.sql_text("SELECT time_zone FROM users WHERE email = 'ann@acme.test'");
    assert_eq!(zone().as_deref(), Some(""));

    let driver = Driver::start().await;
    let b = driver.browser().await;
    b.time_zone("Asia/Tokyo").await;
    b.goto(&s.url("/login")).await;
    b.type_into("input[name=email]", "ann@acme.test").await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_url("/settings/security/sessions").await;
    b.goto(&s.url("/settings/profile")).await;
    let chosen = b
        .eval(
            "return document.querySelector('select[name=time_zone]').value;",
            vec![],
        )
        .await;
    assert_eq!(chosen, "Asia/Tokyo");
    assert!(
        b.text("#time-zone")
            .await
            .contains("Your browser's time zone is chosen")
    );
    for width in [390, 1366] {
        b.screen_width(width).await;
        b.screenshot_page(&out(&format!("../profile-time-zone-{width}.png")))
            .await;
    }
    b.click("#time-zone button[type=submit]").await;
    b.wait_for_url("done=time_zone").await;
    assert_eq!(zone().as_deref(), Some("Asia/Tokyo"));
    assert!(b.text(".notice").await.contains("Your time zone was saved"));

    // Without the script: a name that is no time zone is refused on the page.
    let c = browser();
    browser_login(&s, &c, "ann@acme.test").await;
    let page = read(c.get(s.url("/settings/profile")).send().await.unwrap()).await;
    let csrf = form_value(&page.body, "csrf").unwrap();
    let bad = read(
        c.post(s.url("/settings/profile/time-zone"))
            .form(&[("csrf", csrf.as_str()), ("time_zone", "Mars/Olympus")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("is not a time zone"), "{}", bad.body);
    assert_eq!(zone().as_deref(), Some("Asia/Tokyo"), "unchanged");
    b.quit().await;
}
