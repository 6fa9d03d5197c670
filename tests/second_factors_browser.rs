//! Second factors in a real headless Chromium: passkeys through WebDriver's virtual
//! authenticator (register two, rename, second step after the password, passwordless
//! sign-in with the resident key, remove), and screenshots of the pages under
//! target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;

use common::factors::{code, key_bytes, settle};
use common::webdriver::{Browser, Driver};
use common::*;
use doorman::model::Role;

const FACTORS: &str = "/settings/security/second-factors";

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join(name)
}

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

async fn add_passkey(b: &Browser, base: &str, name: &str) {
    b.goto(&format!("{base}{FACTORS}")).await;
    b.type_into("form.add-passkey input[name=name]", name).await;
    b.click("form.add-passkey button").await;
    b.wait_for_text("Create passkey").await;
    b.click("button[data-ceremony=create]").await;
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
    assert!(b.source().await.contains("Your passkey is added."));
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
    b.screenshot(&shot("second-factors-off.png")).await;

    // Add an authenticator app: the QR code and the key, then its first code.
    b.type_into("form[action$='/totp'] input[name=name]", "Phone")
        .await;
    b.click("form[action$='/totp'] button").await;
    b.wait_for_text("Enter the 6-digit code").await;
    assert_eq!(b.count(".qr svg").await, 1, "the QR code is inline SVG");
    b.screenshot(&shot("totp-enrolment-qr.png")).await;
    let html = b.source().await;
    let marker = "data-secret=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let key = key_bytes(&html[start..start + html[start..].find('"').unwrap()]);
    settle().await;
    b.type_into("input[name=code]", &code(&key, 0)).await;
    b.click(".totp-setup button[type=submit]").await;
    b.wait_for_text("Your recovery codes").await;
    b.screenshot(&shot("recovery-codes.png")).await;
    b.goto(&format!("{base}{FACTORS}")).await;
    b.screenshot(&shot("second-factors-on.png")).await;

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
