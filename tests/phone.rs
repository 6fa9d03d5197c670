//! Every page at 390 px (Chromium's mobile emulation) and at 1,366 px (SPEC §22): each
//! page of the settings menu (found by following the menu and the Active Sessions tabs,
//! so a page the menu does not reach is not checked and the count fails), the sign-in
//! page, the alert's "See and end all your sessions" page and the 404 page. On each: the
//! page does not scroll sideways at 390 (a table may scroll in its own box), the
//! Terminate / End all / Sign out buttons lie on the screen, touch targets are at least
//! 44 px high on the phone, and axe-core finds no violation. A screenshot of each is
//! saved under target/screenshots/phone/.
//!
//! axe-core comes from npm: `npm ci --prefix tests/axe` (`.ci/run` does it).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;

use common::webdriver::{Browser, Driver};
use common::*;
use doorman::model::Role;
use serde_json::json;

const SESSIONS: &str = "/settings/security/sessions";
const PHONE: u32 = 390;
const LAPTOP: u32 = 1366;

fn shot(name: &str, width: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/screenshots/phone")
        .join(format!("{name}-{width}.png"))
}

/// axe-core's browser build, installed by `npm ci --prefix tests/axe`.
fn axe_source() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing ({}: {e}): run `npm ci --prefix tests/axe` (bash .ci/run does)",
            path.display()
        )
    })
}

/// A server with an owner, an admin and people in two accounts, signed in from several
/// devices and places, so that every listing has rows.
async fn server() -> TestServer {
    let s = start_with(|c| {
        c.server.trusted_proxies = vec![doorman::config::Cidr("127.0.0.1/32".parse().unwrap())];
    })
    .await;
    s.user("Ops", "olga@ops.test", Role::Owner).await;
    s.user("Acme", "ada.lovelace@acme.test", Role::Admin).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    s.user(
        "Bravo",
        "dave.with.a.long.address@bravo.example",
        Role::User,
    )
    .await;
    for (email, ua, ip) in [
        ("olga@ops.test", SAFARI_IPHONE, "81.2.69.142"),
        ("olga@ops.test", FIREFOX_WIN, "126.0.0.1"),
        ("bob@acme.test", CHROME_MAC, "86.210.0.1"),
        ("bob@acme.test", SAFARI_IPHONE, "8.8.8.8"),
        (
            "dave.with.a.long.address@bravo.example",
            FIREFOX_WIN,
            "2a00:23c0::1",
        ),
    ] {
        s.api_login_from(email, ua, Some(ip), None).await;
    }
    s.login_raw("bob@acme.test", "not the password", CHROME_MAC, None, None)
        .await;
    // Olga's sessions signed in to apps through OpenID Connect (SPEC §21's lines and
    // buttons): Grafana still signed in, Notes signed out by back-channel logout, Wiki
    // (no back-channel URI) to sign out at its next check.
    let now = doorman::clock::now();
    s.sql_exec("INSERT INTO oidc_backchannel_clients (client_id) VALUES ('notes')");
    s.sql_exec(&format!(
        "INSERT INTO oidc_grants (session_id, user_id, client_id, application, sid, scopes,
                                  created_at, last_used_at, ended_at, end_reason)
           SELECT s.id, s.user_id, c.id, c.name, s.public_id, 'openid', {now}, {now}, c.ended,
                  CASE WHEN c.ended IS NULL THEN NULL ELSE 'signed_out' END
           FROM sessions s JOIN users u ON u.id = s.user_id,
                (SELECT 'grafana' AS id, 'Grafana' AS name, NULL AS ended
                 UNION ALL SELECT 'notes', 'Notes', {now}
                 UNION ALL SELECT 'wiki', 'Team Wiki', {now}) c
           WHERE u.email = 'olga@ops.test'"
    ));
    s.sql_exec(&format!(
        "UPDATE oidc_logouts SET status = 'delivered', delivered_at = {now}"
    ));
    s
}

