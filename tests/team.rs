//! Team management (SPEC §11) end to end: invitations, forgotten passwords, the
//! profile, the Users and Accounts pages and their API twins, through the real server
//! and a real SMTP receiver on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::smtp::{self, SmtpServer};
use common::*;
use doorman::config::Cidr;
use doorman::model::Role;
use serde_json::{Value, json};

const PROMPT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(1500);
const NEW_PASSWORD: &str = "violet tractor umbrella";
const ANSWER: &str = "If an account exists for that address, we have sent a link.";

async fn server(smtp: Option<&SmtpServer>) -> TestServer {
    let url = smtp.map(|s| s.url());
    start_with(move |c| {
        if let Some(url) = url {
            c.mail.smtp_url = url;
        }
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
    })
    .await
}

/// The one mail whose subject contains `subject`.
fn with_subject<'a>(all: &'a [String], subject: &str) -> &'a String {
    let found: Vec<&String> = all
        .iter()
        .filter(|m| {
            smtp::decode_words(&smtp::header(m, "Subject").unwrap_or_default()).contains(subject)
        })
        .collect();
    assert_eq!(found.len(), 1, "one mail about {subject}");
    found[0]
}

/// A link of a mail (written with the configured public URL) on the test server.
fn local(s: &TestServer, url: &str) -> String {
    let path = url.split_once("://").unwrap().1;
    s.url(&path[path.find('/').unwrap()..])
}

/// The first address in a mail's text that starts with `prefix`.
fn link_in(raw: &str, prefix: &str) -> String {
    let text = smtp::text_part(raw);
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {text}"));
    text[start..].split_whitespace().next().unwrap().to_string()
}

fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap().to_string()
}

fn mails_to<'a>(all: &'a [String], to: &str) -> Vec<&'a String> {
    all.iter()
        .filter(|m| smtp::header(m, "To").is_some_and(|t| t.contains(to)))
        .collect()
}

async fn invite(s: &TestServer, token: &str, email: &str, role: &str) -> (u16, Value) {
    s.post(
        "/api/v1/admin/users",
        token,
        json!({"email": email, "name": "New Person", "role": role, "invite": true}),
    )
    .await
}

