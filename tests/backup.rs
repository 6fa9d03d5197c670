#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Scheduled backups and `doorman restore` (SPEC §17), on real servers and the real
//! binary: backups appear at start and on schedule, are whole SQLite databases, are
//! pruned to `backup.keep`; a failure is counted and shown to the owner; a restore
//! refuses while a server runs and refuses bad files, replacing nothing.
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::process::{Doorman, add_user};
use common::*;
use doorman::model::Role;

const BIN: &str = env!("CARGO_BIN_EXE_doorman");

/// The backups in `dir` (file names), oldest first.
fn backups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("doorman-") && n.ends_with(".sqlite3.zst"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits (at most `limit`) until `ok` holds; panics with `what` otherwise.
async fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Unpacks a backup into a new file beside it and returns that file.
fn unpack(backup: &Path, into: &Path) -> PathBuf {
    let out = into.join(format!(
        "{}.plain",
        backup.file_name().unwrap().to_string_lossy()
    ));
    let bytes = std::fs::read(backup).unwrap();
    let plain = zstd::decode_all(&bytes[..]).unwrap();
    std::fs::write(&out, plain).unwrap();
    out
}

fn emails(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut stmt = c.prepare("SELECT email FROM users ORDER BY email").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// One value of `/metrics` (a series without labels).
async fn metric(s: &TestServer, name: &str) -> f64 {
    let text = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_come_on_schedule_are_whole_databases_and_are_pruned_to_keep() {
    let started = Instant::now();
    let holder = tempfile::tempdir().unwrap();
    let dir = holder.path().join("backups");
    let d = dir.clone();
    let s = start_with(move |c| {
        c.backup.dir = d;
        c.backup.interval = Duration::from_secs(1);
        c.backup.keep = 3;
    })
    .await;
    s.user("Acme", "alice@example.com", Role::User).await;
    std::fs::write(dir.join("notes.txt"), b"not a backup").unwrap();
    // Sign-ins write all along: the backups are taken while the server is busy.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, url) = (stop.clone(), s.url("/api/v1/login"));
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = serde_json::json!({"email": "alice@example.com", "password": PASSWORD});
                let resp = client().post(&url).json(&body).send().await.unwrap();
                assert_eq!(resp.status(), 201);
                n += 1;
            }
            n
        })
    };
    // Every name ever seen: at least five backups taken while only three remain.
    // (One more than `keep` may show for a moment: a new backup is renamed into place
    // before the oldest is deleted.)
    let mut seen = BTreeSet::new();
    wait_for(Duration::from_secs(30), "five backups", || {
        let now = backups(&dir);
        assert!(now.len() <= 4, "more than keep = 3 backups: {now:?}");
        seen.extend(now);
        seen.len() >= 5
    })
    .await;
    wait_for(Duration::from_secs(5), "three backups", || {
        backups(&dir).len() == 3
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sign_ins = load.await.unwrap();
    assert!(sign_ins > 0);
    let last = metric(&s, "doorman_backup_last_success_timestamp_seconds").await as i64;
    assert!(last > 0);
    assert_eq!(metric(&s, "doorman_backup_failures_total").await, 0.0);
    // Stopped, so that no backup comes or goes while the files are read; one under
    // way finishes (and cleans up after itself) before the schedule ends.
    let mut s = s;
    s.stop().await;
    s.wait_background_ended().await;
    let tmp = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"));
    assert!(!tmp, "a backup's work files are left behind");
    let now = backups(&dir);
    assert_eq!(now.len(), 3, "{now:?}");
    let newest = dir.join(now.last().unwrap());
    #[cfg(unix)]
    assert_eq!(mode(&newest), 0o600, "backups are private");
    let plain = unpack(&newest, holder.path());
    assert_eq!(integrity(&plain), "ok");
    assert!(
        emails(&plain).contains(&"alice@example.com".to_string()),
        "the user created after start is in a later backup"
    );
    let c = rusqlite::Connection::open(&plain).unwrap();
    let sessions: i64 = c
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert!(
        sessions > 0,
        "sign-ins made while serving are in the backup"
    );
    for name in &now {
        let p = unpack(&dir.join(name), holder.path());
        assert_eq!(integrity(&p), "ok", "{name}");
    }
    assert!(dir.join("notes.txt").exists(), "only backups are pruned");
    let oldest_seen = seen.iter().next().unwrap();
    assert!(!now.contains(oldest_seen), "{oldest_seen} should be pruned");
    eprintln!("schedule test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_backup_is_taken_at_start_only_when_the_newest_is_older_than_interval() {
    let holder = tempfile::tempdir().unwrap();
    let dir = holder.path().join("backups");
    let d = dir.clone();
    let s = start_with(move |c| {
        c.backup.dir = d;
        c.backup.interval = Duration::from_secs(3600);
    })
    .await;
    wait_for(Duration::from_secs(15), "a backup at start", || {
        backups(&dir).len() == 1
    })
    .await;
    let first = backups(&dir)[0].clone();
    // A restart within the hour takes none: the newest is recent enough.
    let s = s.restart().await;
    // A window that must pass: no backup is taken within it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(backups(&dir), vec![first.clone()]);
    let at = metric(&s, "doorman_backup_last_success_timestamp_seconds").await as i64;
    assert!(
        at > 0,
        "the backup found on disk counts as the last success"
    );
    // When the newest is old, the next start takes one at once.
    let mut s = s;
    s.stop().await;
    std::fs::rename(
        dir.join(&first),
        dir.join("doorman-20200101T000000Z.sqlite3.zst"),
    )
    .unwrap();
    let s = s.restart().await;
    wait_for(Duration::from_secs(15), "a backup at start", || {
        backups(&dir).len() == 2
    })
    .await;
    assert_eq!(backups(&dir)[0], "doorman-20200101T000000Z.sqlite3.zst");
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_is_counted_and_shown_to_the_owner_only() {
    let holder = tempfile::tempdir().unwrap();
    let dir = holder.path().join("backups");
    let d = dir.clone();
    let s = start_with(move |c| {
        c.backup.dir = d;
        c.backup.interval = Duration::from_secs(1);
    })
    .await;
    s.user("Acme", "owner@example.com", Role::Owner).await;
    s.user("Acme", "admin@example.com", Role::Admin).await;
    let owner = browser();
    browser_login(&s, &owner, "owner@example.com").await;
    let admin = browser();
    browser_login(&s, &admin, "admin@example.com").await;
    let page = |b: &reqwest::Client| {
        let req = b.get(s.url("/settings/security/sessions/users"));
        async move { read(req.send().await.unwrap()).await }
    };
    wait_for(Duration::from_secs(15), "a first backup", || {
        !backups(&dir).is_empty()
    })
    .await;
    let p = page(&owner).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Last backup: "), "{}", p.body);
    // The directory goes away and a file takes its name: every backup now fails.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while metric(&s, "doorman_backup_failures_total").await < 1.0 {
        assert!(Instant::now() < deadline, "no failure counted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(metric(&s, "doorman_backup_last_success_timestamp_seconds").await > 0.0);
    let p = page(&owner).await;
    assert!(p.body.contains("The last backup failed at "), "{}", p.body);
    assert!(p.body.contains("Last good backup: "), "{}", p.body);
    let p = page(&admin).await;
    assert_eq!(p.status, 200);
    assert!(!p.body.to_lowercase().contains("backup"), "{}", p.body);
}

#[tokio::test]
async fn without_a_backup_dir_the_owner_page_says_nothing_of_backups() {
    let s = start().await;
    s.user("Acme", "owner@example.com", Role::Owner).await;
    let owner = browser();
    browser_login(&s, &owner, "owner@example.com").await;
    let p = read(
        owner
            .get(s.url("/settings/security/sessions/users"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, 200);
    assert!(!p.body.to_lowercase().contains("backup"), "{}", p.body);
    assert_eq!(
        metric(&s, "doorman_backup_last_success_timestamp_seconds").await,
        0.0
    );
}

// ------------------------------------------------------------------ the binary

/// The binary on `db` with no inherited `DOORMAN_*` settings, plus `env`.
fn run(db: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DOORMAN_") {
            c.env_remove(key);
        }
    }
    c.args(args)
        .current_dir(db.parent().unwrap())
        .env_remove("RUST_LOG")
        .env("DOORMAN_STORAGE__PATH", db)
        .env("DOORMAN_SECURITY__ARGON2__M", "1024")
        .env("DOORMAN_SECURITY__ARGON2__T", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.clone())))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Names in `dir` that a restore leaves behind (kept copies, work files).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("before-restore") || n.contains("restoring"))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_while_serving_then_puts_the_backup_in_place() {
    let holder = tempfile::tempdir().unwrap();
    let db = holder.path().join("doorman.sqlite3");
    let dir = holder.path().join("backups");
    add_user(&db, "alice@example.com", "Acme");
    let env = [("DOORMAN_BACKUP__DIR", dir.display().to_string())];
    let server = Doorman::start(&db, &env).await;
    wait_for(Duration::from_secs(15), "a backup at start", || {
        backups(&dir).len() == 1
    })
    .await;
    let backup = dir.join(&backups(&dir)[0]);
    add_user(&db, "bob@example.com", "Acme");

    let out = run(&db, &["restore", backup.to_str().unwrap()], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stop it first"), "{}", text(&out));
    assert!(leftovers(holder.path()).is_empty());
    let (status, _) = server.login("bob@example.com", None, None).await.unwrap();
    assert_eq!(status, 201, "nothing was replaced");

    // Stopped hard, with its write-ahead log still beside the file.
    server.kill9();
    let out = run(&db, &["restore", backup.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let kept = leftovers(holder.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].starts_with("doorman.sqlite3.before-restore-"),
        "{kept:?}"
    );
    assert!(text(&out).contains(&kept[0]), "{}", text(&out));
    let kept = holder.path().join(&kept[0]);
    assert_eq!(
        emails(&kept),
        vec!["alice@example.com", "bob@example.com"],
        "the replaced database is kept whole, its log folded in"
    );
    assert_eq!(emails(&db), vec!["alice@example.com"]);
    #[cfg(unix)]
    assert_eq!(mode(&db), 0o600);

    let server = Doorman::start(&db, &env).await;
    let (status, _) = server.login("alice@example.com", None, None).await.unwrap();
    assert_eq!(status, 201);
    let (status, _) = server.login("bob@example.com", None, None).await.unwrap();
    assert_eq!(status, 401, "bob came after the backup");
}

#[test]
fn restore_refuses_bad_files_and_replaces_nothing() {
    let holder = tempfile::tempdir().unwrap();
    let db = holder.path().join("doorman.sqlite3");
    add_user(&db, "alice@example.com", "Acme");
    let files = tempfile::tempdir().unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // Fold the log into the file, so that the file's bytes are the whole database.
    rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let good = std::fs::read(&db).unwrap();

    let not_sqlite = put(
        "notes.txt",
        &b"just some text, not a database\n".repeat(200),
    );
    let mut damaged = good.clone();
    let page = 4096;
    assert!(damaged.len() > 4 * page, "a database of several pages");
    for b in &mut damaged[page + 100..3 * page] {
        *b = 0x5a;
    }
    let corrupt = put("corrupt.sqlite3", &damaged);
    let packed = zstd::encode_all(&good[..], 3).unwrap();
    let truncated = put(
        "doorman-20260101T000000Z.sqlite3.zst",
        &packed[..packed.len() / 2],
    );
    let newer = put("newer.sqlite3", &good);
    {
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, 'future', 0)",
            [doorman::db::migrate::latest_version() + 1],
        )
        .unwrap();
    }
    let foreign = files.path().join("other.sqlite3");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();

    for (file, says) in [
        (&not_sqlite, "not a SQLite database"),
        (&corrupt, "integrity check"),
        (&truncated, "cannot be decompressed"),
        (&newer, "newer Doorman"),
        (&foreign, "not Doorman's"),
        (&files.path().join("missing.sqlite3"), "cannot read"),
    ] {
        let out = run(&db, &["restore", file.to_str().unwrap()], &[]);
        let all = text(&out);
        assert!(!out.status.success(), "{file:?}: {all}");
        assert!(all.contains(says), "{file:?} should say {says:?}: {all}");
        assert!(all.contains("nothing was replaced"), "{all}");
        assert_eq!(
            std::fs::read(&db).unwrap(),
            good,
            "{file:?} replaced the db"
        );
        assert!(leftovers(holder.path()).is_empty(), "{file:?}");
    }
    // A plain SQLite file of ours is taken as it is.
    let plain = put("plain.sqlite3", &good);
    let out = run(&db, &["restore", plain.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(emails(&db), vec!["alice@example.com"]);
}

#[test]
fn start_up_refuses_a_backup_dir_it_cannot_write_naming_the_key() {
    let holder = tempfile::tempdir().unwrap();
    let db = holder.path().join("doorman.sqlite3");
    let file = holder.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let port = process::free_port();
    let env = [
        ("DOORMAN_SERVER__LISTEN", format!("127.0.0.1:{port}")),
        (
            "DOORMAN_BACKUP__DIR",
            file.join("backups").display().to_string(),
        ),
        ("DOORMAN_BACKUP__INTERVAL", "0s".to_string()),
        ("DOORMAN_BACKUP__KEEP", "0".to_string()),
    ];
    let out = run(&db, &["serve"], &env);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    for key in ["backup.dir", "backup.interval", "backup.keep"] {
        assert!(all.contains(key), "{key} not named: {all}");
    }
    assert!(!db.exists(), "nothing was opened");
}