async fn sign_in(b: &Browser, s: &TestServer, email: &str) {
    b.goto(&s.url("/login")).await;
    b.type_into("input[name=email]", email).await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_url(SESSIONS).await;
}

/// The pages the settings menu reaches, and the Active Sessions tabs: (label, path).
async fn menu_pages(b: &Browser, s: &TestServer) -> Vec<(String, String)> {
    b.goto(&s.url(SESSIONS)).await;
    let found = b
        .eval(
            "return [...document.querySelectorAll('nav.menu.wide a, nav.tabs a')]
                .map(a => [a.textContent.trim(), a.getAttribute('href')]);",
            vec![],
        )
        .await;
    let mut pages: Vec<(String, String)> = Vec::new();
    for pair in found.as_array().unwrap() {
        let (label, path) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        if !pages.iter().any(|(l, _)| l == label) {
            pages.push((label.to_string(), path.to_string()));
        }
    }
    pages
}

/// What is wrong with the page now shown at `width`, as sentences.
async fn problems(b: &Browser, width: u32, axe: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let layout = b
        .eval(
            r#"
            const vw = document.documentElement.clientWidth;
            const off = [...document.querySelectorAll('button, .button')]
              .filter(el => /^(Terminate|End all|Sign out)/.test(el.textContent.trim()))
              .filter(el => el.checkVisibility())
              .map(el => [el.textContent.trim(), el.getBoundingClientRect()])
              .filter(([, r]) => r.left < 0 || r.right > vw + 0.5)
              .map(([t, r]) => `${t} at x ${Math.round(r.left)}..${Math.round(r.right)}`);
            const small = [...document.querySelectorAll('button, .button, summary, select, input:not([type=hidden]):not([type=checkbox])')]
              .filter(el => el.checkVisibility())
              .map(el => [el.textContent.trim() || el.name || el.tagName, el.getBoundingClientRect().height])
              .filter(([, h]) => h < 44)
              .map(([t, h]) => `${t} (${Math.round(h)} px)`);
            const cut = [...document.querySelectorAll('.scroll-x')]
              .filter(el => el.scrollWidth > el.clientWidth + 1)
              .map(el => `${el.getAttribute('aria-label')} (${el.scrollWidth} in ${el.clientWidth} px)`);
            return {scroll: document.documentElement.scrollWidth, vw, off, small, cut};
            "#,
            vec![],
        )
        .await;
    let scroll = layout["scroll"].as_u64().unwrap();
    if width == PHONE && scroll > u64::from(PHONE) {
        wrong.push(format!("scrolls sideways: scrollWidth {scroll}"));
    }
    for off in layout["off"].as_array().unwrap() {
        wrong.push(format!("off the screen: {off}"));
    }
    if width == LAPTOP {
        for cut in layout["cut"].as_array().unwrap() {
            wrong.push(format!("a table does not fit its column: {cut}"));
        }
    }
    if width == PHONE {
        for small in layout["small"].as_array().unwrap() {
            wrong.push(format!("touch target under 44 px: {small}"));
        }
    }
    b.eval(axe, vec![]).await;
    let violations = b
        .eval_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(r => done(r.violations.map(v =>
                 `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)),
               e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await;
    for v in violations.as_array().unwrap() {
        wrong.push(format!("axe {}", v.as_str().unwrap()));
    }
    wrong
}

/// Visits `pages` at `width` in `b`, saving a screenshot of each; returns what is wrong.
async fn check(
    b: &Browser,
    s: &TestServer,
    width: u32,
    pages: &[(String, String)],
    axe: &str,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, path) in pages {
        b.goto(&s.url(path)).await;
        b.screenshot(&shot(name, width)).await;
        for p in problems(b, width, axe).await {
            wrong.push(format!("{path} at {width} px: {p}"));
        }
        // A long page: its end too.
        let long = b
            .eval(
                "const long = document.documentElement.scrollHeight > window.innerHeight + 10;
                 if (long) { window.scrollTo(0, document.documentElement.scrollHeight); }
                 return long;",
                vec![],
            )
            .await;
        if long == json!(true) {
            b.screenshot(&shot(&format!("{name}-end"), width)).await;
        }
    }
    wrong
}

fn slug(label: &str) -> String {
    label.to_lowercase().replace(' ', "-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_on_a_phone_and_a_laptop() {
    let axe = axe_source();
    let s = server().await;
    let driver = Driver::start().await;
    let mut wrong = Vec::new();

    for width in [PHONE, LAPTOP] {
        let b = if width == PHONE {
            driver.phone(PHONE).await
        } else {
            driver.browser_wide(LAPTOP).await
        };
        // Signed out: the sign-in page and an address that leads nowhere.
        let signed_out = [
            ("sign-in".to_string(), "/login".to_string()),
            ("not-found".to_string(), "/no-such-page".to_string()),
        ];
        wrong.extend(check(&b, &s, width, &signed_out, &axe).await);
        // The page's viewport meta makes the phone's layout as wide as its screen.
        let inner = b.eval("return window.innerWidth;", vec![]).await;
        assert_eq!(inner, json!(width), "the viewport is {width} px wide");

        sign_in(&b, &s, "olga@ops.test").await;
        let menu = menu_pages(&b, &s).await;
        let labels: Vec<&str> = menu.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Active Sessions",
                "Sign-in history",
                "Security log",
                "Second factors",
                "Profile",
                "Sign-in alerts",
                "Users",
                "Accounts",
                "Team log",
                "My Sessions",
                "Users Sessions",
            ],
            "the owner's menu and tabs"
        );
        let mut pages: Vec<(String, String)> = menu
            .iter()
            .map(|(label, path)| (slug(label), path.clone()))
            .collect();
        // The alert email's "See and end all your sessions" link.
        pages.push((
            "alert-sessions-link".into(),
            format!("{SESSIONS}?from=alert"),
        ));
        wrong.extend(check(&b, &s, width, &pages, &axe).await);

        if width == PHONE {
            // The menu is a button: closed, then open with every entry on the screen.
            b.goto(&s.url("/settings/profile")).await;
            let shown = |css: &'static str| {
                let b = &b;
                async move {
                    b.eval(
                        &format!("const el = document.querySelector(\"{css}\"); return !!el && el.checkVisibility();"),
                        vec![],
                    )
                    .await
                }
            };
            assert_eq!(shown("nav.menu.wide").await, json!(false));
            assert_eq!(
                shown("details.menu.narrow a[href='/settings/team/log']").await,
                json!(false)
            );
            b.click("details.menu.narrow summary").await;
            assert_eq!(
                shown("details.menu.narrow a[href='/settings/team/log']").await,
                json!(true)
            );
            b.screenshot(&shot("menu-open", PHONE)).await;
            b.click("details.menu.narrow a[href='/settings/team/log']")
                .await;
            b.wait_for_url("/settings/team/log").await;
        }
        b.quit().await;
    }
    // Users Sessions' table fits its column on a 1,280 px screen too.
    let b = driver.browser_wide(1280).await;
    sign_in(&b, &s, "olga@ops.test").await;
    b.goto(&s.url("/settings/security/sessions/users")).await;
    let fit = b
        .eval(
            "const t = document.querySelector('table.sessions').getBoundingClientRect();
             const m = document.querySelector('main').getBoundingClientRect();
             return [t.right, m.right, document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await;
    let n = |i: usize| fit[i].as_f64().unwrap();
    if n(0) > n(1) + 0.5 || n(2) > n(3) {
        wrong.push(format!(
            "Users Sessions at 1280 px overflows its column: {fit}"
        ));
    }
    b.screenshot(&shot("users-sessions", 1280)).await;
    b.quit().await;
    assert!(
        wrong.is_empty(),
        "{} problems:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let shots = std::fs::read_dir(shot("x", 0).parent().unwrap())
        .unwrap()
        .count();
    assert!(shots >= 2 * 14, "{shots} screenshots");
}
