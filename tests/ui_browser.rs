//! Drives a real headless Chromium: sign in, look at My Sessions, terminate another
//! browser's session, and see that browser sent to the sign-in page. Screenshots of each
//! tab are saved under target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;

use common::webdriver::{self, Browser, Driver};
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
async fn terminate_another_browser_from_my_sessions() {
    let server = start().await;
    server.user("Acme", "ada@acme.test", Role::Admin).await;
    server.user("Acme", "bob@acme.test", Role::User).await;
    // Bob has a session from a phone somewhere, so the admin tab has a second user.
    server.api_login("bob@acme.test", SAFARI_IPHONE).await;

    let driver = Driver::start().await;
    let laptop = driver.browser().await;
    let other = driver.browser().await;
    sign_in(&other, &server, "ada@acme.test").await;
    sign_in(&laptop, &server, "ada@acme.test").await;

    laptop
        .goto(&server.url("/settings/security/sessions"))
        .await;
    assert_eq!(laptop.count(".current-box").await, 1, "one Current box");
    assert!(laptop.text(".current-box").await.contains("Current"));
    assert_eq!(
        laptop.count(".current-box button").await,
        0,
        "no Terminate on the current session"
    );
    assert_eq!(
        laptop.count("table tbody tr").await,
        1,
        "the other browser is listed"
    );
    assert!(laptop.text("table tbody tr").await.contains("Chrome"));
    laptop.screenshot(&shot("my-sessions.png")).await;

    // The admin tab lists both users' sessions.
    laptop.click("nav.tabs a[href$='/users']").await;
    laptop
        .wait_for_url("/settings/security/sessions/users")
        .await;
    let users_page = laptop.source().await;
    assert!(users_page.contains("bob@acme.test") && users_page.contains("ada@acme.test"));
    laptop.screenshot(&shot("users-sessions.png")).await;

    // Terminate the other browser's session from My Sessions.
    laptop
        .goto(&server.url("/settings/security/sessions"))
        .await;
    laptop.click("table tbody tr button.danger").await;
    laptop.wait_for_url("done=1").await;
    assert_eq!(
        laptop.count("table tbody tr").await,
        0,
        "the other session is gone"
    );
    assert!(laptop.source().await.contains("1 session ended"));

    // The other browser's next click lands on the sign-in page with the notice.
    other.goto(&server.url("/settings/security/sessions")).await;
    other.wait_for_url("/login").await;
    let notice = other.text(".notice").await;
    assert!(
        notice.contains("Your session has ended. Please sign in again."),
        "{notice}"
    );
    assert!(
        notice.contains("It was ended from another of your devices."),
        "{notice}"
    );
    other.screenshot(&shot("signed-out.png")).await;

    // The terminating browser is still signed in.
    laptop
        .goto(&server.url("/settings/security/sessions"))
        .await;
    assert!(
        laptop
            .current_url()
            .await
            .ends_with("/settings/security/sessions")
    );

    // End all other sessions with the JavaScript confirmation.
    sign_in(&other, &server, "ada@acme.test").await;
    laptop
        .goto(&server.url("/settings/security/sessions"))
        .await;
    laptop.click("form[action$='/end-others'] button").await;
    laptop.accept_dialog().await;
    laptop.wait_for_url("done=1").await;
    other.goto(&server.url("/settings/security/sessions")).await;
    other
        .wait_for_url("/login?ended=ended_other_sessions")
        .await;

    laptop.quit().await;
    other.quit().await;
    for name in ["my-sessions.png", "users-sessions.png", "signed-out.png"] {
        let len = std::fs::metadata(shot(name)).unwrap().len();
        assert!(len > 5_000, "{name} is a real screenshot ({len} bytes)");
    }
}

/// Set only for the child run of [`a_failing_browser_test_leaves_no_browser_behind`].
const FAIL_ON_PURPOSE: &str = "TEST_BROWSER_FAIL_ON_PURPOSE";
const FAILURE: &str = "failing on purpose with two browsers open";

/// Without [`FAIL_ON_PURPOSE`] it passes at once; with it, it is a browser test that
/// fails halfway, the way a real one would: two browsers open, one signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_on_purpose_with_browsers_open() {
    if std::env::var_os(FAIL_ON_PURPOSE).is_none() {
        return;
    }
    let server = start().await;
    server.user("Acme", "ada@acme.test", Role::Admin).await;
    let driver = Driver::start().await;
    let signed_in = driver.browser().await;
    let other = driver.browser().await;
    sign_in(&signed_in, &server, "ada@acme.test").await;
    other.goto(&server.url("/login")).await;
    let mark = std::env::var(webdriver::RUN_MARK_ENV).unwrap();
    let browsers = webdriver::processes_with(&mark)
        .iter()
        .filter(|(_, name)| name == "chromium")
        .count();
    println!("chromium processes: {browsers}");
    panic!("{FAILURE}");
}

/// A browser test that fails leaves no browser running: the test above, failing in a
/// child process whose browsers all carry a mark of their own, leaves no process with
/// that mark once it has exited.
#[test]
fn a_failing_browser_test_leaves_no_browser_behind() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mark = format!("failing-run-{}-{nanos}", std::process::id());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fails_on_purpose_with_browsers_open",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FAIL_ON_PURPOSE, "1")
        .env(webdriver::RUN_MARK_ENV, &mark)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the child run was to fail:\n{text}");
    assert!(
        text.contains(FAILURE),
        "it failed for another reason:\n{text}"
    );
    let opened: usize = text
        .split("chromium processes: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of browser processes:\n{text}"));
    assert!(
        opened >= 2,
        "the mark finds the browsers while they run ({opened})"
    );

    // Killed processes take a moment to be gone from /proc.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = webdriver::processes_with(&mark);
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left running after the failed test: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
