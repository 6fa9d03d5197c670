//! Fault: `kill -9` of the real server in the middle of a burst of sign-ins and
//! terminations, then a restart on the same database.
//!
//! What must hold afterwards: the database is intact; every sign-in that was answered
//! 201 has its session and its token still works (unless a terminate of it was answered
//! 204); every terminate answered 204 still holds; every alert the sign-ins queued is
//! delivered after the restart. Delivery is at least once: a message sent just before
//! the crash may be sent again (same Message-ID), but none is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{Doorman, add_user};
use common::smtp::{SmtpServer, header};
use rusqlite::{Connection, OpenFlags};

const USERS: usize = 6;
/// Sessions per user made before the burst, for the burst to terminate.
const VICTIMS: usize = 4;

#[derive(Debug, Clone)]
struct Issued {
    id: String,
    token: String,
}

/// What the burst did and what it was told (None: no answer, the server died).
#[derive(Debug, Default)]
struct Record {
    sign_ins: Vec<Issued>,
    sign_ins_unanswered: usize,
    /// (session id, its token, status of DELETE /api/v1/sessions/{id}).
    ends: Vec<(Issued, Option<u16>)>,
}

struct Account {
    email: String,
    token: String,
    device: String,
}

async fn sign_in(d: &Doorman, email: &str, device: Option<&str>) -> Option<(Issued, String)> {
    let (status, body) = d.login(email, device, None).await.ok()?;
    assert_eq!(status, 201, "sign-in of {email}: {body}");
    Some((
        Issued {
            id: body["session"]["id"].as_str().unwrap().to_string(),
            token: body["token"].as_str().unwrap().to_string(),
        },
        body["device_id"].as_str().unwrap().to_string(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_answered_write_and_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doorman.sqlite3");
    let emails: Vec<String> = (0..USERS)
        .map(|i| format!("crash{i}@example.com"))
        .collect();
    for e in &emails {
        add_user(&db, e, "Crash");
    }
    // The SMTP port refuses connections during the burst, so every alert queued is still
    // in the outbox when the process dies.
    let mut smtp = SmtpServer::down().await;
    let env = [("DOORMAN_MAIL__SMTP_URL", smtp.url())];
    let server = Doorman::start(&db, &env).await;

    let record = Arc::new(Mutex::new(Record::default()));
    let mut accounts = Vec::new();
    let mut victims: Vec<Arc<Mutex<VecDeque<Issued>>>> = Vec::new();
    for email in &emails {
        // A first sign-in never alerts; its session ends the others.
        let (first, device) = sign_in(&server, email, None).await.unwrap();
        let mut queue = VecDeque::new();
        for _ in 0..VICTIMS {
            let (s, _) = sign_in(&server, email, Some(&device)).await.unwrap();
            record.lock().unwrap().sign_ins.push(s.clone());
            queue.push_back(s);
        }
        record.lock().unwrap().sign_ins.push(first.clone());
        accounts.push(Account {
            email: email.clone(),
            token: first.token,
            device,
        });
        victims.push(Arc::new(Mutex::new(queue)));
    }

    // The burst: per user one task signing in (every other time without a device id, so
    // alerts are queued) and one ending sessions, until the server stops answering.
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (account, queue) in accounts.into_iter().zip(victims) {
        let account = Arc::new(account);
        let (d, rec, q, st, a) = (
            server.clone(),
            record.clone(),
            queue.clone(),
            stop.clone(),
            account.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !st.load(Ordering::SeqCst) {
                let device = i.is_multiple_of(2).then_some(a.device.as_str());
                match sign_in(&d, &a.email, device).await {
                    Some((s, _)) => {
                        if i.is_multiple_of(3) {
                            q.lock().unwrap().push_back(s.clone());
                        }
                        rec.lock().unwrap().sign_ins.push(s);
                    }
                    None => {
                        rec.lock().unwrap().sign_ins_unanswered += 1;
                        return;
                    }
                }
                i += 1;
            }
        }));
        let (d, rec, st) = (server.clone(), record.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !st.load(Ordering::SeqCst) {
                let next = queue.lock().unwrap().pop_front();
                let Some(victim) = next else {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                };
                let path = format!("/api/v1/sessions/{}", victim.id);
                let answer = d.delete(&path, &account.token).await.ok().map(|r| r.0);
                let died = answer.is_none();
                rec.lock().unwrap().ends.push((victim, answer));
                if died {
                    return;
                }
            }
        }));
    }

    // Kill once the burst is well under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (signed, ended) = {
            let r = record.lock().unwrap();
            let ended = r.ends.iter().filter(|e| e.1 == Some(204)).count();
            (r.sign_ins.len(), ended)
        };
        if signed >= 120 && ended >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "burst too slow: {signed} sign-ins, {ended} ends"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(15), t)
            .await
            .expect("burst task did not stop")
            .unwrap();
    }
    let record = std::mem::take(&mut *record.lock().unwrap());
    let unanswered =
        record.sign_ins_unanswered + record.ends.iter().filter(|e| e.1.is_none()).count();
    eprintln!(
        "burst: {} sign-ins answered 201, {} ends answered, {unanswered} requests cut off by the kill",
        record.sign_ins.len(),
        record.ends.len() - record.ends.iter().filter(|e| e.1.is_none()).count()
    );
    assert!(
        unanswered > 0,
        "the kill did not land mid-burst: every request had been answered"
    );

    // The crashed files, read as they are (read-only: nothing is checkpointed here).
    let mailed = {
        let c = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "integrity_check after kill -9");
        let fk: i64 = c
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk, 0, "foreign key violations after kill -9");
        let pending: i64 = c
            .query_row(
                "SELECT count(*) FROM alerts WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(pending > 0, "no alert was queued by the burst");
        let mut stmt = c
            .prepare("SELECT message_id FROM alerts WHERE status IN ('pending', 'sent', 'failed')")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<HashSet<_>, _>>()
            .unwrap()
    };

    smtp.restart().await;
    let server = Doorman::start(&db, &env).await;

    // Every 204 holds.
    let ended: HashMap<&str, Option<u16>> = record
        .ends
        .iter()
        .map(|(s, status)| (s.id.as_str(), *status))
        .collect();
    let sql = Connection::open(&db).unwrap();
    for (s, status) in &record.ends {
        match status {
            Some(204) => {}
            None => continue,
            other => panic!("terminating {} answered {other:?}", s.id),
        }
        let (code, body) = server.get("/api/v1/me", &s.token).await;
        assert_eq!(code, 401, "terminated session {} works again: {body}", s.id);
        let reason: Option<String> = sql
            .query_row(
                "SELECT end_reason FROM sessions WHERE public_id = ?1 AND ended_at IS NOT NULL",
                [&s.id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(reason.as_deref(), Some("terminated"), "session {}", s.id);
    }
    // Every 201 has its row, and its token works unless it was terminated.
    for s in &record.sign_ins {
        let rows: i64 = sql
            .query_row(
                "SELECT count(*) FROM sessions WHERE public_id = ?1",
                [&s.id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 1, "session {} answered 201 but is gone", s.id);
        let expect = match ended.get(s.id.as_str()) {
            Some(Some(204)) => 401,
            Some(None) => continue, // the terminate may or may not have landed
            Some(Some(_)) | None => 200,
        };
        let (code, body) = server.get("/api/v1/me", &s.token).await;
        assert_eq!(code, expect, "session {}: {body}", s.id);
        if code == 200 {
            assert_eq!(body["session"]["id"], s.id.as_str());
        }
    }

    // Every queued alert is delivered after the restart (at least once).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: i64 = sql
            .query_row(
                "SELECT count(*) FROM alerts WHERE status IN ('pending', 'failed')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} alerts still unsent 30 s after the restart:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered: HashSet<String> = smtp
        .messages()
        .iter()
        .filter_map(|m| header(m, "message-id"))
        .collect();
    let lost: Vec<&String> = mailed.difference(&delivered).collect();
    assert!(lost.is_empty(), "alerts never delivered: {lost:?}");
    let sent: i64 = sql
        .query_row(
            "SELECT count(*) FROM alerts WHERE status = 'sent'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        sent as usize,
        mailed.len(),
        "every queued alert is marked sent"
    );

    let ok: String = sql
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
