#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `doorman` binary (SPEC §8, §9, §10): configuration checks, storage that is
//! not ours to read, the operator's tools, first-run setup, and graceful shutdown.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_doorman");

/// A working directory with its own database for the binary.
struct Workdir {
    dir: tempfile::TempDir,
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Workdir {
    fn new() -> Self {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("doorman.sqlite3")
    }

    fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The binary in this directory, with no inherited `DOORMAN_*` settings, this
    /// directory's database and cheap password hashing.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.dir.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DOORMAN_") {
                c.env_remove(key);
            }
        }
        c.env_remove("RUST_LOG")
            .env("DOORMAN_STORAGE__PATH", self.db())
            .env("DOORMAN_SECURITY__ARGON2__M", "1024")
            .env("DOORMAN_SECURITY__ARGON2__T", "1")
            .stdin(Stdio::null());
        c
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Ran {
        let mut c = self.cmd(args);
        c.envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let ran = Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !ran.stderr.contains("panicked"),
            "{args:?} panicked: {ran:?}"
        );
        ran
    }

    fn run(&self, args: &[&str]) -> Ran {
        self.run_with(args, &[], None)
    }

    /// Starts `doorman serve` on a free loopback port.
    fn serve(&self, env: &[(&str, &str)]) -> Served {
        let port = common::process::free_port();
        let listen = format!("127.0.0.1:{port}");
        let base = format!("http://{listen}");
        let mut c = self.cmd(&["serve"]);
        c.env("DOORMAN_SERVER__LISTEN", &listen)
            .env("DOORMAN_SERVER__PUBLIC_URL", &base)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Served {
            child,
            base,
            log,
            lines,
        }
    }
}

/// A running `doorman serve`; killed if the test ends without stopping it.
struct Served {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
}

