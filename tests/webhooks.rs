//! Signed webhooks (SPEC §15) to a real HTTP receiver started here: the Standard
//! Webhooks signature checked with an HMAC written out in this file, retries with a
//! stable `webhook-id`, a receiver down then up, one that never answers, a restart with
//! deliveries pending, and the configuration errors that stop start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::process::HeldPort;
use common::*;
use doorman::config::{Config, WebhookConfig};
use doorman::model::Role;
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Request, Response, Route, handler, post};
use serde_json::Value;
use sha2::{Digest, Sha256};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn secret() -> String {
    format!("whsec_{}", STANDARD.encode(KEY))
}

/// HMAC-SHA256 (RFC 2104) from SHA-256 alone, so that the check does not share code
/// with the server's.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| k.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Ok,
    Fail,
    /// Accept the request and never answer (until the mode changes).
    Hang,
}

#[derive(Clone, Debug)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answered_ok: bool,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn id(&self) -> String {
        self.headers["webhook-id"].clone()
    }
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn all(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
    fn delivered(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.answered_ok).collect()
    }
    async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Received> {
        let until = Instant::now() + within;
        loop {
            let got = self.delivered();
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

#[handler]
async fn hook(req: &Request, body: Vec<u8>, rx: Data<&Receiver>) -> Response {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mode = *rx.mode.lock().unwrap();
    if mode == Mode::Hang {
        while *rx.mode.lock().unwrap() == Mode::Hang {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The sender gave up long ago; this answer goes nowhere.
        return poem::http::StatusCode::GONE.into_response();
    }
    let ok = mode == Mode::Ok;
    rx.log.lock().unwrap().push(Received {
        headers,
        body,
        answered_ok: ok,
    });
    if ok {
        poem::http::StatusCode::NO_CONTENT.into_response()
    } else {
        poem::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

/// A receiver listening on `port`, held until now.
async fn receiver_on(port: HeldPort, mode: Mode) -> Receiver {
    let listener = port.listen();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let rx = Receiver {
        addr,
        mode: Arc::new(Mutex::new(mode)),
        log: Arc::default(),
    };
    let app = Route::new().at("/hook", post(hook)).data(rx.clone());
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).unwrap();
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    rx
}

fn hook_config(url: &str, events: &[&str], timeout: Duration) -> WebhookConfig {
    WebhookConfig {
        url: url.to_string(),
        secret: secret(),
        events: events.iter().map(|e| e.to_string()).collect(),
        timeout,
    }
}

fn verify(r: &Received) {
    let id = &r.headers["webhook-id"];
    let ts = &r.headers["webhook-timestamp"];
    let sig = &r.headers["webhook-signature"];
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(hmac_sha256(KEY, &msg)));
    assert_eq!(sig, &expected, "signature of {id}");
    let ts: i64 = ts.parse().unwrap();
    assert!(
        (doorman::clock::now() - ts).abs() < 60,
        "a current timestamp"
    );
    assert!(id.starts_with("msg_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_signed_and_retried_with_the_same_id() {
    let rx = receiver_on(HeldPort::new(), Mode::Fail).await;
    let url = rx.url();
    let s = start_with(|c| {
        c.webhooks = vec![hook_config(&url, &["session.*"], Duration::from_secs(2))];
    })
    .await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    let sess = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    // A failed sign-in is not a session.* event: not sent.
    s.login_raw("ann@acme.test", "wrong password!", CHROME_MAC, None, None)
        .await;

    // The receiver fails the first attempt; the retry (after 5 s) has the same id.
    let until = Instant::now() + Duration::from_secs(10);
    while rx.all().is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = rx.all();
    assert_eq!(first.len(), 1, "one attempt so far");
    rx.set(Mode::Ok);
    let delivered = rx.wait_delivered(1, Duration::from_secs(20)).await;
    assert_eq!(delivered.len(), 1);
    let d = &delivered[0];
    assert_eq!(
        d.id(),
        first[0].id(),
        "the webhook-id is stable across attempts"
    );
    verify(d);
    verify(&first[0]);
    let body = d.json();
    assert_eq!(body["type"], "session.created");
    assert_eq!(body["data"]["type"], "session.created");
    assert_eq!(body["data"]["session_id"], sess.id);
    assert_eq!(body["data"]["user"]["id"], ann.id.0);
    assert_eq!(body["data"]["user"]["email"], "ann@acme.test");
    assert_eq!(body["data"]["device"]["browser"], "Firefox");
    assert_eq!(body["timestamp"], body["data"]["at"]);
    assert_eq!(d.headers["content-type"], "application/json");

    // The outbox keeps what happened: delivered after two attempts (written once the
    // receiver's answer is in).
    let delivered_rows =
        || s.sql_i64("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'");
    assert!(
        eventually(Duration::from_secs(20), || async { delivered_rows() == 1 }).await,
        "the delivery is recorded"
    );
    assert_eq!(
        s.sql_i64("SELECT attempts FROM webhook_deliveries WHERE status = 'delivered'"),
        2
    );
    // A window that must pass: no second delivery within it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.delivered().len(), 1, "delivered once");
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM webhook_deliveries"),
        1,
        "login.failed matched no pattern"
    );

    // The metrics tell what is pending and failing.
    let text = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("doorman_webhook_deliveries{status=\"pending\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("doorman_webhook_oldest_pending_seconds 0"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_gets_each_event_once_in_order() {
    let port = HeldPort::new();
    let url = format!("http://127.0.0.1:{}/hook", port.port());
    let s = start_with(|c| {
        c.webhooks = vec![hook_config(&url, &["*"], Duration::from_secs(2))];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    // Four events of Ann's, in order, while nothing listens.
    let a = login(&s, "ann@acme.test", CHROME_MAC).await;
    client()
        .post(s.url("/api/v1/logout"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let expected: Vec<i64> = {
        let c = rusqlite::Connection::open(&s.db_path).unwrap();
        let mut stmt = c.prepare("SELECT id FROM events ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(expected.len() >= 4, "{expected:?}");
    // The first attempt fails (nothing listens), then the receiver comes up.
    let until = Instant::now() + Duration::from_secs(10);
    while s.sql_i64("SELECT count(*) FROM webhook_deliveries WHERE attempts > 0") == 0
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = s.sql_text("SELECT last_error FROM webhook_deliveries WHERE attempts > 0");
    assert!(error.is_some_and(|e| e.contains("connect")));
    let rx = receiver_on(port, Mode::Ok).await;
    let got = rx
        .wait_delivered(expected.len(), Duration::from_secs(30))
        .await;
    // A window that must pass: nothing is delivered twice within it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_after = rx.delivered();
    assert_eq!(got_after.len(), got.len(), "nothing delivered twice");
    let ids: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, expected, "each event once, in order");
    for r in &got {
        verify(r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_slows_nothing() {
    let rx = receiver_on(HeldPort::new(), Mode::Hang).await;
    let url = rx.url();
    let s = start_with(|c| {
        c.webhooks = vec![hook_config(&url, &["*"], Duration::from_secs(2))];
    })
    .await;
    for i in 0..20 {
        s.user("Acme", &format!("u{i}@acme.test"), Role::User).await;
    }
    // Twenty users' events: twenty queues, each held by a receiver that never answers.
    for i in 0..20 {
        let started = Instant::now();
        let sess = login(&s, &format!("u{i}@acme.test"), CHROME_MAC).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "sign-in took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        assert!(alive(&s, &sess.token).await);
        let resp = client()
            .get(s.url("/auth/verify"))
            .bearer_auth(&sess.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "check took {:?}",
            started.elapsed()
        );
    }
    // The attempts time out and are recorded as such.
    let until = Instant::now() + Duration::from_secs(15);
    while s.sql_i64("SELECT count(*) FROM webhook_deliveries WHERE last_error LIKE 'no answer%'")
        == 0
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        s.sql_i64(
            "SELECT count(*) FROM webhook_deliveries WHERE last_error LIKE 'no answer within 2s'"
        ) > 0
    );
    // It answers again: delivery resumes, and every event gets there.
    rx.set(Mode::Ok);
    let total = s.sql_i64("SELECT count(*) FROM events") as usize;
    let got = rx.wait_delivered(total, Duration::from_secs(40)).await;
    assert_eq!(got.len(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_a_restart() {
    let port = HeldPort::new();
    let url = format!("http://127.0.0.1:{}/hook", port.port());
    let s = start_with(|c| {
        c.webhooks = vec![hook_config(
            &url,
            &["user.*", "session.created"],
            Duration::from_secs(2),
        )];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    login(&s, "ann@acme.test", CHROME_MAC).await;
    let pending = s.sql_i64("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'");
    assert_eq!(pending, 2, "user.created and session.created");
    let ids: Vec<String> = {
        let c = rusqlite::Connection::open(&s.db_path).unwrap();
        let mut stmt = c
            .prepare("SELECT message_id FROM webhook_deliveries ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let s = s.restart().await;
    let rx = receiver_on(port, Mode::Ok).await;
    let got = rx.wait_delivered(2, Duration::from_secs(30)).await;
    let got_ids: Vec<String> = got.iter().map(Received::id).collect();
    assert_eq!(got_ids, ids, "the same messages, with their ids, in order");
    assert_eq!(got[0].json()["type"], "user.created");
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"),
        2
    );
}

#[test]
fn bad_webhook_settings_stop_start_up_naming_the_key() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    let check = |toml: &str| {
        Config::from_figment(Figment::new().merge(Toml::string(toml)))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let err = check(
        "[[webhooks]]\nurl = \"ftp://x.test/h\"\nsecret = \"whsec_AQID\"\nevents = [\"*\"]\n",
    );
    assert!(err.contains("webhooks[0].url"), "{err}");
    let err = check(
        "[[webhooks]]\nurl = \"https://x.test/h\"\nsecret = \"whsec_AQID\"\nevents = [\"sessions.*\"]\n",
    );
    assert!(
        err.contains("webhooks[0].events") && err.contains("sessions.*"),
        "{err}"
    );
    let err = check("[[webhooks]]\nurl = \"https://x.test/h\"\nevents = [\"*\"]\n");
    assert!(err.contains("webhooks[0].secret"), "{err}");
    let err = check(
        "[[webhooks]]\nurl = \"https://x.test/h\"\nsecret = \"whsec_AQID\"\nevents = [\"*\"]\ntimeout = \"soon\"\n",
    );
    assert!(err.contains("timeout"), "{err}");
    // Good settings pass, with the default timeout.
    let ok = Config::from_figment(Figment::new().merge(Toml::string(
        "[[webhooks]]\nurl = \"https://x.test/h\"\nsecret = \"whsec_AQID\"\nevents = [\"session.*\", \"user.created\"]\n",
    )))
    .unwrap();
    assert_eq!(ok.webhooks[0].timeout, Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_and_retries_deliveries() {
    let port = HeldPort::new();
    let url = format!("http://127.0.0.1:{}/hook", port.port());
    let s = start_with(|c| {
        c.webhooks = vec![hook_config(&url, &["user.created"], Duration::from_secs(1))];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.sql_exec(
        "UPDATE webhook_deliveries SET status = 'failed', attempts = 80, last_error = 'gave up'",
    );
    let rows = doorman::domain::audit::webhooks::recent(&s.state, true, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "failed");
    assert_eq!(rows[0].event_type.as_deref(), Some("user.created"));
    assert!(!doorman::domain::audit::webhooks::retry(&s.state, rows[0].id + 100).unwrap());
    let rx = receiver_on(port, Mode::Ok).await;
    assert!(doorman::domain::audit::webhooks::retry(&s.state, rows[0].id).unwrap());
    let got = rx.wait_delivered(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id(), rows[0].message_id);
}

#[test]
fn the_binary_lists_and_retries_and_refuses_bad_settings() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_doorman");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doorman.sqlite3");
    let config = dir.path().join("doorman.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"{}\"\n[security.argon2]\nm = 1024\nt = 1\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:9/hook?token=s3cret\"\nsecret = \"{}\"\nevents = [\"user.*\"]\n",
            db.display(),
            secret()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, _, err) = run(&[
        "user",
        "add",
        "--email",
        "eve@acme.test",
        "--account",
        "Acme",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&["webhooks", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("pending") && out.contains("user.created"),
        "{out}"
    );
    assert!(
        !out.contains("s3cret"),
        "the URL's query is not shown: {out}"
    );
    let id: String = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (code, out, _) = run(&["webhooks", "retry", &id]);
    assert_eq!(code, Some(0));
    assert!(out.contains("queued"), "{out}");
    let (code, out, _) = run(&["config", "check"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("WebhookConfig"), "{out}");
    assert!(
        !out.contains(&STANDARD.encode(KEY)) && !out.contains("s3cret"),
        "no secret in the printed configuration: {out}"
    );
    let (code, _, err) = run(&["webhooks", "retry", "999999"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("999999"), "{err}");

    // A bad pattern stops the binary with the key named.
    std::fs::write(
        &config,
        "[[webhooks]]\nurl = \"https://x.test/h\"\nsecret = \"whsec_AQID\"\nevents = [\"login.*\", \"logins.failed\"]\n",
    )
    .unwrap();
    let (code, _, err) = run(&["config", "check"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("webhooks[0].events") && err.contains("logins.failed"),
        "{err}"
    );
}
