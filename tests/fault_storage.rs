//! Fault: the database's disk is full, or read-only. Requests that must write answer
//! 503 `storage_unavailable` (a page says so for pages), reads keep working, and nothing
//! is half-written. The database lives on a small tmpfs mounted for the test (needs
//! root, as in CI), filled with a ballast file or remounted read-only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{Doorman, add_user};
use common::{CHROME_MAC, PASSWORD, TestServer, browser, form_value, start_in, test_config};
use doorman::model::Role;
use serde_json::Value;

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("vol");
        std::fs::create_dir(&dir).unwrap();
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            &dir,
        );
        Tmpfs {
            dir,
            _parent: parent,
        }
    }

    fn remount(&self, mode: &str) {
        run("mount", &["-o", &format!("remount,{mode}")], &self.dir);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a ballast file until the file system refuses more.
    fn fill(&self) -> PathBuf {
        let path = self.path("ballast");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0x5au8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds a file open: detach now, freed when it lets go.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} {} failed (these tests need root): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn counts(db: &Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    [
        "SELECT count(*) FROM sessions",
        "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL",
        "SELECT count(*) FROM login_records",
        "SELECT count(*) FROM devices",
        "SELECT count(*) FROM alerts",
        "SELECT count(*) FROM users",
    ]
    .iter()
    .map(|q| (q.to_string(), c.query_row(q, [], |r| r.get(0)).unwrap()))
    .collect()
}

fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn assert_unavailable(what: &str, status: u16, body: &Value) {
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(body["error"], "storage_unavailable", "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("database"), "{what}: {body}");
}

/// The sign-in form, filled in by a browser; returns (status, page).
async fn page_sign_in(base: &str, email: &str) -> (u16, String) {
    let b = browser();
    let page = b
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").expect("csrf field on the sign-in page");
    let resp = b
        .post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", PASSWORD),
            ("csrf", &csrf),
            ("rd", ""),
        ])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Reads a signed-in caller needs: /me, /auth/verify and the session list.
async fn reads_work(base: &str, token: &str, sessions: usize) {
    let c = common::client();
    let get = |path: &str| {
        c.get(format!("{base}{path}"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
    };
    let (status, me) = common::status_json(get("/api/v1/me").await.unwrap()).await;
    assert_eq!(status, 200, "GET /api/v1/me: {me}");
    let resp = get("/auth/verify").await.unwrap();
    assert_eq!(resp.status(), 200, "GET /auth/verify");
    assert_eq!(
        resp.headers()["x-doorman-session"].to_str().unwrap(),
        me["session"]["id"].as_str().unwrap()
    );
    let (status, list) = common::status_json(get("/api/v1/sessions").await.unwrap()).await;
    assert_eq!(status, 200, "GET /api/v1/sessions: {list}");
    let items = list.as_array().or(list["items"].as_array()).unwrap().len();
    assert_eq!(items, sessions, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_refuses_writes_with_503_and_keeps_reads() {
    let vol = Tmpfs::mount("4m");
    let db = vol.path("doorman.sqlite3");
    let mut config = test_config(&db);
    // Every read below is due an activity write, which must fail quietly.
    config.sessions.touch_interval = Duration::from_secs(1);
    let mut server: TestServer = start_in(tempfile::tempdir().unwrap(), config).await;
    let email = "full@example.com";
    server.user("Full", email, Role::User).await;
    let me = server.token(email).await;
    let other = server.api_login(email, CHROME_MAC).await;
    let other_id = other["session"]["id"].as_str().unwrap().to_string();

    let before = counts(&db);
    let ballast = vol.fill();
    // A window that must pass: past the touch interval, each read below is due an
    // activity write (which must fail quietly).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Writes: API sign-in, page sign-in, terminate, end others, sign out.
    let (status, body) = server
        .login_raw(email, PASSWORD, CHROME_MAC, None, None)
        .await;
    assert_unavailable("POST /api/v1/login", status, &body);
    let (status, page) = page_sign_in(&server.base, email).await;
    assert_eq!(status, 503, "POST /login: {page}");
    assert!(
        page.contains("The database cannot take this change right now"),
        "{page}"
    );
    let (status, body) = server
        .delete(&format!("/api/v1/sessions/{other_id}"), &me)
        .await;
    assert_unavailable("DELETE /api/v1/sessions/{id}", status, &body);
    let (status, body) = server.delete("/api/v1/sessions", &me).await;
    assert_unavailable("DELETE /api/v1/sessions", status, &body);
    let (status, body) = server.post("/api/v1/logout", &me, Value::Null).await;
    assert_unavailable("POST /api/v1/logout", status, &body);

    // Reads keep working, the failed activity write notwithstanding.
    reads_work(&server.base, &me, 2).await;
    let (status, body) = server.get("/healthz", "").await;
    assert_eq!(status, 200, "{body}");

    // Nothing was half-written.
    assert_eq!(counts(&db), before, "a refused write left rows behind");

    // Room again: writes work, on an intact database.
    std::fs::remove_file(ballast).unwrap();
    let (status, body) = server
        .delete(&format!("/api/v1/sessions/{other_id}"), &me)
        .await;
    assert_eq!(status, 204, "{body}");
    server.api_login(email, CHROME_MAC).await;
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM sessions"),
        before[0].1 + 1
    );
    assert_eq!(integrity(&db), "ok");
    server.stop().await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_database_refuses_writes_with_503_and_keeps_reads() {
    let vol = Tmpfs::mount("16m");
    let db = vol.path("doorman.sqlite3");
    let email = "ro@example.com";
    add_user(&db, email, "ReadOnly");
    let env = [("DOORMAN_SESSIONS__TOUCH_INTERVAL", "1s".to_string())];
    let server = Doorman::start(&db, &env).await;
    let (status, body) = server.login(email, None, None).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let me = body["token"].as_str().unwrap().to_string();
    let (status, body) = server.login(email, None, None).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let other_id = body["session"]["id"].as_str().unwrap().to_string();
    // The disk turns read-only under a running server, which dies and is restarted: its
    // -wal and -shm files stay behind (a clean shutdown case is the next test).
    server.kill9();
    drop(server);
    vol.remount("ro");
    let before = counts(&db);
    let server = Doorman::start(&db, &env).await;
    // A window that must pass: past the touch interval, each read below is due an
    // activity write (which must fail quietly).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (status, body) = server.login(email, None, None).await.unwrap();
    assert_unavailable("POST /api/v1/login", status, &body);
    let (status, page) = page_sign_in(&server.base, email).await;
    assert_eq!(status, 503, "POST /login: {page}");
    assert!(
        page.contains("The database cannot take this change right now"),
        "{page}"
    );
    let (status, body) = server
        .delete(&format!("/api/v1/sessions/{other_id}"), &me)
        .await
        .unwrap();
    assert_unavailable("DELETE /api/v1/sessions/{id}", status, &body);
    reads_work(&server.base, &me, 2).await;
    assert_eq!(counts(&db), before, "a refused write left rows behind");

    // Writable again: the same database takes writes, intact.
    server.kill9();
    drop(server);
    vol.remount("rw");
    let server = Doorman::start(&db, &env).await;
    let (status, body) = server
        .delete(&format!("/api/v1/sessions/{other_id}"), &me)
        .await
        .unwrap();
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.login(email, None, None).await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(integrity(&db), "ok");
}

/// A database closed cleanly (no -wal/-shm left) on a volume that is then read-only
/// cannot be opened by SQLite at all: Doorman must refuse to start with a message that
/// names the file, not hang or serve errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_volume_after_clean_shutdown_is_a_clear_start_error() {
    let vol = Tmpfs::mount("16m");
    let db = vol.path("doorman.sqlite3");
    add_user(&db, "clean@example.com", "ReadOnly");
    // A clean close: the last connection to close checkpoints and removes the -wal file.
    // It must have read the database for that: an unused connection never opens the WAL
    // (and the CLI process may have left it behind when it exited).
    let c = rusqlite::Connection::open(&db).unwrap();
    let users: i64 = c
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
    drop(c);
    assert!(
        !vol.path("doorman.sqlite3-wal").exists(),
        "a -wal file is still there after a clean close"
    );
    vol.remount("ro");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .arg("serve")
        .env("DOORMAN_STORAGE__PATH", &db)
        .env("DOORMAN_SERVER__LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .current_dir(&vol.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("doorman neither served nor gave up within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "doorman served a read-only volume");
    assert!(
        stderr.contains(&format!("cannot open database {}", db.display())),
        "{stderr}"
    );
}
