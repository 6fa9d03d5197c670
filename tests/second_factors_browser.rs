//! Second factors in a real headless Chromium: passkeys through WebDriver's virtual
//! authenticator (register two, rename, second step after the password, passwordless
//! sign-in with the resident key, remove), and screenshots of the pages under
//! target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::factors::{code, key_bytes, settle};
use common::webdriver::{Browser, Driver, shot};
use common::*;
use doorman::model::Role;

const FACTORS: &str = "/settings/security/second-factors";

/// A server whose public address is the one the browser uses: WebAuthn binds passkeys
/// to it (http is allowed on localhost only).
async fn server() -> (TestServer, String) {
    let s = start_with_port(|c, port| {
        c.server.public_url = format!("http://localhost:{port}");
    })
    .await;
    let base = format!("http://localhost:{}", s.addr.port());
    (s, base)
}

async fn password_sign_in(b: &Browser, base: &str, email: &str) {
    b.goto(&format!("{base}/login")).await;
    b.type_into("input[name=email]", email).await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
}

async fn sign_out(b: &Browser) {
    b.click("header.top form button").await;
    b.wait_for_url("/login?out=1").await;
}

/// "Add passkey" in one step: the press starts the browser's prompt at once (the
/// virtual authenticator answers it), no second page.
async fn add_passkey(b: &Browser, base: &str, name: &str) {
    b.goto(&format!("{base}{FACTORS}")).await;
    b.type_into("form.add-passkey input[name=name]", name).await;
    b.click("form.add-passkey button").await;
    b.wait_for_text("Your passkey is added.").await;
    assert!(!b.source().await.contains("Create passkey"), "one step");
}

/// axe's heading-order, as a script: no heading is more than one level below the one
/// before it, and the page starts at h1.
async fn headings_in_order(b: &Browser) {
    let levels = b
        .eval("return Array.from(document.querySelectorAll('main h1, main h2, main h3, main h4, main h5, main h6')).map(h => Number(h.tagName[1]));", vec![])
        .await;
    let levels: Vec<u64> = levels
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(levels.first(), Some(&1), "{levels:?}");
    for pair in levels.windows(2) {
        assert!(pair[1] <= pair[0] + 1, "heading order: {levels:?}");
    }
}

