//! Sign-in alerts (SPEC §5) and login records (SPEC §1), end to end: the real server,
//! real HTTP, and a real SMTP receiver on a loopback TCP port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::smtp::{self, SmtpServer};
use common::{CHROME_MAC, FIREFOX_WIN, PASSWORD, SAFARI_IPHONE, TestServer};
use doorman::config::Cidr;
use doorman::model::Role;
use serde_json::{Value, json};

/// Deliberately with a trailing slash: links must not get a double slash.
const PUBLIC_URL: &str = "http://doorman.test:8080/";
const PUBLIC_BASE: &str = "http://doorman.test:8080";
/// London, United Kingdom (checked by `first_sign_in`).
const GB: &str = "81.2.69.142";
/// Another address in the United Kingdom.
const GB_OTHER: &str = "81.2.69.160";
/// United States.
const US: &str = "8.8.8.8";

/// Longer than the worker takes to react to a wake-up (it is woken at once and polls
/// every 5 s), so "nothing arrived" means nothing was sent.
const QUIET: Duration = Duration::from_millis(1500);
/// Time allowed for a mail that is due now.
const PROMPT: Duration = Duration::from_secs(5);
/// Time allowed for a mail after a failed attempt (backoff 5 s, poll 5 s).
const AFTER_RETRY: Duration = Duration::from_secs(15);

/// A server that believes `X-Forwarded-For` from 127.0.0.1 and mails through `smtp_url`.
async fn start(smtp_url: Option<String>) -> TestServer {
    common::start_with(move |cfg| {
        if let Some(url) = smtp_url {
            cfg.mail.smtp_url = url;
        }
        cfg.server.public_url = PUBLIC_URL.into();
        cfg.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        // These tests are about SPEC §5's two reasons: no journey on Earth is this long,
        // so §14's impossible journey (tests/locations.rs) never joins them.
        cfg.alerts.travel_min_km = 25_000.0;
    })
    .await
}

fn device_of(login: &Value) -> String {
    login["device_id"].as_str().unwrap().to_string()
}

fn token_of(login: &Value) -> String {
    login["token"].as_str().unwrap().to_string()
}

fn alert_rows(server: &TestServer) -> i64 {
    server.sql_i64("SELECT count(*) FROM alerts")
}

fn status_count(server: &TestServer, status: &str) -> i64 {
    server.sql_i64(&format!(
        "SELECT count(*) FROM alerts WHERE status = '{status}'"
    ))
}

/// Polls `cond` every 50 ms for at most `limit`; true when it held.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Exactly one message arrives (and no second one shortly after); returns it.
async fn exactly_one(smtp: &SmtpServer, limit: Duration) -> String {
    let got = smtp.wait_for(1, limit).await;
    assert_eq!(got.len(), 1, "expected one alert email within {limit:?}");
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    let all = smtp.messages();
    assert_eq!(
        all.len(),
        1,
        "expected exactly one alert email, got {all:#?}"
    );
    all[0].clone()
}

/// The token of the "Not you? End this session" link in a mail's text.
fn end_token(text: &str) -> String {
    let marker = format!("{PUBLIC_BASE}/alerts/end?t=");
    let start = text.find(&marker).expect("end-session link in the mail") + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert!(token.len() > 40, "link token looks truncated: {token}");
    token
}

fn subject(raw: &str) -> String {
    smtp::header(raw, "subject").expect("Subject header")
}

/// "Name version" as the mail shows it (the name alone when there is no version).
fn joined(name: &Value, version: &Value) -> String {
    let (n, v) = (name.as_str().unwrap(), version.as_str().unwrap());
    if v.is_empty() {
        n.to_string()
    } else {
        format!("{n} {v}")
    }
}

/// "London, United Kingdom", "United States" or "Unknown", as the server labels it.
fn location_label(session: &Value) -> String {
    let l = &session["location"];
    match (l["city"].as_str(), l["country"].as_str()) {
        (Some(city), Some(country)) => format!("{city}, {country}"),
        (None, Some(country)) => country.to_string(),
        (Some(city), None) => city.to_string(),
        (None, None) => "Unknown".into(),
    }
}