/// Accepts an invitation in a fresh browser; returns the browser and the answer.
async fn accept(s: &TestServer, token: &str, password: &str) -> (reqwest::Client, Page) {
    let b = browser();
    let page = read(
        b.get(s.url(&format!("/invite?token={token}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = form_value(&page.body, "csrf").unwrap();
    let answer = post_form(
        &b,
        s,
        "/invite",
        &[
            ("csrf", &csrf),
            ("token", token),
            ("name", "Nora Newcomer"),
            ("password", password),
        ],
    )
    .await;
    (b, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_accept_and_be_signed_in() {
    let mail = SmtpServer::start().await;
    let s = server(Some(&mail)).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let admin = s.token("ada@acme.test").await;

    let (status, body) = invite(&s, &admin, "nora@acme.test", "user").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "invited");
    let url = body["invite_url"].as_str().unwrap().to_string();
    assert!(url.contains("/invite?token="), "{url}");
    assert!(body.get("initial_password").is_none());
    // Only the link's hash is stored.
    let token = token_of(&url);
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM links WHERE token_hash = X'{}'",
            sha256_hex(&token)
        )),
        1
    );
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM alerts WHERE instr(details, '{token}') > 0"
        )),
        0,
        "the outbox does not hold the link's secret"
    );
    // Nor does the invited person's data export carry what it is derived from.
    let id = body["id"].as_i64().unwrap();
    let (status, export) = s
        .get(&format!("/api/v1/admin/users/{id}/export"), &admin)
        .await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["alerts"][0]["reasons"], "invitation", "{export}");
    assert!(!export.to_string().contains("link_seed"), "{export}");

    let got = mail.wait_for(1, PROMPT).await;
    assert_eq!(got.len(), 1);
    assert!(
        smtp::header(&got[0], "Subject")
            .unwrap()
            .contains("invited")
    );
    let text = smtp::text_part(&got[0]);
    assert!(
        text.contains("ada@acme.test invited you to the account Acme"),
        "{text}"
    );
    assert_eq!(
        token_of(&link_in(&got[0], "http")),
        token,
        "the emailed link is the one shown"
    );
    assert!(!smtp::html_part(&got[0]).is_empty());

    // An invited user cannot sign in.
    let (status, _) = s
        .login_raw("nora@acme.test", PASSWORD, CHROME_MAC, None, None)
        .await;
    assert_eq!(status, 401);

    // A weak password is refused with the reason, and the link still works.
    let (_, weak) = accept(&s, &token, "password123").await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("too easy to guess"), "{}", weak.body);

    let (b, page) = accept(&s, &token, NEW_PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location, "/settings/security/sessions");
    let me = read(
        b.get(s.url("/settings/security/sessions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me.status, 200);
    assert!(me.body.contains("nora@acme.test"));
    // The first sign-in sends no alert: a window that must pass, in which nothing more
    // is mailed.
    tokio::time::sleep(QUIET).await;
    assert_eq!(mail.count(), 1);
    assert_eq!(
        s.sql_text("SELECT name FROM users WHERE email = 'nora@acme.test'")
            .as_deref(),
        Some("Nora Newcomer")
    );

    // The admin sees them as active, with a session.
    let (_, list) = s.get("/api/v1/admin/users?q=nora", &admin).await;
    assert_eq!(list["items"][0]["status"], "active", "{list}");
    assert_eq!(list["items"][0]["active_sessions"], 1);
    assert!(list["items"][0]["last_sign_in_at"].is_string());

    // Used once: a second use says so and changes nothing.
    let again = read(
        client()
            .get(s.url(&format!("/invite?token={token}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, 400);
    assert!(
        again.body.contains("has already been used"),
        "{}",
        again.body
    );

    // Inviting an existing address: 409, nothing written.
    let users = s.sql_i64("SELECT count(*) FROM users");
    let (status, body) = invite(&s, &admin, "NORA@acme.test", "user").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "email_taken");
    assert!(body["message"].as_str().unwrap().contains("already exists"));
    assert_eq!(s.sql_i64("SELECT count(*) FROM users"), users);
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[tokio::test]
async fn expired_resent_and_revoked_invitations() {
    let s = server(None).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let admin = s.token("ada@acme.test").await;
    let (_, body) = invite(&s, &admin, "late@acme.test", "user").await;
    let id = body["id"].as_i64().unwrap();
    let first = token_of(body["invite_url"].as_str().unwrap());
    // With email off the invitation is kept as skipped, and the link is only shown.
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM alerts WHERE reasons = 'invitation' AND status = 'skipped'"
        ),
        1
    );

    // Expired a minute ago (not so long ago that retention may already remove it).
    s.sql_exec("UPDATE links SET expires_at = CAST(strftime('%s', 'now') AS INTEGER) - 60");
    let page = read(
        client()
            .get(s.url(&format!("/invite?token={first}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("has expired"), "{}", page.body);

    let (status, resent) = s
        .post(
            &format!("/api/v1/admin/users/{id}/invitation"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{resent}");
    let second = token_of(resent["invite_url"].as_str().unwrap());
    assert_ne!(first, second);
    let page = read(
        client()
            .get(s.url(&format!("/invite?token={first}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        page.body.contains("replaced by a newer one"),
        "{}",
        page.body
    );
    let page = read(
        client()
            .get(s.url(&format!("/invite?token={second}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200);

    let (status, _) = s
        .delete(&format!("/api/v1/admin/users/{id}/invitation"), &admin)
        .await;
    assert_eq!(status, 204);
    let page = read(
        client()
            .get(s.url(&format!("/invite?token={second}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 400);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM users WHERE email = 'late@acme.test'"),
        0
    );
    assert_eq!(s.sql_i64("SELECT count(*) FROM links"), 0);

    // Revoking an accepted invitation is refused.
    let (_, body) = invite(&s, &admin, "kept@acme.test", "user").await;
    let (_, done) = accept(
        &s,
        &token_of(body["invite_url"].as_str().unwrap()),
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(done.status, 303);
    let kept = body["id"].as_i64().unwrap();
    let (status, body) = s
        .delete(&format!("/api/v1/admin/users/{kept}/invitation"), &admin)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "not_invited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_links_and_a_link_used_twice_at_once() {
    let s = server(None).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let admin = s.token("ada@acme.test").await;
    for bad in [
        "",
        "short",
        &"!".repeat(43),
        &"a".repeat(44),
        &"a".repeat(5000),
        "%00%0a",
    ] {
        for path in ["/invite", "/reset", "/settings/profile/email"] {
            let page = read(
                client()
                    .get(s.url(&format!("{path}?token={bad}")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(page.status, 400, "{path} {bad}: {}", page.body);
            assert!(page.body.contains("not valid"), "{}", page.body);
        }
    }

    let (_, body) = invite(&s, &admin, "twice@acme.test", "user").await;
    let token = token_of(body["invite_url"].as_str().unwrap());
    // Four browsers with the form open, then all four submit at once.
    let mut forms = Vec::new();
    for _ in 0..4 {
        let b = browser();
        let page = b
            .get(s.url(&format!("/invite?token={token}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = form_value(&page, "csrf").unwrap_or_else(|| panic!("{page}"));
        forms.push((b, csrf));
    }
    let mut tasks = Vec::new();
    for (b, csrf) in forms {
        let url = s.url("/invite");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            b.post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("token", token.as_str()),
                    ("name", "T"),
                    ("password", NEW_PASSWORD),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![303, 400, 400, 400],
        "exactly one acceptance wins"
    );
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = 'twice@acme.test')"), 1);

    // Bad input to the invitation API: clear 400s, no rows.
    let users = s.sql_i64("SELECT count(*) FROM users");
    for body in [
        json!({"email": "x".repeat(300) + "@acme.test", "name": "N", "role": "user", "invite": true}),
        json!({"email": "not an email", "name": "N", "role": "user", "invite": true}),
        json!({"email": "n@acme.test", "name": "N".repeat(300), "role": "user", "invite": true}),
        json!({"email": "n@acme.test", "name": "line\nbreak", "role": "user", "invite": true}),
        json!({"email": "n@acme.test", "name": "N", "role": "user"}),
        json!({"email": "n@acme.test", "name": "N", "role": "user", "invite": true, "password": NEW_PASSWORD}),
    ] {
        let (status, answer) = s.post("/api/v1/admin/users", &admin, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].is_string() && answer["message"].is_string());
    }
    assert_eq!(s.sql_i64("SELECT count(*) FROM users"), users);
}

async fn forgot(s: &TestServer, email: &str, from: &str) -> (Page, Duration) {
    let b = browser();
    let page = b
        .get(s.url("/forgot"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let started = Instant::now();
    let resp = b
        .post(s.url("/forgot"))
        .header("x-forwarded-for", from)
        .form(&[("csrf", csrf.as_str()), ("email", email)])
        .send()
        .await
        .unwrap();
    let page = read(resp).await;
    (page, started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_answers_the_same_and_mails_only_active_users() {
    let mail = SmtpServer::start().await;
    let s = server(Some(&mail)).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let off = s.user("Acme", "off@acme.test", Role::User).await;
    let admin = s.token("ada@acme.test").await;
    s.patch(
        &format!("/api/v1/admin/users/{}", off.id),
        &admin,
        json!({"status": "disabled"}),
    )
    .await;
    invite(&s, &admin, "inv@acme.test", "user").await;
    mail.wait_for(1, PROMPT).await;
    let before = mail.count();

    let mut bodies = Vec::new();
    for (i, email) in [
        "ann@acme.test",
        "nobody@acme.test",
        "off@acme.test",
        "inv@acme.test",
    ]
    .iter()
    .enumerate()
    {
        let (page, _) = forgot(&s, email, &format!("203.0.113.{i}")).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains(ANSWER), "{}", page.body);
        // The page is the same but for the form's token.
        let csrf = form_value(&page.body, "csrf").unwrap();
        bodies.push(page.body.replace(&csrf, ""));
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "one answer for every address"
    );
    let got = mail.wait_for(before + 1, PROMPT).await;
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    let got = if mail.count() > got.len() {
        mail.messages()
    } else {
        got
    };
    assert_eq!(
        got.len(),
        before + 1,
        "only the known active user gets a link"
    );
    assert_eq!(mails_to(&got, "ann@acme.test").len(), 1);

    // Timing: the answer is given before the address is looked up, so both take the
    // same time. Interleaved, from fresh addresses so no limit is hit.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..24 {
        let ip = format!("198.51.100.{i}");
        if i % 2 == 0 {
            known.push(forgot(&s, "ada@acme.test", &ip).await.1);
        } else {
            unknown.push(forgot(&s, &format!("ghost{i}@acme.test"), &ip).await.1);
        }
    }
    let (k, u) = (median(known), median(unknown));
    println!("forgot: median {k:?} for a known address, {u:?} for an unknown one");
    let gap = k.abs_diff(u);
    assert!(
        gap < Duration::from_millis(40),
        "known {k:?} vs unknown {u:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_is_limited_per_email_and_per_address() {
    let mail = SmtpServer::start().await;
    let s = server(Some(&mail)).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    for i in 0..5 {
        let (page, _) = forgot(&s, "ann@acme.test", &format!("203.0.113.{i}")).await;
        assert!(page.body.contains(ANSWER));
    }
    mail.wait_for(3, PROMPT).await;
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(mail.count(), 3, "3 per email per hour");
    // Only the newest of the three links works.
    let links = s.sql_i64("SELECT count(*) FROM links WHERE kind = 'reset' AND revoked_at IS NULL");
    assert_eq!(links, 1);
    let all = mail.messages();
    let oldest = token_of(&link_in(&all[0], "http"));
    let page = read(
        client()
            .get(s.url(&format!("/reset?token={oldest}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("replaced by a newer one"),
        "{}",
        page.body
    );

    s.user("Acme", "bob@acme.test", Role::User).await;
    for i in 0..11 {
        forgot(&s, &format!("p{i}@acme.test"), "192.0.2.1").await;
    }
    let (page, _) = forgot(&s, "bob@acme.test", "192.0.2.1").await;
    assert!(page.body.contains(ANSWER));
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        mails_to(&mail.messages(), "bob@acme.test").len(),
        0,
        "10 per address per hour"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_ends_every_session_and_forgets_devices() {
    let mail = SmtpServer::start().await;
    let s = server(Some(&mail)).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let phone = s
        .api_login_from("ann@acme.test", SAFARI_IPHONE, None, None)
        .await;
    let device = phone["device_id"].as_str().unwrap().to_string();
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;

    forgot(&s, "ann@acme.test", "203.0.113.9").await;
    let got = mail.wait_for(2, PROMPT).await;
    let url = link_in(with_subject(&got, "Reset your"), "http");
    assert!(url.contains("/reset?token="), "{url}");
    let token = token_of(&url);
    // GET alone changes nothing.
    let other = browser();
    let page = read(
        other
            .get(s.url(&format!("/reset?token={token}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(alive(&s, phone["token"].as_str().unwrap()).await);
    let csrf = form_value(&page.body, "csrf").unwrap();
    let weak = post_form(
        &other,
        &s,
        "/reset",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", "password2024"),
        ],
    )
    .await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("easy to guess"), "{}", weak.body);
    let done = post_form(
        &other,
        &s,
        "/reset",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location, "/login?reset=1");

    assert!(!alive(&s, phone["token"].as_str().unwrap()).await);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NULL"),
        0
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE end_reason = 'password_reset'"),
        2
    );
    assert_eq!(s.sql_i64("SELECT count(*) FROM devices"), 0);
    // The browser is told what happened.
    let next = read(
        b.get(s.url("/settings/security/sessions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let login = read(b.get(s.url(&next.location)).send().await.unwrap()).await;
    assert!(
        login
            .body
            .contains("Your password was reset, so all your sessions were ended."),
        "{}",
        login.body
    );
    // The notice.
    let got = mail.wait_for(3, PROMPT).await;
    with_subject(&got, "password was reset");
    // The link is spent.
    let again = post_form(
        &other,
        &s,
        "/reset",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", "another strong passphrase"),
        ],
    )
    .await;
    assert_eq!(again.status, 400);
    // The old phone is a new device now: its next sign-in alerts.
    let alerts = s.sql_i64("SELECT count(*) FROM alerts WHERE reasons = 'new_device'");
    let (status, _) = s
        .login_raw(
            "ann@acme.test",
            NEW_PASSWORD,
            SAFARI_IPHONE,
            None,
            Some(&device),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM alerts WHERE reasons = 'new_device'"),
        alerts + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_changes_only_after_confirmation() {
    let mail = SmtpServer::start().await;
    let s = server(Some(&mail)).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let ann = s.token("ann@acme.test").await;
    let (status, body) = s
        .post(
            "/api/v1/me/email",
            &ann,
            json!({"new_email": "ann@new.test", "current_password": "wrong one"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("wrong_password"))
    );
    let (status, body) = s
        .post(
            "/api/v1/me/email",
            &ann,
            json!({"new_email": "bob@acme.test", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("email_taken")));
    let (status, body) = s
        .post(
            "/api/v1/me/email",
            &ann,
            json!({"new_email": "ann@new.test", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let got = mail.wait_for(2, PROMPT).await;
    let to_new = mails_to(&got, "ann@new.test");
    assert_eq!(to_new.len(), 1);
    assert_eq!(
        mails_to(&got, "ann@acme.test").len(),
        1,
        "the old address is told at once"
    );
    let url = link_in(to_new[0], "http");
    assert!(url.contains("/settings/profile/email?token="), "{url}");
    let (_, me) = s.get("/api/v1/me", &ann).await;
    assert_eq!(me["user"]["email"], "ann@acme.test", "not changed yet");

    let b = browser();
    let page = read(b.get(local(&s, &url)).send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("ann@new.test"));
    let (_, me) = s.get("/api/v1/me", &ann).await;
    assert_eq!(me["user"]["email"], "ann@acme.test", "GET changes nothing");
    let csrf = form_value(&page.body, "csrf").unwrap();
    let no_csrf = post_form(
        &b,
        &s,
        "/settings/profile/email",
        &[("csrf", "forged"), ("token", &token_of(&url))],
    )
    .await;
    assert_eq!(no_csrf.status, 403);
    let done = post_form(
        &b,
        &s,
        "/settings/profile/email",
        &[("csrf", &csrf), ("token", &token_of(&url))],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let (_, me) = s.get("/api/v1/me", &ann).await;
    assert_eq!(me["user"]["email"], "ann@new.test");
    let got = mail.wait_for(3, PROMPT).await;
    let old = mails_to(&got, "ann@acme.test");
    assert_eq!(old.len(), 2, "the old address is told again");
    let changed = with_subject(&got, "The email of your Doorman account was changed");
    assert!(smtp::text_part(changed).contains("ann@new.test"));
    s.login_raw("ann@new.test", PASSWORD, CHROME_MAC, None, None)
        .await;
    let (status, _) = s
        .login_raw("ann@new.test", PASSWORD, CHROME_MAC, None, None)
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn password_change_name_and_policy_through_the_api() {
    let s = server(None).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ann = s.token("ann@acme.test").await;
    let other = s.token("ann@acme.test").await;
    for (weak, why) in [
        ("short", "at least 10 characters"),
        ("password1234", "too easy to guess"),
        ("ann@acme.test", "too easy to guess"),
    ] {
        let (status, body) = s
            .post(
                "/api/v1/me/password",
                &ann,
                json!({"current_password": PASSWORD, "new_password": weak}),
            )
            .await;
        assert_eq!(status, 400, "{weak}");
        assert_eq!(body["error"], "weak_password");
        assert!(
            body["message"].as_str().unwrap().contains(why),
            "{weak}: {body}"
        );
    }
    let (status, _) = s
        .post(
            "/api/v1/me/password",
            &ann,
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, 204);
    assert!(alive(&s, &ann).await, "this session stays");
    let (status, body) = s.get("/api/v1/me", &other).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Your password was changed, so your other sessions were ended."),
        "{body}"
    );

    let (status, body) = s
        .patch("/api/v1/me", &ann, json!({"name": "Ann Smith"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Ann Smith");
    let (status, _) = s.patch("/api/v1/me", &ann, json!({"name": ""})).await;
    assert_eq!(status, 400);

    // The admin API refuses a weak password too.
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let admin = s.token("ada@acme.test").await;
    let (status, body) = s
        .post(
            "/api/v1/admin/users",
            &admin,
            json!({"email": "w@acme.test", "name": "W", "role": "user", "password": "qwertyuiop"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("weak_password"))
    );
}

/// Who may do what to whom: user, admin of A, admin of B, the owner. Out of scope or
/// rank is 404.
#[tokio::test]
async fn roles_and_scopes_for_every_action() {
    let s = server(None).await;
    s.user("Ops", "owner@ops.test", Role::Owner).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    s.user("Beta", "bea@beta.test", Role::Admin).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let owner = s.token("owner@ops.test").await;
    let ada = s.token("ada@acme.test").await;
    let bea = s.token("bea@beta.test").await;
    let ann = s.token("ann@acme.test").await;
    let (_, inv) = invite(&s, &ada, "inv@acme.test", "user").await;
    let inv_id = inv["id"].as_i64().unwrap();
    let ann_id = s.sql_i64("SELECT id FROM users WHERE email = 'ann@acme.test'");
    let owner_id = s.sql_i64("SELECT id FROM users WHERE email = 'owner@ops.test'");
    let acme_id = s.sql_i64("SELECT id FROM accounts WHERE name = 'Acme'");

    let reset = format!("/api/v1/admin/users/{ann_id}/password-reset");
    let resend = format!("/api/v1/admin/users/{inv_id}/invitation");
    for token in [&ann, &bea] {
        assert_eq!(s.post(&reset, token, json!({})).await.0, 404);
        assert_eq!(s.post(&resend, token, json!({})).await.0, 404);
        assert_eq!(s.delete(&resend, token).await.0, 404);
        assert_eq!(
            s.delete(&format!("/api/v1/admin/users/{ann_id}"), token)
                .await
                .0,
            404
        );
        assert_eq!(
            s.patch(
                &format!("/api/v1/admin/users/{ann_id}"),
                token,
                json!({"role": "user"})
            )
            .await
            .0,
            404
        );
    }
    // An admin and the owner: out of rank.
    assert_eq!(
        s.post(
            &format!("/api/v1/admin/users/{owner_id}/password-reset"),
            &ada,
            json!({})
        )
        .await
        .0,
        404
    );
    let (_, list) = s.get("/api/v1/admin/users", &ada).await;
    let emails: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(
        !emails.contains(&"owner@ops.test") && !emails.contains(&"bea@beta.test"),
        "{emails:?}"
    );
    // Inviting above one's own role: 403.
    let (status, _) = invite(&s, &ada, "boss@acme.test", "owner").await;
    assert_eq!(status, 403);
    // In scope: they work.
    assert_eq!(s.post(&reset, &ada, json!({})).await.0, 202);
    assert_eq!(s.post(&resend, &ada, json!({})).await.0, 200);
    assert_eq!(s.post(&reset, &owner, json!({})).await.0, 202);
    let (status, body) = s
        .post(
            &format!("/api/v1/admin/users/{inv_id}/password-reset"),
            &ada,
            json!({}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("invited")));
    // Accounts: the owner only.
    assert_eq!(
        s.patch(
            &format!("/api/v1/admin/accounts/{acme_id}"),
            &ada,
            json!({"name": "X"})
        )
        .await
        .0,
        404
    );
    let (status, body) = s
        .patch(
            &format!("/api/v1/admin/accounts/{acme_id}"),
            &owner,
            json!({"name": "Acme Ltd"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Acme Ltd");
    let (status, body) = s
        .patch(
            &format!("/api/v1/admin/accounts/{acme_id}"),
            &owner,
            json!({"name": "Beta"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("account_taken"))
    );
    assert_eq!(
        s.patch("/api/v1/admin/accounts/99999", &owner, json!({"name": "Z"}))
            .await
            .0,
        404
    );
    // The pages answer 404 to those out of scope.
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    assert_eq!(
        b.get(s.url("/settings/team/users"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let b = browser();
    browser_login(&s, &b, "ada@acme.test").await;
    assert_eq!(
        b.get(s.url("/settings/team/accounts"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let page = read(b.get(s.url("/settings/team/users")).send().await.unwrap()).await;
    let csrf = form_value(&page.body, "csrf").unwrap();
    let out = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[
            ("csrf", &csrf),
            ("id", &owner_id.to_string()),
            ("action", "reset"),
        ],
    )
    .await;
    assert_eq!(out.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_page_does_every_action_with_csrf_and_confirmation() {
    let s = server(None).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    s.token("ann@acme.test").await;
    s.token("ann@acme.test").await;
    let b = browser();
    browser_login(&s, &b, "ada@acme.test").await;
    let page = read(b.get(s.url("/settings/team/users")).send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    for text in [
        "ann@acme.test",
        "Invite user",
        "Active sessions",
        "Last sign-in",
        "Users",
        "Profile",
        "Active Sessions",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
    assert!(page.body.contains(&format!(
        "/settings/security/sessions/users?user_id={}",
        ann.id
    )));
    assert!(
        page.body
            .contains(&format!("/settings/security/history?user_id={}", ann.id))
    );
    let csrf = form_value(&page.body, "csrf").unwrap();
    let id = ann.id.0.to_string();

    // CSRF: refused without the token.
    let forged = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[
            ("csrf", "nope"),
            ("id", &id),
            ("action", "disable"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM users WHERE status = 'disabled'"),
        0
    );

    // Disabling asks first, saying what it ends.
    let ask = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[("csrf", &csrf), ("id", &id), ("action", "disable")],
    )
    .await;
    assert_eq!(ask.status, 200);
    assert!(
        ask.body.contains("This ends 2 active sessions."),
        "{}",
        ask.body
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM users WHERE status = 'disabled'"),
        0
    );
    let done = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("action", "disable"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(done.status, 303);
    let after = read(b.get(s.url(&done.location)).send().await.unwrap()).await;
    assert!(
        after
            .body
            .contains("ann@acme.test was disabled; 2 sessions ended."),
        "{}",
        after.body
    );

    let enable = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[("csrf", &csrf), ("id", &id), ("action", "enable")],
    )
    .await;
    assert_eq!(enable.status, 303);
    let role = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("action", "role"),
            ("role", "admin"),
        ],
    )
    .await;
    assert_eq!(role.status, 303);
    assert_eq!(
        s.sql_text(&format!("SELECT role FROM users WHERE id = {id}"))
            .as_deref(),
        Some("admin")
    );
    let above = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("action", "role"),
            ("role", "owner"),
        ],
    )
    .await;
    assert_eq!(above.status, 403);
    assert!(above.body.contains("above yours"));
    let reset = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[("csrf", &csrf), ("id", &id), ("action", "reset")],
    )
    .await;
    assert_eq!(reset.status, 303);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM links WHERE kind = 'reset'"),
        1
    );

    // Inviting from the page shows the link once (email is off).
    let inv = post_form(
        &b,
        &s,
        "/settings/team/users/invite",
        &[
            ("csrf", &csrf),
            ("email", "neo@acme.test"),
            ("name", "Neo"),
            ("role", "user"),
        ],
    )
    .await;
    assert_eq!(inv.status, 200);
    assert!(inv.body.contains("/invite?token="), "{}", inv.body);
    let again = read(b.get(s.url("/settings/team/users")).send().await.unwrap()).await;
    assert!(!again.body.contains("/invite?token="), "shown once");
    assert!(again.body.contains("invited"));
    let dup = post_form(
        &b,
        &s,
        "/settings/team/users/invite",
        &[
            ("csrf", &csrf),
            ("email", "neo@acme.test"),
            ("name", "Neo"),
            ("role", "user"),
        ],
    )
    .await;
    assert_eq!(dup.status, 409);
    assert!(dup.body.contains("already exists"));

    // Deleting asks, then erases.
    let ask = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[("csrf", &csrf), ("id", &id), ("action", "delete")],
    )
    .await;
    assert!(ask.body.contains("Delete ann@acme.test?"), "{}", ask.body);
    let done = post_form(
        &b,
        &s,
        "/settings/team/users/action",
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("action", "delete"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM users WHERE email = 'ann@acme.test'"),
        0
    );
    assert_eq!(
        s.sql_i64(&format!("SELECT count(*) FROM links WHERE user_id = {id}")),
        0
    );

    // Search by name.
    let found = read(
        b.get(s.url("/settings/team/users?q=NEO"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(found.body.contains("neo@acme.test") && !found.body.contains("ada@acme.test</td>"));
}

#[tokio::test]
async fn profile_and_accounts_pages() {
    let s = server(None).await;
    s.user("Ops", "owner@ops.test", Role::Owner).await;
    let b = browser();
    browser_login(&s, &b, "owner@ops.test").await;
    let page = read(b.get(s.url("/settings/profile")).send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    for text in [
        "Profile",
        "Change email",
        "Change password",
        "Download my data",
        "Accounts",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
    // The old password page moved here.
    let old = read(
        b.get(s.url("/settings/security/password"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(old.status, 308);
    assert_eq!(old.location, "/settings/profile#password");
    let csrf = form_value(&page.body, "csrf").unwrap();
    let name = post_form(
        &b,
        &s,
        "/settings/profile/name",
        &[("csrf", &csrf), ("name", "Olivia")],
    )
    .await;
    assert_eq!(name.location, "/settings/profile?done=name");
    let weak = post_form(
        &b,
        &s,
        "/settings/profile/password",
        &[("csrf", &csrf), ("current", PASSWORD), ("new", "password")],
    )
    .await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("at least 10 characters"));
    let ok = post_form(
        &b,
        &s,
        "/settings/profile/password",
        &[
            ("csrf", &csrf),
            ("current", PASSWORD),
            ("new", NEW_PASSWORD),
            ("keep_current", "yes"),
        ],
    )
    .await;
    assert_eq!(ok.status, 303);
    let after = read(b.get(s.url(&ok.location)).send().await.unwrap()).await;
    assert!(
        after.body.contains("Your password was changed."),
        "{}",
        after.body
    );

    let accounts = read(
        b.get(s.url("/settings/team/accounts"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(accounts.body.contains("Ops"));
    let made = post_form(
        &b,
        &s,
        "/settings/team/accounts/create",
        &[("csrf", &csrf), ("name", "Gamma")],
    )
    .await;
    assert_eq!(made.status, 303);
    let id = s
        .sql_i64("SELECT id FROM accounts WHERE name = 'Gamma'")
        .to_string();
    let renamed = post_form(
        &b,
        &s,
        "/settings/team/accounts/rename",
        &[("csrf", &csrf), ("id", &id), ("name", "Gamma Ltd")],
    )
    .await;
    assert_eq!(renamed.status, 303);
    let shown = read(b.get(s.url(&renamed.location)).send().await.unwrap()).await;
    assert!(shown.body.contains("The account is now called Gamma Ltd."));
    let taken = post_form(
        &b,
        &s,
        "/settings/team/accounts/rename",
        &[("csrf", &csrf), ("id", &id), ("name", "Ops")],
    )
    .await;
    assert_eq!(taken.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_address_can_cancel_an_email_change() {
    let mail = SmtpServer::start().await;
    let s = server(Some(&mail)).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ann = s.token("ann@acme.test").await;
    let (status, body) = s
        .post(
            "/api/v1/me/email",
            &ann,
            json!({"new_email": "ann@new.test", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    // The old address hears of it at once, with a link that cancels it.
    let got = mail.wait_for(2, PROMPT).await;
    let notice = with_subject(&got, "Someone asked to change the email");
    assert!(
        smtp::header(notice, "To")
            .unwrap()
            .contains("ann@acme.test")
    );
    let text = smtp::text_part(notice);
    assert!(text.contains("ann@new.test"), "{text}");
    let cancel = link_in(notice, "http");
    assert!(
        cancel.contains("/settings/profile/email/cancel?token="),
        "{cancel}"
    );
    let confirm = link_in(mails_to(&got, "ann@new.test")[0], "http");
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM links WHERE kind = 'email_cancel'"),
        1
    );
    let hash: String = doorman::domain::tokens::hash_token(&token_of(&cancel))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM links WHERE kind = 'email_cancel' AND token_hash = x'{hash}'"
        )),
        1,
        "the link is stored as its hash"
    );

    // GET (a mail scanner) shows what it would cancel and changes nothing.
    let b = browser();
    let page = read(b.get(local(&s, &cancel)).send().await.unwrap()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("ann@new.test"), "{}", page.body);
    let csrf = form_value(&page.body, "csrf").unwrap();
    let confirm_page = read(b.get(local(&s, &confirm)).send().await.unwrap()).await;
    assert_eq!(confirm_page.status, 200, "still pending after a GET");
    let forged = post_form(
        &b,
        &s,
        "/settings/profile/email/cancel",
        &[("csrf", "forged"), ("token", &token_of(&cancel))],
    )
    .await;
    assert_eq!(forged.status, 403);

    // The POST cancels, and says so.
    let done = post_form(
        &b,
        &s,
        "/settings/profile/email/cancel",
        &[("csrf", &csrf), ("token", &token_of(&cancel))],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Email change cancelled"),
        "{}",
        done.body
    );
    assert!(done.body.contains("ann@acme.test"), "{}", done.body);

    // The confirmation link then does nothing, and says why.
    let page = read(b.get(local(&s, &confirm)).send().await.unwrap()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("was cancelled"), "{}", page.body);
    let csrf = form_value(
        &read(b.get(s.url("/login")).send().await.unwrap())
            .await
            .body,
        "csrf",
    )
    .unwrap();
    let refused = post_form(
        &b,
        &s,
        "/settings/profile/email",
        &[("csrf", &csrf), ("token", &token_of(&confirm))],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("was cancelled"), "{}", refused.body);
    let (_, me) = s.get("/api/v1/me", &ann).await;
    assert_eq!(me["user"]["email"], "ann@acme.test", "the email stays");

    // The cancel link works once.
    let again = post_form(
        &b,
        &s,
        "/settings/profile/email/cancel",
        &[("csrf", &csrf), ("token", &token_of(&cancel))],
    )
    .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("already been used"), "{}", again.body);

    // A change that completes: its cancel link then says it was made, and changes
    // nothing; the old address was told twice.
    let (status, _) = s
        .post(
            "/api/v1/me/email",
            &ann,
            json!({"new_email": "ann@other.test", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 202);
    let got = mail.wait_for(4, PROMPT).await;
    let confirm = link_in(mails_to(&got, "ann@other.test")[0], "http");
    let notices: Vec<&String> = mails_to(&got, "ann@acme.test")
        .into_iter()
        .filter(|m| smtp::text_part(m).contains("ann@other.test"))
        .collect();
    assert_eq!(notices.len(), 1);
    let cancel = link_in(notices[0], "http");
    let page = read(b.get(local(&s, &confirm)).send().await.unwrap()).await;
    let csrf = form_value(&page.body, "csrf").unwrap();
    let done = post_form(
        &b,
        &s,
        "/settings/profile/email",
        &[("csrf", &csrf), ("token", &token_of(&confirm))],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let got = mail.wait_for(5, PROMPT).await;
    let changed = mails_to(&got, "ann@acme.test")
        .into_iter()
        .filter(|m| {
            smtp::decode_words(&smtp::header(m, "Subject").unwrap_or_default())
                .contains("was changed")
        })
        .count();
    assert_eq!(
        changed, 1,
        "the completed change is told to the old address"
    );
    let page = read(b.get(local(&s, &cancel)).send().await.unwrap()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("already made"), "{}", page.body);
    let (_, me) = s.get("/api/v1/me", &ann).await;
    assert_eq!(me["user"]["email"], "ann@other.test");
}