/// Full-page screenshots at 390 (a phone) and 1,366 px.
async fn both_widths(b: &Browser, name: &str) {
    for width in [390, 1366] {
        b.screen_width(width).await;
        b.screenshot_page(&shot(&format!("{name}-{width}.png")))
            .await;
    }
    b.screen_width(1280).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_register_second_step_passwordless_and_remove() {
    let (s, base) = server().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;
    let first_key = b.add_virtual_authenticator().await;

    password_sign_in(&b, &base, "ann@acme.test").await;
    b.wait_for_url("/settings/security/sessions").await;
    add_passkey(&b, &base, "Laptop").await;
    b.wait_for_text("Your passkey is added.").await;
    assert_eq!(
        b.count(".recovery-codes li").await,
        10,
        "the first factor comes with recovery codes"
    );
    let creds = b.authenticator_credentials(&first_key).await;
    assert_eq!(creds.len(), 1);
    assert_eq!(
        creds[0]["isResidentCredential"], true,
        "a discoverable passkey"
    );

    // A second one, on another authenticator (a security key), and a rename.
    b.remove_virtual_authenticator(&first_key).await;
    let second_key = b.add_virtual_authenticator().await;
    add_passkey(&b, &base, "Security key").await;
    b.wait_for_url("done=passkey").await;
    assert_eq!(b.count("table.factors tbody tr").await, 2);
    b.clear("table.factors tbody tr:first-child input[name=name]")
        .await;
    b.type_into(
        "table.factors tbody tr:first-child input[name=name]",
        "Work laptop",
    )
    .await;
    b.click("table.factors tbody tr:first-child form.inline button")
        .await;
    b.wait_for_url("done=renamed").await;
    assert!(b.source().await.contains("value=\"Work laptop\""));
    b.screenshot(&shot("second-factors-passkeys.png")).await;

    // The password now leads to the second step, where the passkey answers.
    sign_out(&b).await;
    password_sign_in(&b, &base, "ann@acme.test").await;
    b.wait_for_url("/login/verify").await;
    b.wait_for_text("Use a passkey").await;
    b.screenshot(&shot("login-verify-passkey.png")).await;
    b.click("button[data-ceremony=get]").await;
    b.wait_for_url("/settings/security/sessions").await;
    assert!(
        b.source()
            .await
            .contains("Signed in with Password + passkey")
    );

    // Signing in with the passkey alone (the resident key names the user).
    sign_out(&b).await;
    b.goto(&format!("{base}/login")).await;
    b.screenshot(&shot("login-with-passkey.png")).await;
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
    assert!(
        s.sql_i64("SELECT count(*) FROM second_factors WHERE kind = 'passkey' AND last_used_at IS NOT NULL")
            >= 1
    );

    // Remove the security key; the sign-in is long ago, so a passkey confirms it's her.
    s.sql_exec("UPDATE sessions SET verified_at = verified_at - 3600");
    b.goto(&format!("{base}{FACTORS}")).await;
    b.click("table.factors tbody tr:last-child form button.danger")
        .await;
    b.accept_dialog().await;
    b.wait_for_text("Confirm with a passkey").await;
    b.screenshot(&shot("confirm-its-you-passkey.png")).await;
    b.click("button[data-ceremony=get]").await;
    b.wait_for_url("done=removed").await;
    assert_eq!(b.count("table.factors tbody tr").await, 1);
    assert_eq!(b.authenticator_credentials(&second_key).await.len(), 1);
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_enrolment_the_second_step_and_confirm_its_you() {
    let (s, base) = server().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;
    password_sign_in(&b, &base, "ann@acme.test").await;
    b.wait_for_url("/settings/security/sessions").await;
    b.goto(&format!("{base}{FACTORS}")).await;
    headings_in_order(&b).await;
    both_widths(&b, "second-factors-off").await;

    // Add an authenticator app: the QR code and the key, then its first code.
    b.type_into("form[action$='/totp'] input[name=name]", "Phone")
        .await;
    b.click("form[action$='/totp'] button").await;
    b.wait_for_text("Enter the 6-digit code").await;
    assert_eq!(b.count(".qr svg").await, 1, "the QR code is inline SVG");
    // On a phone: open the key in the authenticator app, or copy it.
    let open = b
        .eval(
            "return document.querySelector('.totp-open a').getAttribute('href');",
            vec![],
        )
        .await;
    assert!(
        open.as_str()
            .unwrap()
            .starts_with("otpauth://totp/Doorman:"),
        "{open}"
    );
    assert!(
        b.text(".totp-open a")
            .await
            .contains("Open in authenticator app")
    );
    let copy_shown = b
        .eval(
            "return !document.querySelector('.totp-setup button[data-copy]').hidden;",
            vec![],
        )
        .await;
    assert_eq!(copy_shown, true, "the copy button shows where it works");
    b.click(".totp-setup button[data-copy]").await;
    let said = b
        .eval(
            "return document.querySelector('.totp-setup button[data-copy]').textContent;",
            vec![],
        )
        .await;
    assert_ne!(said, "Copy key", "the press was answered");
    headings_in_order(&b).await;
    both_widths(&b, "totp-enrolment-qr").await;
    let html = b.source().await;
    let marker = "data-secret=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let key = key_bytes(&html[start..start + html[start..].find('"').unwrap()]);
    settle().await;
    b.type_into("input[name=code]", &code(&key, 0)).await;
    b.click(".totp-setup button[type=submit]").await;
    b.wait_for_text("Your recovery codes").await;
    // The codes as a text file to download, and a copy button.
    let codes = b
        .eval("return Array.from(document.querySelectorAll('.recovery-codes li')).map(l => l.textContent.trim());", vec![])
        .await;
    let file = b
        .eval("var a = document.querySelector('.recovery-codes a[download]'); return [a.getAttribute('download'), decodeURIComponent(a.getAttribute('href'))];", vec![])
        .await;
    assert_eq!(file[0], "doorman-recovery-codes.txt");
    let href = file[1].as_str().unwrap();
    assert!(href.starts_with("data:text/plain;charset=utf-8,"), "{href}");
    assert_eq!(codes.as_array().unwrap().len(), 10);
    for c in codes.as_array().unwrap() {
        assert!(href.contains(c.as_str().unwrap()), "{c} in the file");
    }
    let copy = b
        .eval("var b = document.querySelector('.recovery-codes button[data-copy]'); return [b.hidden, b.getAttribute('data-copy')];", vec![])
        .await;
    assert_eq!(copy[0], false);
    assert_eq!(copy[1].as_str().unwrap().lines().count(), 10);
    both_widths(&b, "recovery-codes").await;
    b.goto(&format!("{base}{FACTORS}")).await;
    headings_in_order(&b).await;
    both_widths(&b, "second-factors-on").await;

    // "Confirm it's you" before getting new recovery codes, after the window.
    s.sql_exec("UPDATE sessions SET verified_at = verified_at - 3600");
    b.click("form[action$='/recovery-codes'] button").await;
    b.accept_dialog().await;
    b.wait_for_text("Confirm it").await;
    b.screenshot(&shot("confirm-its-you.png")).await;
    b.type_into("input[name=step_up_password]", PASSWORD).await;
    b.click("form.card button.primary").await;
    b.wait_for_text("Your old recovery codes no longer work.")
        .await;

    // The second step at the next sign-in.
    b.click("header.top form button").await;
    b.wait_for_url("/login?out=1").await;
    password_sign_in(&b, &base, "ann@acme.test").await;
    b.wait_for_url("/login/verify").await;
    b.screenshot(&shot("login-verify.png")).await;
    settle().await;
    b.type_into("input[name=code]", &code(&key, 1)).await;
    b.click("form[action='/login/verify'] button").await;
    b.wait_for_url("/settings/security/sessions").await;
    assert!(b.source().await.contains("Password + authenticator app"));
    b.screenshot(&shot("sessions-auth-methods.png")).await;
    b.quit().await;
}

/// A second factor required at sign-in: the enrolment offers a passkey too, which is
/// added in one step on the Second factors page by the session held until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrolment_after_the_password_offers_a_passkey() {
    let s = start_with_port(|c, port| {
        c.server.public_url = format!("http://localhost:{port}");
        c.security.require_second_factor = true;
    })
    .await;
    let base = format!("http://localhost:{}", s.addr.port());
    s.user("Acme", "ann@acme.test", Role::User).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;
    let key = b.add_virtual_authenticator().await;

    password_sign_in(&b, &base, "ann@acme.test").await;
    b.wait_for_url("/login/enrol").await;
    headings_in_order(&b).await;
    both_widths(&b, "enrol-choice").await;
    b.click("#enrol-passkey button[type=submit]").await;
    b.wait_for_url("enrol=required").await;
    assert!(b.source().await.contains("A second factor is now required"));
    // Held: other pages send it back here.
    b.goto(&format!("{base}/settings/security/sessions")).await;
    b.wait_for_url("enrol=required").await;
    both_widths(&b, "enrol-held-second-factors").await;

    add_passkey(&b, &base, "Phone").await;
    assert_eq!(b.count(".recovery-codes li").await, 10);
    assert_eq!(b.authenticator_credentials(&key).await.len(), 1);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM second_factors WHERE active = 0"),
        0,
        "the unused app key of the enrolment is gone"
    );
    // No longer held.
    b.goto(&format!("{base}/settings/security/sessions")).await;
    b.wait_for_url("/settings/security/sessions").await;
    assert!(!b.current_url().await.contains("enrol=required"));
    b.quit().await;
}