fn unix(rfc3339: &Value) -> i64 {
    time::OffsetDateTime::parse(
        rfc3339.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

/// A first sign-in from the United Kingdom; returns its device id.
async fn first_sign_in(server: &TestServer, email: &str) -> String {
    let login = server
        .api_login_from(email, CHROME_MAC, Some(GB), None)
        .await;
    assert_eq!(
        login["session"]["location"]["country_code"], "GB",
        "test assumption: {GB} is in the United Kingdom"
    );
    device_of(&login)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sign_in_and_same_device_and_country_send_nothing() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;

    let device = first_sign_in(&server, "ann@acme.test").await;
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 0, "the very first sign-in sends nothing");
    assert_eq!(alert_rows(&server), 0, "and queues nothing");

    // Same device, same country (even another address there, another browser).
    server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), Some(&device))
        .await;
    let other = server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB_OTHER), Some(&device))
        .await;
    assert_eq!(other["session"]["location"]["country_code"], "GB");
    assert_eq!(device_of(&other), device, "a presented device id is kept");
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 0, "known device, known country: no mail");
    assert_eq!(alert_rows(&server), 0);
    assert_eq!(smtp.connections(), 0, "nothing even connected to SMTP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_sends_one_mail_with_the_details() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    first_sign_in(&server, "ann@acme.test").await;

    // No device id: a new device, from the same country.
    let login = server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    let raw = exactly_one(&smtp, PROMPT).await;

    assert_eq!(subject(&raw), "New sign-in to Doorman from a new device");
    let to = smtp::header(&raw, "to").unwrap();
    assert!(to.contains("ann@acme.test"), "To: {to}");
    let envelopes = smtp.envelopes();
    assert_eq!(envelopes[0].to, vec!["ann@acme.test".to_string()]);
    assert!(
        smtp::header(&raw, "content-type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "text and HTML alternatives"
    );

    let session = &login["session"];
    let text = smtp::text_part(&raw);
    assert!(
        text.contains("signed in to from a new device."),
        "reason in the text: {text}"
    );
    let when = doorman::clock::utc(unix(&session["created_at"]));
    let device = &session["device"];
    let expected = [
        format!("When: {when}"),
        format!("Device: {}", device["category"].as_str().unwrap()),
        format!(
            "Browser: {}",
            joined(&device["browser"], &device["browser_version"])
        ),
        format!(
            "Operating system: {}",
            joined(&device["os"], &device["os_version"])
        ),
        format!("IP address: {GB}"),
        format!("Location: {}", location_label(session)),
    ];
    for line in &expected {
        assert!(
            text.lines().any(|l| l.trim_end() == line),
            "missing line `{line}` in:\n{text}"
        );
    }
    // Independently of how the server parses: the facts themselves.
    assert!(text.contains("Firefox"), "{text}");
    assert!(text.contains("Windows"), "{text}");
    assert!(text.contains("United Kingdom"), "{text}");
    assert_eq!(device["category"], "Desktop");

    let sessions_link = format!("{PUBLIC_BASE}/settings/security/sessions");
    assert!(text.contains(&sessions_link), "sessions link: {text}");
    assert!(!text.contains("8080//"), "no double slash in links: {text}");
    let token = end_token(&text);
    assert!(text.contains("Not you? End this session"));

    let html = smtp::html_part(&raw);
    assert!(html.contains(&sessions_link), "{html}");
    assert!(html.contains(&format!("/alerts/end?t={token}")), "{html}");
    assert!(html.contains("a new device"), "{html}");
    assert!(html.contains(GB), "{html}");

    // The outbox row agrees.
    assert_eq!(alert_rows(&server), 1);
    assert_eq!(status_count(&server, "sent"), 1);
    assert_eq!(
        server.sql_text("SELECT reasons FROM alerts").as_deref(),
        Some("new_device")
    );
    assert_eq!(server.sql_i64("SELECT attempts FROM alerts"), 1);
    assert_eq!(
        server.sql_i64("SELECT sent_at IS NOT NULL AND last_error IS NULL FROM alerts"),
        1
    );
    let message_id = server.sql_text("SELECT message_id FROM alerts").unwrap();
    assert_eq!(smtp::header(&raw, "message-id"), Some(message_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_country_from_a_known_device_sends_one_mail() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    let device = first_sign_in(&server, "ann@acme.test").await;

    let login = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(US), Some(&device))
        .await;
    assert_eq!(
        login["session"]["location"]["country_code"], "US",
        "test assumption: {US} is in the United States"
    );
    let raw = exactly_one(&smtp, PROMPT).await;
    assert_eq!(subject(&raw), "New sign-in to Doorman from a new country");
    let text = smtp::text_part(&raw);
    assert!(text.contains(&format!("IP address: {US}")), "{text}");
    assert!(text.contains("United States"), "{text}");
    assert_eq!(
        server.sql_text("SELECT reasons FROM alerts").as_deref(),
        Some("new_country")
    );

    // Both countries are known now: back and forth sends nothing more.
    server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(US), Some(&device))
        .await;
    server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB_OTHER), Some(&device))
        .await;
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 1, "known countries do not alert again");
    assert_eq!(alert_rows(&server), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_and_new_country_send_one_mail_naming_both() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    first_sign_in(&server, "ann@acme.test").await;

    server
        .api_login_from("ann@acme.test", SAFARI_IPHONE, Some(US), None)
        .await;
    let raw = exactly_one(&smtp, PROMPT).await;
    assert_eq!(
        subject(&raw),
        "New sign-in to Doorman from a new device and a new country"
    );
    let text = smtp::text_part(&raw);
    assert!(
        text.contains("from a new device and a new country."),
        "{text}"
    );
    assert!(text.contains("Safari"), "{text}");
    assert!(text.contains("iOS") || text.contains("iPhone"), "{text}");
    assert_eq!(alert_rows(&server), 1, "one alert for both reasons");
    assert_eq!(
        server.sql_text("SELECT reasons FROM alerts").as_deref(),
        Some("new_device,new_country")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_country_never_counts_as_new() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    let device = first_sign_in(&server, "ann@acme.test").await;

    // Private, loopback (no header: the peer itself) and unique-local IPv6 addresses.
    for xff in [Some("10.1.2.3"), None, Some("192.168.7.8"), Some("fd00::1")] {
        let login = server
            .api_login_from("ann@acme.test", CHROME_MAC, xff, Some(&device))
            .await;
        assert_eq!(
            login["session"]["location"]["country_code"],
            Value::Null,
            "{xff:?} has no country"
        );
        let expected_ip = xff.unwrap_or("127.0.0.1");
        assert_eq!(login["session"]["ip"], expected_ip);
    }
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 0, "an unknown country is never new");
    assert_eq!(alert_rows(&server), 0);

    // And the known country afterwards is still known.
    server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), Some(&device))
        .await;
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 0);
    assert_eq!(alert_rows(&server), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_session_link_get_changes_nothing_post_ends_once() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    let first = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), None)
        .await;
    let mine = token_of(&first);

    let intruder = server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(US), None)
        .await;
    let theirs = token_of(&intruder);
    let raw = exactly_one(&smtp, PROMPT).await;
    let text = smtp::text_part(&raw);
    let t = end_token(&text);
    // The mail's links point at the public URL; the test server listens elsewhere.
    let link = server.url(&format!("/alerts/end?t={t}"));

    // GET (what a mail scanner does) shows the page and changes nothing.
    for _ in 0..2 {
        let resp = common::client().get(&link).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let page = resp.text().await.unwrap();
        assert!(page.contains("End this session"), "{page}");
        assert!(page.contains(US), "the page names the sign-in: {page}");
        assert!(page.contains("method=\"post\""), "{page}");
        assert!(!page.contains("used already"), "{page}");
    }
    let (st, me) = server.get("/api/v1/me", &theirs).await;
    assert_eq!(st, 200, "GET on the link must not end the session: {me}");
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM alerts WHERE link_used_at IS NOT NULL"),
        0
    );

    // POST ends it.
    let resp = common::client()
        .post(server.url("/alerts/end"))
        .form(&[("t", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("<h1>Session ended</h1>"), "{page}");
    assert!(page.contains("<title>Session ended"), "{page}");
    assert!(
        page.contains("/settings/security/password"),
        "offers a new password"
    );
    let (st, _) = server.get("/api/v1/me", &theirs).await;
    assert_eq!(st, 401, "the ended session is refused at once");
    let (st, _) = server.get("/api/v1/me", &mine).await;
    assert_eq!(st, 200, "only the alerted session ended");
    let public_id = intruder["session"]["id"].as_str().unwrap();
    assert_eq!(
        server
            .sql_text(&format!(
                "SELECT end_reason FROM sessions WHERE public_id = '{public_id}'"
            ))
            .as_deref(),
        Some("terminated")
    );

    // Used: a second POST ends nothing and says so; GET says so too.
    let resp = common::client()
        .post(server.url("/alerts/end"))
        .form(&[("t", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("<h1>Nothing to end</h1>"), "{page}");
    assert!(
        !page.contains("Session ended"),
        "neither heading nor title may claim an end: {page}"
    );
    let page = common::client()
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("used already"), "{page}");
    assert!(
        !page.contains("method=\"post\" action=\"/alerts/end\""),
        "{page}"
    );
    let (st, _) = server.get("/api/v1/me", &mine).await;
    assert_eq!(st, 200, "a reused link harms nothing");

    // A forged token is refused and changes nothing.
    let mut forged = t.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let resp = common::client()
        .post(server.url("/alerts/end"))
        .form(&[("t", forged.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (st, _) = server.get("/api/v1/me", &mine).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_does_not_slow_sign_in_and_mail_goes_out_when_it_is_back() {
    let mut smtp = SmtpServer::down().await;
    let server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    first_sign_in(&server, "ann@acme.test").await;

    let started = Instant::now();
    let (status, body) = server
        .login_raw("ann@acme.test", PASSWORD, FIREFOX_WIN, Some(GB), None)
        .await;
    let took = started.elapsed();
    assert_eq!(status, 201, "{body}");
    assert!(
        took < Duration::from_secs(2),
        "sign-in waited on SMTP: {took:?}"
    );
    assert_eq!(alert_rows(&server), 1, "queued in the sign-in itself");

    let attempted = eventually(Duration::from_secs(5), || {
        server.sql_i64(
            "SELECT count(*) FROM alerts WHERE status = 'pending' AND attempts >= 1
               AND last_error IS NOT NULL AND last_error != ''",
        ) == 1
    })
    .await;
    assert!(
        attempted,
        "a failed attempt is recorded: {:?}",
        server.sql_text(
            "SELECT status || ' ' || attempts || ' ' || ifnull(last_error, '-') FROM alerts"
        )
    );
    assert_eq!(
        server.sql_i64("SELECT next_attempt_at > created_at FROM alerts"),
        1,
        "retried later, with backoff"
    );

    smtp.restart().await;
    let raw = {
        let got = smtp.wait_for(1, AFTER_RETRY).await;
        assert_eq!(got.len(), 1, "the mail goes out once SMTP is back");
        got[0].clone()
    };
    assert_eq!(subject(&raw), "New sign-in to Doorman from a new device");
    assert!(
        eventually(Duration::from_secs(2), || status_count(&server, "sent")
            == 1)
        .await,
        "marked sent"
    );
    assert_eq!(
        server.sql_i64("SELECT attempts >= 2 AND last_error IS NULL FROM alerts"),
        1
    );
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 1, "sent exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_alert_survives_a_restart_and_is_sent_once() {
    let mut smtp = SmtpServer::down().await;
    let mut server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    first_sign_in(&server, "ann@acme.test").await;
    server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(US), None)
        .await;
    assert!(
        eventually(Duration::from_secs(5), || {
            server.sql_i64("SELECT count(*) FROM alerts WHERE status = 'pending' AND attempts >= 1")
                == 1
        })
        .await,
        "first attempt failed while SMTP was down"
    );

    server.stop().await;
    smtp.restart().await;
    let server = server.restart().await;

    let got = smtp.wait_for(1, AFTER_RETRY).await;
    assert_eq!(got.len(), 1, "the pending alert is sent after the restart");
    assert_eq!(
        subject(&got[0]),
        "New sign-in to Doorman from a new device and a new country"
    );
    // A window that must pass: no second delivery within it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.count(), 1, "delivered exactly once");
    assert_eq!(status_count(&server, "sent"), 1);
    assert_eq!(alert_rows(&server), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_five_alerts_an_hour_and_the_next_says_how_many_were_held_back() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(smtp.url())).await;
    let ann = server.user("acme", "ann@acme.test", Role::User).await;
    first_sign_in(&server, "ann@acme.test").await;

    for _ in 0..7 {
        server
            .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
            .await;
    }
    let got = smtp.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 5, "five alerts are mailed");
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 5, "and no more within the hour");
    for raw in smtp.messages() {
        assert_eq!(subject(&raw), "New sign-in to Doorman from a new device");
        assert!(!smtp::text_part(&raw).contains("held back"));
    }
    assert_eq!(status_count(&server, "sent"), 5);
    assert_eq!(status_count(&server, "suppressed"), 2);
    assert_eq!(alert_rows(&server), 7);
    let newest_two = server.sql_i64(
        "SELECT count(*) FROM (SELECT status FROM alerts ORDER BY id DESC LIMIT 2)
          WHERE status = 'suppressed'",
    );
    assert_eq!(
        newest_two, 2,
        "the ones past the limit are the suppressed ones"
    );

    // An hour later (moved back in time rather than waited for).
    let moved = server.sql_exec(&format!(
        "UPDATE alerts SET created_at = created_at - 4000 WHERE user_id = {}",
        ann.id
    ));
    assert_eq!(moved, 7);
    server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    let got = smtp.wait_for(6, PROMPT).await;
    assert_eq!(got.len(), 6, "alerts flow again after the hour");
    let text = smtp::text_part(&got[5]);
    assert!(
        text.contains("2 more alerts were held back"),
        "the next alert reports the held-back ones: {text}"
    );
    assert_eq!(
        server.sql_i64("SELECT held_back FROM alerts ORDER BY id DESC LIMIT 1"),
        2
    );

    // Reported once only.
    server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    let got = smtp.wait_for(7, PROMPT).await;
    assert_eq!(got.len(), 7);
    assert!(!smtp::text_part(&got[6]).contains("held back"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_url_alerts_are_skipped_and_admins_are_told_email_is_off() {
    let server = start(None).await;
    assert!(server.state.mailer.is_none());
    server.user("acme", "ada@acme.test", Role::Admin).await;
    first_sign_in(&server, "ada@acme.test").await;
    server
        .api_login_from("ada@acme.test", FIREFOX_WIN, Some(US), None)
        .await;
    assert_eq!(alert_rows(&server), 1, "the alert is still kept");
    assert!(
        eventually(PROMPT, || status_count(&server, "skipped") == 1).await,
        "the worker marks the alert skipped"
    );
    assert_eq!(
        server
            .sql_i64("SELECT attempts = 0 AND last_error IS NULL AND sent_at IS NULL FROM alerts"),
        1,
        "no delivery was attempted"
    );

    let browser = common::browser();
    common::browser_login(&server, &browser, "ada@acme.test").await;
    let page = browser
        .get(server.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Email alerts are off"), "{page}");

    // With SMTP configured the notice is absent.
    let smtp = SmtpServer::start().await;
    let with_mail = start(Some(smtp.url())).await;
    with_mail.user("acme", "ada@acme.test", Role::Admin).await;
    let browser = common::browser();
    common::browser_login(&with_mail, &browser, "ada@acme.test").await;
    let page = browser
        .get(with_mail.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("This device"), "{page}");
    assert!(!page.contains("Email alerts are off"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_cannot_inject_mail_headers() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(smtp.url())).await;
    server.user("acme", "ada@acme.test", Role::Admin).await;
    let admin = server.token("ada@acme.test").await;
    let evil = "Eve\r\nBcc: x@evil.test";

    let (st, body) = server
        .post(
            "/api/v1/admin/users",
            &admin,
            json!({"email": "eve@acme.test", "name": evil, "role": "user", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM users WHERE email = 'eve@acme.test'"),
        0
    );

    // A row that got such a name anyway (older data, direct edits): the mail must still
    // carry it encoded, never as a header line of its own.
    let eve = server.user("acme", "eve@acme.test", Role::User).await;
    server.sql_exec(&format!(
        "UPDATE users SET name = 'Eve' || char(13, 10) || 'Bcc: x@evil.test' WHERE id = {}",
        eve.id
    ));
    first_sign_in(&server, "eve@acme.test").await;
    server
        .api_login_from("eve@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    let raw = exactly_one(&smtp, PROMPT).await;
    let head = smtp::header_block(&raw);
    for line in head.split("\r\n") {
        assert!(
            !line.to_ascii_lowercase().starts_with("bcc:"),
            "injected header line `{line}` in:\n{head}"
        );
    }
    let allowed = [
        "from",
        "to",
        "subject",
        "message-id",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    ];
    for (name, _) in smtp::headers(&raw) {
        assert!(
            allowed.contains(&name.to_ascii_lowercase().as_str()),
            "unexpected header `{name}` in:\n{head}"
        );
    }
    assert_eq!(
        smtp.envelopes()[0].to,
        vec!["eve@acme.test".to_string()],
        "no extra recipient"
    );
    let to = smtp::header(&raw, "to").unwrap();
    assert!(to.contains("<eve@acme.test>"), "To: {to}");
    // Encoded, the name survives without its line break.
    assert_eq!(
        smtp::decode_words(&to),
        "Eve  Bcc: x@evil.test <eve@acme.test>",
        "To: {to}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_records_list_successes_and_failures_newest_first() {
    let server = start(None).await;
    let ann = server.user("acme", "ann@acme.test", Role::User).await;
    server.user("acme", "carl@acme.test", Role::User).await;
    server.user("acme", "ada@acme.test", Role::Admin).await;
    server.user("globex", "gil@globex.test", Role::Admin).await;

    let gb = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), None)
        .await;
    let (st, _) = server
        .login_raw(
            "ann@acme.test",
            "wrong password!",
            FIREFOX_WIN,
            Some(US),
            None,
        )
        .await;
    assert_eq!(st, 401);
    let token = token_of(
        &server
            .api_login_from("ann@acme.test", SAFARI_IPHONE, None, Some(&device_of(&gb)))
            .await,
    );

    let (st, body) = server.get("/api/v1/login-records", &token).await;
    assert_eq!(st, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{body}");
    assert_eq!(body["next_cursor"], Value::Null);
    // Newest first.
    let ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let ats: Vec<i64> = items.iter().map(|i| unix(&i["at"])).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "{ats:?}");

    let (newest, failure, oldest) = (&items[0], &items[1], &items[2]);
    assert_eq!(newest["success"], true);
    assert_eq!(newest["reason"], "ok");
    assert_eq!(newest["ip"], "127.0.0.1");
    assert_eq!(newest["location"]["country_code"], Value::Null);
    assert_eq!(newest["device"]["browser"], "Safari");

    assert_eq!(failure["success"], false);
    assert_eq!(failure["reason"], "wrong_password");
    assert_eq!(failure["email"], "ann@acme.test");
    assert_eq!(failure["ip"], US);
    assert_eq!(failure["location"]["country_code"], "US");
    assert_eq!(failure["device"]["browser"], "Firefox");
    assert_eq!(failure["device"]["category"], "Desktop");

    assert_eq!(oldest["success"], true);
    assert_eq!(oldest["ip"], GB);
    assert_eq!(oldest["location"]["country_code"], "GB");
    assert_eq!(oldest["location"]["country"], "United Kingdom");
    assert_eq!(oldest["device"]["browser"], "Chrome");

    // Paging.
    let (st, page1) = server.get("/api/v1/login-records?limit=2", &token).await;
    assert_eq!(st, 200);
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (st, page2) = server
        .get(
            &format!("/api/v1/login-records?limit=2&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["items"][0]["id"].as_i64(), Some(ids[2]));

    // Someone else's records: only an admin in scope may see them; others get 404.
    let path = format!("/api/v1/login-records?user_id={}", ann.id);
    let carl = server.token("carl@acme.test").await;
    let (st, body) = server.get(&path, &carl).await;
    assert_eq!(st, 404, "a plain user of the same account: {body}");
    let gil = server.token("gil@globex.test").await;
    let (st, body) = server.get(&path, &gil).await;
    assert_eq!(st, 404, "an admin of another account: {body}");
    let ada = server.token("ada@acme.test").await;
    let (st, body) = server.get(&path, &ada).await;
    assert_eq!(st, 200, "an admin of the same account: {body}");
    let theirs: Vec<i64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(theirs, ids, "the admin sees ann's records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_page_shows_sign_ins_and_refusals() {
    let server = start(None).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    let gb = server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    let (st, _) = server
        .login_raw(
            "ann@acme.test",
            "not the password",
            CHROME_MAC,
            Some(US),
            None,
        )
        .await;
    assert_eq!(st, 401);

    let browser = common::browser();
    common::browser_login(&server, &browser, "ann@acme.test").await;
    let resp = browser
        .get(server.url("/settings/security/history"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    for needle in [
        "Signed in",
        "Refused",
        "wrong password",
        GB,
        US,
        "127.0.0.1",
        "Firefox 121",
        &location_label(&gb["session"]),
        "United States",
    ] {
        assert!(page.contains(needle), "`{needle}` missing from:\n{page}");
    }
    // Newest first: the browser sign-in, then the refusal, then the first sign-in.
    let (a, b, c) = (
        page.find("127.0.0.1").unwrap(),
        page.find(US).unwrap(),
        page.find(GB).unwrap(),
    );
    assert!(a < b && b < c, "newest first");

    // Signed out, the page is not shown.
    let resp = common::client()
        .get(server.url("/settings/security/history"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
}

/// Runs the real binary on the server's database, with no inherited DOORMAN_* settings.
fn doorman_cli(server: &TestServer, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DOORMAN_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .current_dir(server.dir.path())
        .env("DOORMAN_STORAGE__PATH", &server.db_path)
        .env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_alerts_with_their_status() {
    let mut smtp = SmtpServer::start().await;
    let mut server = start(Some(smtp.url())).await;
    server.user("acme", "ann@acme.test", Role::User).await;
    let device = first_sign_in(&server, "ann@acme.test").await;
    server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    assert_eq!(smtp.wait_for(1, PROMPT).await.len(), 1);
    assert!(
        eventually(Duration::from_secs(2), || status_count(&server, "sent")
            == 1)
        .await
    );

    // SMTP goes away (closing the connection the mailer may keep open): the next alert
    // stays pending with the error.
    smtp.stop().await;
    server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(US), Some(&device))
        .await;
    assert!(
        eventually(Duration::from_secs(5), || {
            server.sql_i64(
                "SELECT count(*) FROM alerts WHERE status = 'pending' AND last_error IS NOT NULL",
            ) == 1
        })
        .await,
        "the second alert failed its first attempt"
    );
    assert_eq!(smtp.count(), 1);
    let error = server
        .sql_text("SELECT last_error FROM alerts WHERE status = 'pending'")
        .unwrap();
    let sent_id = server.sql_i64("SELECT id FROM alerts WHERE status = 'sent'");
    let pending_id = server.sql_i64("SELECT id FROM alerts WHERE status = 'pending'");
    server.stop().await;

    let (ok, out) = doorman_cli(&server, &["alerts", "list"], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("STATUS"), "{out}");
    assert!(out.contains("2 alert(s)"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let pending = lines
        .iter()
        .position(|l| l.split_whitespace().next() == Some(&pending_id.to_string()))
        .expect("pending row listed");
    let sent = lines
        .iter()
        .position(|l| l.split_whitespace().next() == Some(&sent_id.to_string()))
        .expect("sent row listed");
    assert!(pending < sent, "newest first:\n{out}");
    let p: Vec<&str> = lines[pending].split_whitespace().collect();
    assert_eq!(p[1], "pending", "{out}");
    assert_eq!(p[2], "new_country", "{out}");
    let short_error: String = error.chars().take(20).collect();
    assert!(lines[pending].contains(&short_error), "error shown: {out}");
    let s: Vec<&str> = lines[sent].split_whitespace().collect();
    assert_eq!(s[1], "sent", "{out}");
    assert_eq!(s[2], "new_device", "{out}");
    assert_eq!(s[3], "1", "one attempt: {out}");

    // `alerts retry`: only unsent alerts, only with email on.
    let (ok, out) = doorman_cli(&server, &["alerts", "retry", &pending_id.to_string()], &[]);
    assert!(!ok, "retry needs mail.smtp_url: {out}");
    assert!(out.contains("email is off"), "{out}");
    let mail = [("DOORMAN_MAIL__SMTP_URL", smtp.url())];
    let mail: Vec<(&str, &str)> = mail.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, out) = doorman_cli(&server, &["alerts", "retry", &sent_id.to_string()], &mail);
    assert!(!ok, "a sent alert is not sent again: {out}");
    let (ok, out) = doorman_cli(
        &server,
        &["alerts", "retry", &pending_id.to_string()],
        &mail,
    );
    assert!(ok, "{out}");
    assert!(out.contains("queued"), "{out}");
    assert_eq!(
        server.sql_i64(&format!(
            "SELECT next_attempt_at <= strftime('%s','now') FROM alerts WHERE id = {pending_id}"
        )),
        1,
        "due now"
    );
}

#[test]
fn mail_decoding_used_by_these_tests() {
    assert_eq!(smtp::decode_qp("a=3Db=\r\nc"), "a=bc");
    assert_eq!(smtp::decode_qp("caf=C3=A9 =\r\n"), "café ");
    assert_eq!(
        smtp::decode_words("=?utf-8?b?Q2Fmw6k=?= <a@b.test>"),
        "Café <a@b.test>"
    );
    assert_eq!(smtp::decode_words("=?UTF-8?Q?Caf=C3=A9_x?= y"), "Café x y");
    assert_eq!(smtp::decode_words("plain =? text"), "plain =? text");
}