impl Served {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no `{needle}` from serve; stderr:\n{}", self.stderr());
    }

    fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code once it has shut down.
    fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit.code();
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop on SIGTERM; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn api_login(base_url: &str, email: &str, password: &str) -> (u16, Value) {
    let resp = client()
        .post(format!("{base_url}/api/v1/login"))
        .header("user-agent", CHROME_MAC)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

async fn me(base_url: &str, token: &str) -> (u16, Value) {
    let resp = client()
        .get(format!("{base_url}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

/// `/auth/verify`'s status for `token`, asked `times` times in a row (the server
/// recalls a row it has read while nothing is committed: these make it recall).
async fn verify(base_url: &str, token: &str, times: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(times);
    for _ in 0..times {
        let resp = client()
            .get(format!("{base_url}/auth/verify"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    statuses
}

// ---------------------------------------------------------------- configuration

#[test]
fn config_check_accepts_a_valid_configuration() {
    let w = Workdir::new();
    w.write(
        "doorman.toml",
        b"[server]\nlisten = \"127.0.0.1:9999\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
          [sessions]\nidle_timeout = \"2h\"\n\n[[applications]]\nname = \"Grafana\"\n\
          url = \"https://grafana.example.com\"\n",
    );
    let ran = w.run(&["config", "check"]);
    assert!(ran.ok(), "{ran:?}");
    assert!(ran.stdout.contains("configuration is valid"), "{ran:?}");
    assert!(
        ran.stdout.contains("9999") && ran.stdout.contains("Grafana"),
        "{ran:?}"
    );
    // Environment over file.
    let ran = w.run_with(
        &["config", "check"],
        &[("DOORMAN_SERVER__LISTEN", "127.0.0.1:7777")],
        None,
    );
    assert!(
        ran.ok() && ran.stdout.contains("7777") && !ran.stdout.contains("9999"),
        "{ran:?}"
    );
    // An explicit file elsewhere.
    w.write("other.toml", b"[server]\nlisten = \"127.0.0.1:6666\"\n");
    let ran = w.run(&["--config", "other.toml", "config", "check"]);
    assert!(ran.ok() && ran.stdout.contains("6666"), "{ran:?}");
}

#[test]
fn config_check_names_an_unknown_key() {
    let w = Workdir::new();
    w.write("doorman.toml", b"[server]\nlisten_port = 8080\n");
    let ran = w.run(&["config", "check"]);
    assert!(!ran.ok(), "{ran:?}");
    assert!(ran.stderr.contains("listen_port"), "{ran:?}");

    let w = Workdir::new();
    w.write("doorman.toml", b"[sesions]\nidle_timeout = \"1h\"\n");
    let ran = w.run(&["config", "check"]);
    assert!(!ran.ok() && ran.stderr.contains("sesions"), "{ran:?}");

    // Misspelled in the environment.
    let w = Workdir::new();
    let ran = w.run_with(
        &["config", "check"],
        &[("DOORMAN_SERVER__LISTEN_PORT", "8080")],
        None,
    );
    assert!(!ran.ok() && ran.stderr.contains("listen_port"), "{ran:?}");
}

#[test]
fn config_check_names_a_bad_value() {
    let w = Workdir::new();
    let ran = w.run_with(
        &["config", "check"],
        &[("DOORMAN_SESSIONS__IDLE_TIMEOUT", "soon")],
        None,
    );
    assert!(!ran.ok(), "{ran:?}");
    // figment spells keys from the environment in upper case.
    assert!(
        ran.stderr.to_lowercase().contains("idle_timeout"),
        "{ran:?}"
    );

    let ran = w.run_with(
        &["config", "check"],
        &[("DOORMAN_SERVER__LISTEN", "not an address")],
        None,
    );
    assert!(
        !ran.ok() && ran.stderr.to_lowercase().contains("server.listen"),
        "{ran:?}"
    );

    w.write(
        "doorman.toml",
        b"[server]\npublic_url = \"ftp://x\"\n[sessions]\nretention = \"0s\"\n",
    );
    let ran = w.run(&["config", "check"]);
    assert!(!ran.ok(), "{ran:?}");
    assert!(
        ran.stderr.contains("server.public_url") && ran.stderr.contains("sessions.retention"),
        "every problem at once: {ran:?}"
    );
}

#[test]
fn a_missing_config_file_is_an_error() {
    let w = Workdir::new();
    let ran = w.run(&["--config", "missing.toml", "config", "check"]);
    assert!(!ran.ok(), "{ran:?}");
    assert!(ran.stderr.contains("missing.toml"), "{ran:?}");
    // Nothing was created on the way.
    assert!(!w.db().exists());
}

#[test]
fn config_check_hides_secrets() {
    let w = Workdir::new();
    let ran = w.run_with(
        &["config", "check"],
        &[
            ("DOORMAN_BOOTSTRAP__EMAIL", "owner@x.test"),
            ("DOORMAN_BOOTSTRAP__PASSWORD", "bootstrap-secret-42"),
            (
                "DOORMAN_MAIL__SMTP_URL",
                "smtps://mailer:smtp-secret-42@mail.x.test",
            ),
        ],
        None,
    );
    assert!(ran.ok(), "{ran:?}");
    assert!(ran.stdout.contains("owner@x.test"), "{ran:?}");
    assert!(
        !ran.stdout.contains("secret-42") && !ran.stderr.contains("secret-42"),
        "{ran:?}"
    );
}

// ---------------------------------------------------------------- storage

#[test]
fn a_file_that_is_not_sqlite_is_refused_clearly() {
    let w = Workdir::new();
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(w.db(), &garbage).unwrap();
    let started = Instant::now();
    let ran = w.run(&["sessions", "list"]);
    assert!(!ran.ok(), "{ran:?}");
    assert!(ran.stderr.contains("not a SQLite database"), "{ran:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?} to refuse",
        started.elapsed()
    );
    // The file is left as it was.
    assert_eq!(std::fs::read(w.db()).unwrap(), garbage);
}

#[test]
fn a_database_from_a_newer_doorman_is_refused() {
    let w = Workdir::new();
    let ran = w.run(&["sessions", "list"]);
    assert!(ran.ok(), "{ran:?}");
    assert!(ran.stdout.contains("0 active session(s)"), "{ran:?}");
    let c = rusqlite::Connection::open(w.db()).unwrap();
    c.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(c);
    for args in [&["sessions", "list"][..], &["serve"][..]] {
        let mut c = w.cmd(args);
        c.env(
            "DOORMAN_SERVER__LISTEN",
            format!("127.0.0.1:{}", common::process::free_port()),
        );
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains("newer"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------- operator's tools

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_session_tools_work_on_a_live_database() {
    let w = Workdir::new();
    let add = [
        "user",
        "add",
        "--email",
        "a@x.test",
        "--account",
        "Acme",
        "--role",
        "admin",
    ];
    let with_stdin = [&add[..], &["--password-stdin"]].concat();
    let ran = w.run_with(&with_stdin, &[], Some(&format!("{PASSWORD}\n")));
    assert!(ran.ok(), "{ran:?}");
    assert!(
        ran.stdout.contains("a@x.test")
            && ran.stdout.contains("admin")
            && ran.stdout.contains("Acme"),
        "{ran:?}"
    );
    assert!(
        !ran.stdout.contains(PASSWORD),
        "the password is not printed: {ran:?}"
    );
    for again in [
        &with_stdin[..],
        &[
            "user",
            "add",
            "--email",
            "A@X.test",
            "--account",
            "Other",
            "--password-stdin",
        ][..],
    ] {
        let ran = w.run_with(again, &[], Some(PASSWORD));
        assert!(!ran.ok(), "{ran:?}");
        assert!(ran.stderr.contains("already exists"), "{ran:?}");
    }
    let c = rusqlite::Connection::open(w.db()).unwrap();
    let accounts: i64 = c
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(accounts, 1, "a refused user leaves no account behind");
    drop(c);
    // An unknown role is refused.
    let ran = w.run(&[
        "user",
        "add",
        "--email",
        "b@x.test",
        "--account",
        "Acme",
        "--role",
        "god",
    ]);
    assert!(!ran.ok(), "{ran:?}");
    // A generated password is printed once and works.
    let ran = w.run(&["user", "add", "--email", "gen@x.test", "--account", "Acme"]);
    assert!(ran.ok(), "{ran:?}");
    let generated = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("generated password printed")
        .to_string();

    // A server on the same database, for signing in.
    let server = start_in(tempfile::tempdir().unwrap(), test_config(&w.db())).await;
    assert_eq!(
        api_login(&server.base, "gen@x.test", &generated).await.0,
        201
    );
    let (status, body) = api_login(&server.base, "a@x.test", PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let id = body["session"]["id"].as_str().unwrap().to_string();
    assert_eq!(me(&server.base, &token).await.1["user"]["role"], "admin");
    assert_eq!(verify(&server.base, &token, 8).await, vec![200; 8]);

    let ran = w.run(&["sessions", "list"]);
    assert!(ran.ok(), "{ran:?}");
    assert!(ran.stdout.contains("2 active session(s)"), "{ran:?}");
    let line = ran
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("session {id} not listed: {ran:?}"));
    assert!(
        line.contains("a@x.test")
            && line.contains("api")
            && line.contains("Chrome 120")
            && line.contains("127.0.0.1"),
        "{line}"
    );
    let ran = w.run(&["sessions", "list", "--email", "A@x.test"]);
    assert!(
        ran.ok() && ran.stdout.contains("1 active session(s)") && ran.stdout.contains(&id),
        "{ran:?}"
    );
    let ran = w.run(&["sessions", "list", "--email", "nobody@x.test"]);
    assert!(!ran.ok() && ran.stderr.contains("nobody@x.test"), "{ran:?}");

    // End it: refused on the server's very next request.
    let ran = w.run(&["sessions", "end", &id]);
    assert!(ran.ok(), "{ran:?}");
    assert_eq!(verify(&server.base, &token, 2).await, vec![401; 2]);
    let (status, body) = me(&server.base, &token).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("ended by an administrator"),
        "{body}"
    );
    let ran = w.run(&["sessions", "end", &id]);
    assert!(
        !ran.ok() && ran.stderr.contains("no active session"),
        "ending it twice: {ran:?}"
    );

    // A new password ends every session and only the new one works.
    let (_, body) = api_login(&server.base, "a@x.test", PASSWORD).await;
    let token = body["token"].as_str().unwrap().to_string();
    let ran = w.run_with(
        &["user", "passwd", "--email", "a@x.test", "--password-stdin"],
        &[],
        Some("a brand new password\n"),
    );
    assert!(ran.ok(), "{ran:?}");
    assert!(ran.stdout.contains("1 session(s) ended"), "{ran:?}");
    let (status, old) = me(&server.base, &token).await;
    assert_eq!(status, 401);
    // It says what happened, not "another of your devices".
    assert!(old.to_string().contains("Your password was reset"), "{old}");
    assert_eq!(api_login(&server.base, "a@x.test", PASSWORD).await.0, 401);
    let (status, body) = api_login(&server.base, "a@x.test", "a brand new password").await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    for (weak, why) in [
        ("short", "at least 10 characters"),
        ("password2024", "too easy to guess"),
    ] {
        let ran = w.run_with(
            &["user", "passwd", "--email", "a@x.test", "--password-stdin"],
            &[],
            Some(weak),
        );
        assert!(!ran.ok(), "{ran:?}");
        assert!(ran.stderr.contains(why), "{weak}: {ran:?}");
    }
    assert_eq!(
        me(&server.base, &token).await.0,
        200,
        "a refused change ends nothing"
    );
    assert_eq!(verify(&server.base, &token, 8).await, vec![200; 8]);

    // Disable: sessions end, sign-in is refused.
    let ran = w.run(&["user", "disable", "--email", "a@x.test"]);
    assert!(
        ran.ok() && ran.stdout.contains("1 session(s) ended"),
        "{ran:?}"
    );
    assert_eq!(verify(&server.base, &token, 2).await, vec![401; 2]);
    assert_eq!(me(&server.base, &token).await.0, 401);
    assert_eq!(
        api_login(&server.base, "a@x.test", "a brand new password")
            .await
            .0,
        401
    );

    // Backup while the server runs.
    let ran = w.run(&["backup", "backup.sqlite3"]);
    assert!(ran.ok(), "{ran:?}");
    let copy = rusqlite::Connection::open(w.dir.path().join("backup.sqlite3")).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let users: i64 = copy
        .query_row(
            "SELECT count(*) FROM users WHERE email IN ('a@x.test', 'gen@x.test')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(users, 2);
    let sessions: i64 = copy
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert!(sessions >= 3, "{sessions}");
    // Never over an existing file.
    let ran = w.run(&["backup", "backup.sqlite3"]);
    assert!(
        !ran.ok() && ran.stderr.contains("already exists"),
        "{ran:?}"
    );
}

// ---------------------------------------------------------------- serve

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_serve_prints_a_setup_url_that_creates_the_owner() {
    let w = Workdir::new();
    let mut served = w.serve(&[]);
    let line = served.wait_for("/setup?token=");
    let url = line[line.find("http://").expect("a URL")..]
        .trim()
        .to_string();
    assert!(url.starts_with(&served.url("/setup?token=")), "{url}");
    let token = url.split("token=").nth(1).unwrap().to_string();

    let http = client();
    let page = http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(form_value(&html, "token").as_deref(), Some(token.as_str()));

    for wrong in ["/setup?token=wrong", "/setup", "/setup?token="] {
        let resp = http.get(served.url(wrong)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{wrong}");
    }
    let form = |token: &str, password: &str| {
        vec![
            ("token", token.to_string()),
            ("account", "Ops".to_string()),
            ("name", "Olivia Owner".to_string()),
            ("email", "olivia@ops.test".to_string()),
            ("password", password.to_string()),
        ]
    };
    let resp = http
        .post(served.url("/setup"))
        .form(&form("wrong", "owner password 1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // A weak password shows the form again; the token still works.
    let resp = http
        .post(served.url("/setup"))
        .form(&form(&token, "short"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("at least 10"));

    let resp = http
        .post(served.url("/setup"))
        .form(&form(&token, "owner password 1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let to = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/login"), "{to}");

    let (status, body) = api_login(&served.base, "olivia@ops.test", "owner password 1").await;
    assert_eq!(status, 201, "{body}");
    let (_, who) = me(&served.base, body["token"].as_str().unwrap()).await;
    assert_eq!(who["user"]["role"], "owner");
    assert_eq!(who["user"]["account"]["name"], "Ops");
    assert_eq!(who["user"]["name"], "Olivia Owner");

    // The token was for one use.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    let resp = http
        .post(served.url("/setup"))
        .form(&[
            ("token", token.as_str()),
            ("account", "Evil"),
            ("name", "Eve"),
            ("email", "eve@evil.test"),
            ("password", "owner password 2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    drop(http);

    let started = Instant::now();
    assert_eq!(served.terminate(), Some(0), "{}", served.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!served.stderr().contains("owner password"));

    // The next start has an owner: no setup URL.
    let served = w.serve(&[]);
    served.wait_for("listening");
    let resp = client().get(served.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        !served.stderr().contains("/setup?token="),
        "{}",
        served.stderr()
    );
    assert_eq!(
        client()
            .get(served.url(&format!("/setup?token={token}")))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "an old setup token is dead after a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_settings_create_the_owner() {
    let w = Workdir::new();
    let env = [
        ("DOORMAN_BOOTSTRAP__EMAIL", "boss@x.test"),
        ("DOORMAN_BOOTSTRAP__PASSWORD", "bootstrap password 9"),
    ];
    let mut served = w.serve(&env);
    served.wait_for("listening");
    let (status, body) = api_login(&served.base, "boss@x.test", "bootstrap password 9").await;
    assert_eq!(status, 201, "{body}\n{}", served.stderr());
    let (_, who) = me(&served.base, body["token"].as_str().unwrap()).await;
    assert_eq!(who["user"]["role"], "owner");
    let log = served.stderr();
    assert!(!log.contains("/setup?token="), "{log}");
    assert!(!log.contains("bootstrap password 9"), "{log}");
    assert_eq!(served.terminate(), Some(0), "{}", served.stderr());

    // Started again with the same settings: the owner is kept, not re-created.
    let mut served = w.serve(&env);
    served.wait_for("listening");
    assert_eq!(
        api_login(&served.base, "boss@x.test", "bootstrap password 9")
            .await
            .0,
        201
    );
    assert!(
        !served.stderr().contains("cannot create"),
        "{}",
        served.stderr()
    );
    assert_eq!(served.terminate(), Some(0));
    let c = rusqlite::Connection::open(w.db()).unwrap();
    let owners: i64 = c
        .query_row("SELECT count(*) FROM users WHERE role = 'owner'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(owners, 1);
}

#[test]
fn serve_on_a_busy_port_fails_clearly() {
    let w = Workdir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = w
        .cmd(&["serve"])
        .env("DOORMAN_SERVER__LISTEN", &addr)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot listen") && stderr.contains(&addr),
        "{stderr}"
    );
}

/// Resident anonymous memory (heap) of a process, in bytes.
fn rss_anon(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_geoip_database_is_extracted_once_and_mapped() {
    use std::os::unix::fs::MetadataExt;
    let w = Workdir::new();
    let extracted = || -> Vec<PathBuf> {
        std::fs::read_dir(w.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                name.starts_with("dbip-city-") && name.ends_with(".mmdb")
            })
            .collect()
    };
    let mut served = w.serve(&[]);
    served.wait_for("listening");
    let mut files = extracted();
    files.sort();
    assert_eq!(files.len(), 2, "the IPv4 and the IPv6 file: {files:?}");
    let meta = std::fs::metadata(&files[0]).unwrap();
    assert!(meta.len() > 10_000_000, "{}", meta.len());
    // The ~135 MB database is in the page cache, not in the process's heap.
    let heap = rss_anon(served.child.id());
    assert!(heap < 50_000_000, "anonymous RSS {heap} bytes");
    assert_eq!(served.terminate(), Some(0), "{}", served.stderr());

    // The next start maps the same file again.
    let mut served = w.serve(&[]);
    served.wait_for("listening");
    let mut again = extracted();
    again.sort();
    assert_eq!(again, files);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().ino(), meta.ino());
    assert_eq!(served.terminate(), Some(0), "{}", served.stderr());
}
