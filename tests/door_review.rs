#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The door holds (SPEC §19), the review's smaller findings, against the real server:
//! device ids are credentials (never shown, and known only to the user Doorman gave them
//! to), the administrator's note on the sign-in page is signed for its session and an
//! hour, erasure reaches other people's records, and a known password stopped by the
//! second step is told to its owner.
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::factors::{enrol, password_step, second_step};
use common::smtp::{self, SmtpServer};
use common::*;
use doorman::config::{Cidr, WebhookConfig};
use doorman::model::Role;
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Response, Route, handler, post};
use serde_json::json;
use sha2::{Digest, Sha256};

const PROMPT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(1500);

fn loopback_is_a_proxy(c: &mut doorman::Config) {
    c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
}

/// What a device id may be shown as: the first 16 hex characters of its SHA-256.
fn device_hash(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..16]
        .to_string()
}

// ---- device ids are credentials ----

/// A webhook receiver that keeps every body it is sent.
#[derive(Clone, Default)]
struct Bodies(Arc<Mutex<Vec<String>>>);

#[handler]
async fn keep(body: String, bodies: Data<&Bodies>) -> Response {
    bodies.0.0.lock().unwrap().push(body);
    poem::http::StatusCode::NO_CONTENT.into_response()
}

async fn receiver() -> (SocketAddr, Bodies) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let bodies = Bodies::default();
    let app = Route::new().at("/hook", post(keep)).data(bodies.clone());
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).unwrap();
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    (addr, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_ids_are_never_shown_only_their_hash() {
    let (addr, hooks) = receiver().await;
    let s = start_with(|c| {
        c.webhooks = vec![WebhookConfig {
            url: format!("http://{addr}/hook"),
            secret: "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
            events: vec!["session.*".into(), "user.*".into()],
            timeout: Duration::from_secs(2),
        }];
    })
    .await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let first = s.api_login("ann@acme.test", CHROME_MAC).await;
    let device = first["device_id"].as_str().unwrap().to_string();
    let token = first["token"].as_str().unwrap().to_string();
    // Known again, and a failed attempt with it.
    s.api_login_with("ann@acme.test", CHROME_MAC, json!({"device_id": device}))
        .await;
    s.login_raw("ann@acme.test", "wrong", CHROME_MAC, None, Some(&device))
        .await;
    let ada = s.token("ada@acme.test").await;

    let mut shown = Vec::new();
    for (path, who) in [
        ("/api/v1/me/export".to_string(), &token),
        (format!("/api/v1/admin/users/{}/export", ann.id.0), &ada),
        ("/api/v1/events".to_string(), &token),
        ("/api/v1/admin/events".to_string(), &ada),
        ("/api/v1/sessions".to_string(), &token),
        ("/api/v1/admin/sessions".to_string(), &ada),
        ("/api/v1/me".to_string(), &token),
        ("/api/v1/login-records".to_string(), &token),
    ] {
        let (status, body) = s.get(&path, who).await;
        assert_eq!(status, 200, "{path}: {body}");
        shown.push((path, body.to_string()));
    }
    let until = Instant::now() + Duration::from_secs(10);
    while hooks.0.lock().unwrap().len() < 2 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = hooks.0.lock().unwrap().clone();
    assert!(delivered.len() >= 2, "session.created twice: {delivered:?}");
    for body in delivered {
        shown.push(("webhook".into(), body));
    }
    for (what, body) in &shown {
        assert!(
            !body.contains(&device),
            "{what} shows the device id: {body}"
        );
    }

    // What is shown instead: the hash, the same everywhere.
    let hash = device_hash(&device);
    let (_, export) = s.get("/api/v1/me/export", &token).await;
    assert_eq!(
        export["devices"][0]["device_hash"],
        hash.as_str(),
        "{export}"
    );
    assert_eq!(
        export["active_sessions"][0]["device_hash"],
        hash.as_str(),
        "{export}"
    );
    let created = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "session.created")
        .unwrap();
    assert_eq!(
        created["details"]["device_hash"],
        hash.as_str(),
        "{created}"
    );
    assert!(
        export["login_records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["device_hash"] == hash.as_str()),
        "{export}"
    );
}

/// Alerts about a new device for `email` so far.
fn new_device_alerts(s: &TestServer, email: &str) -> i64 {
    s.sql_i64(&format!(
        "SELECT count(*) FROM alerts a JOIN users u ON u.id = a.user_id
         WHERE u.email = '{email}' AND a.reasons LIKE '%new_device%'"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_id_doorman_gave_another_person_never_makes_a_sign_in_known() {
    let s = start_with(|c| {
        loopback_is_a_proxy(c);
        c.security.login_rate_limit.failures = 3;
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let ann = s
        .api_login_from("ann@acme.test", CHROME_MAC, Some("81.2.69.142"), None)
        .await;
    let anns = ann["device_id"].as_str().unwrap().to_string();
    let bob = s
        .api_login_from("bob@acme.test", CHROME_MAC, Some("81.2.69.142"), None)
        .await;
    let bobs = bob["device_id"].as_str().unwrap().to_string();

    // Signing in as Bob with Ann's device: a new device for Bob, and not Ann's id that
    // Bob's client is given to keep.
    let with_anns = s
        .api_login_from(
            "bob@acme.test",
            CHROME_MAC,
            Some("81.2.69.142"),
            Some(&anns),
        )
        .await;
    assert_eq!(new_device_alerts(&s, "bob@acme.test"), 1);
    assert_ne!(with_anns["device_id"], anns.as_str());
    // Again: still new, each time.
    let again = s
        .api_login_from(
            "bob@acme.test",
            CHROME_MAC,
            Some("81.2.69.142"),
            Some(&anns),
        )
        .await;
    assert_eq!(new_device_alerts(&s, "bob@acme.test"), 2);
    assert_ne!(again["device_id"], anns.as_str());
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM devices d JOIN users u ON u.id = d.user_id
             WHERE u.email = 'bob@acme.test' AND d.device_id = '{anns}'"
        )),
        0,
        "Ann's id is never recorded as Bob's"
    );

    // Nor does it lift the limit of Bob's email.
    for ip in ["9.9.9.1", "9.9.9.2", "9.9.9.3", "9.9.9.4"] {
        let (status, _) = s
            .login_raw("bob@acme.test", "guess", FIREFOX_WIN, Some(ip), None)
            .await;
        assert!(status == 401 || status == 429);
    }
    let (status, body) = s
        .login_raw(
            "bob@acme.test",
            PASSWORD,
            CHROME_MAC,
            Some("8.8.4.4"),
            Some(&anns),
        )
        .await;
    assert_eq!(
        status, 429,
        "Ann's device is no way around Bob's limit: {body}"
    );
    // Bob's own device, which Doorman gave him, still is known.
    let (status, body) = s
        .login_raw(
            "bob@acme.test",
            PASSWORD,
            CHROME_MAC,
            Some("8.8.4.4"),
            Some(&bobs),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["device_id"], bobs.as_str());
}

// ---- the administrator's note on the sign-in page ----

/// `address` with its query parameter `name` set to `value` (added when missing).
fn with_param(address: &str, name: &str, value: &str) -> String {
    let (path, query) = address.split_once('?').unwrap_or((address, ""));
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    match params.iter_mut().find(|(k, _)| k == name) {
        Some(p) => p.1 = value.to_string(),
        None => params.push((name.to_string(), value.to_string())),
    }
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", query.join("&"))
}

fn params_of(address: &str) -> HashMap<String, String> {
    address
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Percent-encodes a query parameter value.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn body_of(s: &TestServer, address: &str) -> String {
    client()
        .get(s.url(address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Where a browser whose session an administrator ended is sent.
async fn ended_address(s: &TestServer, b: &reqwest::Client) -> String {
    let resp = b
        .get(s.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    resp.headers()["location"].to_str().unwrap().to_string()
}

const NOTE: &str = "It was ended by an administrator (admin@acme.test): Laptop reported stolen.";
const PLAIN: &str =
    "Your session has ended. Please sign in again. It was ended by an administrator.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admins_note_shows_only_on_its_own_recent_address() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "admin@acme.test", Role::Admin).await;
    let admin = s.token("admin@acme.test").await;
    let (laptop, phone) = (browser(), browser());
    browser_login(&s, &laptop, "ann@acme.test").await;
    browser_login(&s, &phone, "ann@acme.test").await;
    let (_, list) = s.get("/api/v1/admin/sessions?q=ann", &admin).await;
    let ids: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    // The phone's session is the newer one (listed first).
    let (phone_id, laptop_id) = (&ids[0], &ids[1]);
    let end = |id: &str, reason: &str| {
        let path = format!("/api/v1/admin/sessions/{id}?reason={reason}");
        let (s, admin) = (&s, &admin);
        async move { s.delete(&path, admin).await.0 }
    };
    assert_eq!(end(laptop_id, "Laptop%20reported%20stolen").await, 204);
    assert_eq!(end(phone_id, "Phone%20replaced").await, 204);
    let address = ended_address(&s, &laptop).await;
    let other = ended_address(&s, &phone).await;

    // The genuine address shows the note.
    let genuine = body_of(&s, &address).await;
    assert!(genuine.contains(NOTE), "{genuine}");

    // Edited words: the plain notice.
    let page = body_of(&s, &address.replace("Laptop", "Call%20us%20at")).await;
    assert!(
        !page.contains("Call us at") && page.contains(PLAIN),
        "{page}"
    );
    // The words and signature copied onto an address without the session and expiry.
    let p = params_of(&address);
    let copied = format!(
        "/login?ended=terminated_by_admin&why={}&sig={}",
        p["why"], p["sig"]
    );
    let page = body_of(&s, &copied).await;
    assert!(!page.contains("Laptop") && page.contains(PLAIN), "{page}");
    // ... or onto the other session's address.
    let q = params_of(&other);
    let onto_other = with_param(&with_param(&other, "why", &p["why"]), "sig", &p["sig"]);
    let page = body_of(&s, &onto_other).await;
    assert!(!page.contains("Laptop") && page.contains(PLAIN), "{page}");
    // Another session's id in this address.
    let page = body_of(
        &s,
        &with_param(&address, "sid", q.get("sid").map_or("x", |v| v)),
    )
    .await;
    assert!(!page.contains("Laptop") && page.contains(PLAIN), "{page}");
    // A later expiry than the one signed.
    let page = body_of(&s, &with_param(&address, "exp", "99999999999")).await;
    assert!(!page.contains("Laptop") && page.contains(PLAIN), "{page}");

    // An address signed by this server's key an hour ago has expired: the plain notice;
    // the same, signed as still valid, shows the note (so only the expiry refused it).
    let text = "It was ended by an administrator (admin@acme.test): Laptop reported stolen.";
    let now = doorman::clock::now();
    /*CRAFT*/
    for (expires, shown) in [(now - 1, false), (now + 600, true)] {
        let sig = doorman::domain::signin::check::seal_notice(
            &s.state.link_key,
            laptop_id,
            expires,
            text,
        );
        let crafted = format!(
            "/login?ended=terminated_by_admin&why={}&sid={laptop_id}&exp={expires}&sig={sig}",
            pct(text)
        );
        let page = body_of(&s, &crafted).await;
        assert_eq!(page.contains(NOTE), shown, "{crafted}: {page}");
        assert!(page.contains("Your session has ended."), "{page}");
    }
    // Nonsense in any of them is the plain notice, never an error.
    for junk in ["", "-1", "abc", "99999999999999999999999"] {
        let page = client()
            .get(s.url(&with_param(&address, "exp", junk)))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains(PLAIN));
    }
}

// ---- erasure reaches other people's records ----

/// A link of `path` in a mail's text: its token.
fn link_token(text: &str, path: &str) -> String {
    let start = text
        .find(&format!("{path}?t="))
        .unwrap_or_else(|| panic!("{path} in {text}"));
    text[start + path.len() + 3..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_takes_the_not_me_reports_from_the_admins_records() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let s = start_with(move |c| {
        c.mail.smtp_url = url;
        loopback_is_a_proxy(c);
    })
    .await;
    // An attempt with the address before the account existed.
    s.login_raw("ann@acme.test", "guess", CHROME_MAC, None, None)
        .await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    s.user("Acme", "boss@acme.test", Role::Owner).await;
    s.api_login_from("ann@acme.test", CHROME_MAC, Some("81.2.69.142"), None)
        .await;
    s.api_login_from("ann@acme.test", FIREFOX_WIN, Some("81.2.69.142"), None)
        .await;
    let alert = smtp.wait_for(1, PROMPT).await;
    assert_eq!(alert.len(), 1, "the new-device alert");
    let t = link_token(&smtp::text_part(&alert[0]), "/alerts/secure");
    let resp = client()
        .post(s.url("/alerts/secure"))
        .form(&[("t", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The admins are told (and Ann gets a reset link).
    let mails = smtp.wait_for(4, PROMPT).await;
    assert_eq!(mails.len(), 4);
    let reports = s.sql_i64("SELECT count(*) FROM alerts WHERE reasons = 'not_me_report'");
    assert_eq!(reports, 2, "Ada and the owner");
    let carrying = |s: &TestServer| {
        let alerts = s.sql_i64(
            "SELECT count(*) FROM alerts WHERE instr(lower(details), 'ann@acme.test') > 0",
        );
        let events = s.sql_i64(
            "SELECT count(*) FROM events WHERE instr(lower(details), 'ann@acme.test') > 0",
        );
        (alerts, events)
    };
    let (alerts, events) = carrying(&s);
    assert!(alerts >= 2 && events >= 1, "{alerts} {events}");
    let ada = s.token("ada@acme.test").await;
    let boss = s.token("boss@acme.test").await;
    let (_, export) = s.get("/api/v1/me/export", &ada).await;
    assert!(export.to_string().contains("ann@acme.test"), "{export}");

    // Ann is deleted: nothing outside her tombstones names her any more.
    let (status, body) = s
        .delete(&format!("/api/v1/admin/users/{}", ann.id.0), &ada)
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(carrying(&s), (0, 0));
    for who in [&ada, &boss] {
        for path in [
            "/api/v1/me/export",
            "/api/v1/admin/events",
            "/api/v1/events",
        ] {
            let (status, body) = s.get(path, who).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert!(
                !body.to_string().to_lowercase().contains("ann@acme.test"),
                "{path}: {body}"
            );
        }
    }
    // The report of it stays, without the person.
    let (_, events) = s
        .get("/api/v1/admin/events?type=alert.reported", &boss)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
}

// ---- someone knows your password ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failed_second_steps_after_the_password_email_the_person_once_an_hour() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let s = start_with(move |c| {
        c.mail.smtp_url = url;
        c.security.login_rate_limit.failures = 50;
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    enrol(&s, &token).await;
    // The "second factor added" notice.
    assert_eq!(smtp.wait_for(1, PROMPT).await.len(), 1);
    tokio::time::sleep(QUIET).await;
    let before = smtp.count();

    let (status, first) = password_step(&s, "ann@acme.test").await;
    assert_eq!(status, 200, "{first}");
    let challenge = first["challenge"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (status, _) = second_step(&s, &challenge, "000000").await;
        assert_eq!(status, 401);
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        smtp.count(),
        before,
        "two failures are not yet a row of three"
    );
    // The third, with a new password step: in a row all the same.
    let (_, again) = password_step(&s, "ann@acme.test").await;
    let challenge = again["challenge"].as_str().unwrap().to_string();
    let (status, _) = second_step(&s, &challenge, "111111").await;
    assert_eq!(status, 401);
    let mails = smtp.wait_for(before + 1, PROMPT).await;
    assert_eq!(mails.len(), before + 1);
    let mail = &mails[before];
    assert_eq!(
        smtp::header(mail, "subject").unwrap(),
        "Someone knows your Doorman password"
    );
    assert!(smtp::header(mail, "to").unwrap().contains("ann@acme.test"));
    let text = smtp::text_part(mail);
    assert!(text.contains("second step"), "{text}");
    assert!(text.contains("/settings/profile"), "{text}");
    // Not a sign-in alert: outside its hourly limit, and no "Was this you?" links.
    assert!(!text.contains("/alerts/"), "{text}");

    // Three more within the hour: no second email.
    for _ in 0..3 {
        let (status, _) = second_step(&s, &challenge, "222222").await;
        assert_eq!(status, 401);
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), before + 1, "at most one an hour");
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM alerts WHERE reasons = 'password_known'"),
        1
    );
}
