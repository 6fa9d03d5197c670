#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The API sign-in (SPEC §3, §7): tokens, the session JSON, how tokens are stored, the
//! answers to bad credentials and bad input, logout and `/auth/verify`.
mod common;

use common::*;
use doorman::config::Application;
use doorman::domain::people::users;
use doorman::model::{Role, UserStatus};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn rfc3339_utc(v: &Value) -> OffsetDateTime {
    let text = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let t = OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert!(t.offset().is_utc(), "{text} is not UTC");
    t
}

/// POSTs `body` as-is to the login endpoint with `content_type`.
async fn raw_login(s: &TestServer, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = client().post(s.url("/api/v1/login")).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    status_json(req.send().await.unwrap()).await
}

fn assert_error_json(status: u16, body: &Value, what: &str) {
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty())
            && body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: not a JSON error body ({status}): {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_answers_token_device_and_session() {
    let s = start().await;
    let user = s.user("Acme", "ann@acme.test", Role::User).await;
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;

    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(is_hex32(body["device_id"].as_str().unwrap()), "{body}");

    let sess = &body["session"];
    let id = sess["id"].as_str().unwrap();
    assert!(!id.is_empty() && id != token);
    assert_eq!(sess["current"], true);
    assert_eq!(
        sess["user"],
        json!({"id": user.id.0, "email": "ann@acme.test"})
    );
    assert_eq!(
        sess["account"],
        json!({"id": user.account_id.0, "name": "Acme"})
    );
    assert_eq!(sess["application"], "api");
    let dev = &sess["device"];
    for key in [
        "category",
        "browser",
        "browser_version",
        "os",
        "os_version",
        "label",
    ] {
        assert!(dev[key].is_string(), "device.{key} missing: {dev}");
    }
    assert_eq!(dev["category"], "Desktop");
    assert_eq!(dev["browser"], "Chrome");
    assert_eq!(sess["ip"], "127.0.0.1");
    assert_eq!(
        sess["location"],
        json!({"country_code": null, "country": null, "city": null, "network": null})
    );
    let created = rfc3339_utc(&sess["created_at"]);
    let last = rfc3339_utc(&sess["last_active_at"]);
    let expires = rfc3339_utc(&sess["expires_at"]);
    assert!(created.unix_timestamp() >= before - 1);
    assert_eq!(created, last);
    // Default idle timeout: 14 days.
    assert_eq!(
        (expires - created).whole_seconds(),
        14 * 24 * 3600,
        "{sess}"
    );

    // The token works, and /me describes the same session.
    let (status, me) = s.get("/api/v1/me", token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["session"]["id"], sess["id"]);
    assert_eq!(me["user"]["account"]["name"], "Acme");
    assert_eq!(me["user"]["role"], "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sign_in_gets_a_new_token() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let a = s.api_login("ann@acme.test", CHROME_MAC).await;
    // Presenting the old token at sign-in must not make it the new session's token.
    let resp = client()
        .post(s.url("/api/v1/login"))
        .bearer_auth(a["token"].as_str().unwrap())
        .header(
            "cookie",
            format!("doorman_session={}", a["token"].as_str().unwrap()),
        )
        .json(&json!({"email": "ann@acme.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, b) = status_json(resp).await;
    assert_eq!(status, 201, "{b}");
    assert_ne!(a["token"], b["token"]);
    assert_ne!(a["session"]["id"], b["session"]["id"]);
    for body in [&a, &b] {
        let (status, me) = s.get("/api/v1/me", body["token"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["session"]["id"], body["session"]["id"]);
    }
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_stored_only_as_its_sha256() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = body["token"].as_str().unwrap().to_string();

    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    let stored: Vec<u8> = c
        .query_row(
            "SELECT token_hash FROM sessions WHERE public_id = ?1",
            [body["session"]["id"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, Sha256::digest(token.as_bytes()).to_vec());

    // No cell of any table holds the token, as text or as bytes.
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.iter().any(|t| t == "sessions"), "{tables:?}");
    let mut cells = 0;
    for table in &tables {
        let mut stmt = c.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                cells += 1;
                let bytes: Vec<u8> = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        t.to_vec()
                    }
                    _ => continue,
                };
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                    "the token is stored in table {table}"
                );
            }
        }
    }
    assert!(cells > 20, "the scan looked at too little: {cells} cells");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_all_get_the_same_answer() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let off = s.user("Acme", "off@acme.test", Role::User).await;
    users::set_status(&s.state, off.id, UserStatus::Disabled, None)
        .await
        .unwrap();

    let mut answers = Vec::new();
    for (email, password) in [
        ("nobody@acme.test", PASSWORD),
        ("ann@acme.test", "wrong password!"),
        ("off@acme.test", PASSWORD),
    ] {
        let resp = client()
            .post(s.url("/api/v1/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        answers.push((email, status, ct, text));
    }
    for (email, status, _, text) in &answers {
        assert_eq!(*status, 401, "{email}: {text}");
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["error"], "invalid_credentials", "{email}");
    }
    assert_eq!(answers[0].2, answers[1].2);
    assert_eq!(
        answers[0].3, answers[1].3,
        "unknown email vs wrong password"
    );
    assert_eq!(answers[0].3, answers[2].3, "unknown email vs disabled user");
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 0);
    // Each refusal is kept in the history with its real reason.
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM login_records WHERE success = 0
               AND reason IN ('unknown_email', 'wrong_password', 'user_disabled')"
        ),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_id_is_reused_and_a_bogus_one_replaced() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let first = s.api_login("ann@acme.test", CHROME_MAC).await;
    let device = first["device_id"].as_str().unwrap().to_string();

    let again = s
        .api_login_with("ann@acme.test", CHROME_MAC, json!({"device_id": device}))
        .await;
    assert_eq!(again["device_id"], device.as_str());

    for bogus in [
        "../../etc/passwd",
        "ABCDEF0123456789ABCDEF0123456789",
        "0123456789abcdef0123456789abcdeg",
        "",
    ] {
        let other = s
            .api_login_with("ann@acme.test", CHROME_MAC, json!({"device_id": bogus}))
            .await;
        let got = other["device_id"].as_str().unwrap();
        assert!(is_hex32(got), "{bogus:?} -> {got}");
        assert_ne!(got, bogus);
        assert_ne!(
            got, device,
            "a bogus id must get a new device, not the old one"
        );
    }
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    let with_first: i64 = c
        .query_row(
            "SELECT count(*) FROM sessions WHERE device_id = ?1",
            [&device],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(with_first, 2);
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM sessions WHERE device_id LIKE '%/%' OR length(device_id) <> 32"
        ),
        0
    );
    // 1 reused + 4 new devices.
    assert_eq!(s.sql_i64("SELECT count(*) FROM devices"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_application_is_recorded_and_unknown_refused() {
    let s = start_with(|c| {
        c.applications = vec![Application {
            name: "Grafana".into(),
            url: "https://grafana.example.com".into(),
            ..Default::default()
        }];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let body = s
        .api_login_with(
            "ann@acme.test",
            CHROME_MAC,
            json!({"application": "Grafana"}),
        )
        .await;
    assert_eq!(body["session"]["application"], "Grafana");
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE application = 'Grafana'"),
        1
    );

    for unknown in ["Kibana", "grafana", "web", ""] {
        let resp = client()
            .post(s.url("/api/v1/login"))
            .json(&json!({"email": "ann@acme.test", "password": PASSWORD, "application": unknown}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 400, "{unknown:?}: {body}");
        assert_error_json(status, &body, unknown);
        assert_eq!(body["error"], "unknown_application", "{unknown:?}");
    }
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_at_once() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    let other = s.token("ann@acme.test").await;

    let (status, body) = s.post("/api/v1/logout", &token, json!({})).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, Value::Null);

    let (status, body) = s.get("/api/v1/me", &token).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "session_ended", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Your session has ended. Please sign in again."),
        "{body}"
    );
    let (status, _) = s.post("/api/v1/logout", &token, json!({})).await;
    assert_eq!(status, 401, "a second logout with an ended token");
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM sessions WHERE end_reason = 'logout' AND ended_at IS NOT NULL"
        ),
        1
    );
    // Only that session ended.
    assert_eq!(s.get("/api/v1/me", &other).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_answers_for_bearer_and_cookie() {
    let s = start().await;
    let user = s.user("Acme", "ann@acme.test", Role::User).await;
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = body["token"].as_str().unwrap().to_string();
    let session = body["session"]["id"].as_str().unwrap().to_string();

    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let by_bearer = client()
        .get(s.url("/auth/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let by_cookie = client()
        .get(s.url("/auth/verify"))
        .header("cookie", format!("doorman_session={token}"))
        .send()
        .await
        .unwrap();
    for r in [&by_bearer, &by_cookie] {
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(r, "x-doorman-user").as_deref(),
            Some(user.id.0.to_string().as_str())
        );
        assert_eq!(
            header(r, "x-doorman-email").as_deref(),
            Some("ann@acme.test")
        );
        assert_eq!(
            header(r, "x-doorman-session").as_deref(),
            Some(session.as_str())
        );
        assert_eq!(header(r, "cache-control").as_deref(), Some("no-store"));
    }

    // Nothing, or something that is not a token.
    for req in [
        client().get(s.url("/auth/verify")),
        client().get(s.url("/auth/verify")).bearer_auth("nope"),
        client()
            .get(s.url("/auth/verify"))
            .header("cookie", "doorman_session=nope"),
        client()
            .get(s.url("/auth/verify"))
            .header("authorization", format!("Basic {token}")),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(header(&resp, "x-doorman-user").is_none());
    }

    assert_eq!(s.post("/api/v1/logout", &token, json!({})).await.0, 204);
    for req in [
        client().get(s.url("/auth/verify")).bearer_auth(&token),
        client()
            .get(s.url("/auth/verify"))
            .header("cookie", format!("doorman_session={token}")),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(header(&resp, "x-doorman-user").is_none());
        let (_, body) = status_json(resp).await;
        assert_eq!(body["error"], "session_ended", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_incomplete_bodies_get_400_json() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let json_ct = Some("application/json");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"{\"email\": \"ann@acme.test\", ".to_vec()),
        ("not json", b"hello".to_vec()),
        ("empty", Vec::new()),
        (
            "missing password",
            br#"{"email": "ann@acme.test"}"#.to_vec(),
        ),
        (
            "missing email",
            br#"{"password": "correct horse battery"}"#.to_vec(),
        ),
        ("array", b"[]".to_vec()),
        ("deeply nested", "[".repeat(50_000).into_bytes()),
        ("null", b"null".to_vec()),
        (
            "wrong types",
            br#"{"email": {}, "password": ["x"]}"#.to_vec(),
        ),
        (
            "invalid utf-8",
            b"{\"email\": \"\xff\xfe\", \"password\": \"x\"}".to_vec(),
        ),
    ];
    for (what, body) in cases {
        let (status, body) = raw_login(&s, json_ct, body).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_error_json(status, &body, what);
    }
    // Over-long fields are refused before any work.
    let long = "a".repeat(300) + "@acme.test";
    let (status, body) = raw_login(
        &s,
        json_ct,
        serde_json::to_vec(&json!({"email": long, "password": PASSWORD})).unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_error_json(status, &body, "long email");
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_is_a_json_4xx() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let valid =
        serde_json::to_vec(&json!({"email": "ann@acme.test", "password": PASSWORD})).unwrap();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("not a content type"),
        None,
    ] {
        let (status, body) = raw_login(&s, ct, valid.clone()).await;
        assert!((400..500).contains(&status), "{ct:?}: {status} {body}");
        assert_error_json(status, &body, &format!("{ct:?}"));
    }
    let form = b"email=ann%40acme.test&password=correct+horse+battery".to_vec();
    let (status, body) = raw_login(&s, Some("application/x-www-form-urlencoded"), form).await;
    assert!((400..500).contains(&status), "form: {status} {body}");
    assert_error_json(status, &body, "form");
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 0);
}

/// The document declares the 415 that a body sent as anything but JSON gets, on the
/// sign-in and on every other operation that takes a JSON body, and the server answers
/// it as declared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_gets_the_documented_415() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let (status, spec) = status_json(
        client()
            .get(s.url("/api/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{spec}");
    let login = &spec["paths"]["/login"]["post"];
    assert_eq!(login["operationId"], "login", "{login}");
    let documented = &login["responses"]["415"];
    assert!(
        documented["content"]["application/json; charset=utf-8"]["schema"].is_object(),
        "POST /login does not document 415 with a JSON body: {}",
        login["responses"]
    );
    let mut with_body = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op.get("requestBody").is_some() {
                with_body += 1;
                assert!(
                    op["responses"]["415"].is_object(),
                    "{method} {path} takes a body but does not document 415"
                );
            }
        }
    }
    assert!(with_body >= 4, "only {with_body} operations take a body");

    let valid =
        serde_json::to_vec(&json!({"email": "ann@acme.test", "password": PASSWORD})).unwrap();
    let (status, body) = raw_login(&s, Some("text/plain"), valid).await;
    assert_eq!(status, 415, "{body}");
    assert_error_json(status, &body, "text/plain");
    assert_eq!(body["error"], "unsupported_media_type", "{body}");
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_body_with_content_length_gets_413_json() {
    let s = start().await;
    let mut big = br#"{"email": "ann@acme.test", "password": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    big.extend(br#""}"#);
    let (status, body) = raw_login(&s, Some("application/json"), big).await;
    assert_eq!(status, 413, "{body}");
    assert_error_json(status, &body, "1 MB body");
    assert_eq!(body["error"], "payload_too_large");
    // The server is still fine afterwards.
    let (status, _) = status_json(client().get(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

/// Sends a 1 MB chunked body over a raw connection and returns the status line and the
/// response body.
async fn chunked_post(s: &TestServer, path: &str) -> (String, String) {
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        s.addr
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 16 * 1024];
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend(&chunk);
        frame.extend(b"\r\n");
        for _ in 0..64 {
            wr.write_all(&frame).await?;
        }
        wr.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(wr)
    });
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, rd.read(&mut tmp))
            .await
            .expect("no answer to a chunked 1 MB body")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend(&tmp[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_chunked_body_gets_413_json() {
    let s = start().await;
    for path in ["/api/v1/login", "/login"] {
        let (status, body) = chunked_post(&s, path).await;
        assert!(status.starts_with("HTTP/1.1 413"), "{path}: {status}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        assert_eq!(v["error"], "payload_too_large", "{path}");
    }
    let (status, _) = status_json(client().get(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_authenticated_logout_needs_the_csrf_header() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    let cookie = format!("doorman_session={token}");
    // The CSRF token a page shows for this session.
    let page = client()
        .get(s.url("/settings/security/sessions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").expect("csrf on the sessions page");

    for header in [None, Some("wrong"), Some("")] {
        let mut req = client()
            .post(s.url("/api/v1/logout"))
            .header("cookie", &cookie);
        if let Some(h) = header {
            req = req.header("x-csrf-token", h);
        }
        let (status, body) = status_json(req.send().await.unwrap()).await;
        assert_eq!(status, 403, "{header:?}: {body}");
        assert_error_json(status, &body, "cookie logout without csrf");
    }
    assert_eq!(s.get("/api/v1/me", &token).await.0, 200, "still signed in");

    // Reading needs no header.
    let resp = client()
        .get(s.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = client()
        .post(s.url("/api/v1/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(s.get("/api/v1/me", &token).await.0, 401);
}
