//! Fault: an SMTP server that accepts the connection and then says nothing (no greeting).
//! The outbox worker gives up after `mail.timeout`, records the error, retries later
//! with backoff, and nothing else waits on it: sign-ins and reads stay fast meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CHROME_MAC, PASSWORD, start_with};
use doorman::model::Role;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Accepts connections and never writes a byte; remembers how long each client stayed.
struct MuteSmtp {
    port: u16,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    held: Arc<Mutex<Vec<Duration>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MuteSmtp {
    async fn start() -> MuteSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (a, o, h) = (accepted.clone(), open.clone(), held.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let (o, h) = (o.clone(), h.clone());
                tokio::spawn(async move {
                    let since = Instant::now();
                    let mut buf = [0u8; 1024];
                    // Until the client gives up and closes (it has nothing to say first).
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    h.lock().unwrap().push(since.elapsed());
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        MuteSmtp {
            port,
            accepted,
            open,
            held,
            task,
        }
    }

    async fn wait_accepted(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.accepted.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the outbox worker made no connection attempt #{n} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for MuteSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const TIMEOUT: Duration = Duration::from_secs(3);
/// A generous bound for one request on loopback while the worker hangs.
const FAST: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_smtp_times_out_is_retried_and_slows_nothing_else() {
    let smtp = MuteSmtp::start().await;
    let server = start_with(|c| {
        c.mail.smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
        c.mail.timeout = TIMEOUT;
    })
    .await;
    let email = "hang@example.com";
    server.user("Hang", email, Role::User).await;
    let first = server.api_login(email, CHROME_MAC).await;
    let token = first["token"].as_str().unwrap().to_string();
    let device = first["device_id"].as_str().unwrap().to_string();

    // A sign-in from a new device queues an alert; the worker connects and gets no greeting.
    let started = Instant::now();
    let (status, body) = server
        .login_raw(email, PASSWORD, CHROME_MAC, None, None)
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(started.elapsed() < FAST, "the sign-in waited on SMTP");
    smtp.wait_accepted(1, Duration::from_secs(5)).await;

    // While the worker is stuck: sign-ins, /me and the session list answer at once.
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let (status, body) = server
            .login_raw(email, PASSWORD, CHROME_MAC, None, Some(&device))
            .await;
        assert_eq!(status, 201, "{body}");
        slowest = slowest.max(t.elapsed());
        for path in ["/api/v1/me", "/api/v1/sessions"] {
            let t = Instant::now();
            let (status, body) = server.get(path, &token).await;
            assert_eq!(status, 200, "{path}: {body}");
            slowest = slowest.max(t.elapsed());
        }
    }
    assert!(slowest < FAST, "a request took {slowest:?} while SMTP hung");
    assert_eq!(
        smtp.open.load(Ordering::SeqCst),
        1,
        "the measurements must overlap the hung SMTP conversation"
    );
    assert_eq!(
        server.sql_text("SELECT status FROM alerts").as_deref(),
        Some("pending")
    );

    // The worker gives up after mail.timeout and records why.
    let deadline = Instant::now() + TIMEOUT * 3;
    while server.sql_i64("SELECT attempts FROM alerts") == 0 {
        assert!(Instant::now() < deadline, "no failed attempt was recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed_at = doorman::clock::now();
    let error = server
        .sql_text("SELECT last_error FROM alerts")
        .unwrap_or_default();
    assert!(error.contains("did not answer"), "last_error: {error:?}");
    assert_eq!(
        server.sql_text("SELECT status FROM alerts").as_deref(),
        Some("pending"),
        "a timeout is retried, not given up"
    );
    let next = server.sql_i64("SELECT next_attempt_at FROM alerts");
    assert!(
        next >= failed_at + 3,
        "the retry is not deferred: next attempt at {next}, failed at {failed_at}"
    );
    // The conversation was cut after mail.timeout (not the 10 s default).
    let deadline = Instant::now() + Duration::from_secs(2);
    while smtp.held.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the worker kept the connection open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = smtp.held.lock().unwrap()[0];
    assert!(
        held >= TIMEOUT - Duration::from_millis(500) && held < TIMEOUT + Duration::from_secs(2),
        "the hung conversation lasted {held:?}, mail.timeout is {TIMEOUT:?}"
    );

    // Later, it tries again.
    smtp.wait_accepted(2, Duration::from_secs(15)).await;
    assert_eq!(server.sql_i64("SELECT count(*) FROM alerts"), 1);
}
