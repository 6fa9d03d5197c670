//! The security log (SPEC §15) through the real server: each event once, with its
//! fields, after the action that causes it and not after one that fails; scope and
//! rank; paging while events are written; retention in batches; the pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::HashSet;

use common::*;
use doorman::model::Role;
use serde_json::{Value, json};

/// The events of `type` in the whole log, oldest first (read straight from the table,
/// as the owner's API would list them).
async fn events_of(s: &TestServer, owner: &str, kind: &str) -> Vec<Value> {
    let (status, body) = s
        .get(
            &format!("/api/v1/admin/events?type={kind}&limit=200"),
            owner,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut items = body["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

fn count(s: &TestServer, kind: &str) -> i64 {
    s.sql_i64(&format!(
        "SELECT count(*) FROM events WHERE type = '{kind}'"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_sign_out_events_have_their_fields() {
    let s = start().await;
    let owner = s.user("Ops", "root@ops.test", Role::Owner).await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    let root = s.token("root@ops.test").await;

    // A successful sign-in: session.created, with who, where, which device.
    let before = count(&s, "session.created");
    let sess = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    assert_eq!(count(&s, "session.created"), before + 1);
    let created = events_of(&s, &root, "session.created").await;
    let e = created.last().unwrap();
    assert_eq!(e["user"]["id"], ann.id.0);
    assert_eq!(e["user"]["email"], "ann@acme.test");
    assert_eq!(e["actor"]["id"], ann.id.0);
    assert_eq!(e["account"]["name"], "Acme");
    assert_eq!(e["session_id"], sess.id);
    assert_eq!(e["ip"], "127.0.0.1");
    assert_eq!(e["device"]["browser"], "Firefox");
    assert_eq!(e["details"]["application"], "api");
    assert!(e["at"].as_str().unwrap().ends_with('Z'));

    // Wrong password: login.failed about Ann, no session.created.
    let (status, _) = s
        .login_raw("ann@acme.test", "wrong password!", CHROME_MAC, None, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(count(&s, "session.created"), before + 1);
    let failed = events_of(&s, &root, "login.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["user"]["id"], ann.id.0);
    assert_eq!(failed[0]["details"]["reason"], "wrong_password");
    assert_eq!(failed[0]["details"]["email"], "ann@acme.test");
    assert_eq!(failed[0]["session_id"], Value::Null);

    // Unknown email: login.failed without a user or account.
    s.login_raw("nobody@acme.test", "whatever1", CHROME_MAC, None, None)
        .await;
    let failed = events_of(&s, &root, "login.failed").await;
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[1]["user"], Value::Null);
    assert_eq!(failed[1]["account"], Value::Null);
    assert_eq!(failed[1]["details"]["reason"], "unknown_email");

    // Sign-out: session.ended (reason logout, by Ann).
    let resp = client()
        .post(s.url("/api/v1/logout"))
        .bearer_auth(&sess.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let ended = events_of(&s, &root, "session.ended").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["session_id"], sess.id);
    assert_eq!(ended[0]["details"]["reason"], "logout");
    assert_eq!(ended[0]["details"]["by"], ann.id.0);
    // A second logout with the dead token is refused and records nothing.
    let resp = client()
        .post(s.url("/api/v1/logout"))
        .bearer_auth(&sess.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(count(&s, "session.ended"), 1);

    // My own log has my events only: not the unknown email's, not the owner's.
    let ann_token = s.token("ann@acme.test").await;
    let (status, mine) = s.get("/api/v1/events", &ann_token).await;
    assert_eq!(status, 200);
    let mine = mine["items"].as_array().unwrap();
    assert!(mine.iter().all(|e| e["user"]["id"] == ann.id.0), "{mine:?}");
    assert!(mine.len() >= 4);
    assert_ne!(owner.id, ann.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_sessions_records_one_event_per_session_with_who_and_why() {
    let s = start().await;
    s.user("Ops", "root@ops.test", Role::Owner).await;
    let ada = s.user("Acme", "ada@acme.test", Role::Admin).await;
    let bob = s.user("Acme", "bob@acme.test", Role::User).await;
    let root = s.token("root@ops.test").await;
    let admin = s.token("ada@acme.test").await;

    // Bob ends his other sessions: one event each, reason ended_other_sessions.
    let keep = login(&s, "bob@acme.test", CHROME_MAC).await;
    let other1 = login(&s, "bob@acme.test", FIREFOX_WIN).await;
    let other2 = login(&s, "bob@acme.test", SAFARI_IPHONE).await;
    let (status, body) = s.delete("/api/v1/sessions", &keep.token).await;
    assert_eq!((status, body["ended"].as_i64()), (200, Some(2)));
    let ended = events_of(&s, &root, "session.ended").await;
    let ids: HashSet<&str> = ended
        .iter()
        .map(|e| e["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from([other1.id.as_str(), other2.id.as_str()]));
    assert!(
        ended
            .iter()
            .all(|e| e["details"]["reason"] == "ended_other_sessions")
    );

    // The admin ends Bob's remaining session: terminated_by_admin, actor Ada.
    let (status, _) = s
        .delete(&format!("/api/v1/admin/sessions/{}", keep.id), &admin)
        .await;
    assert_eq!(status, 204);
    let last = events_of(&s, &root, "session.ended").await.pop().unwrap();
    assert_eq!(last["session_id"], keep.id);
    assert_eq!(last["details"]["reason"], "terminated_by_admin");
    assert_eq!(last["actor"]["id"], ada.id.0);
    assert_eq!(last["user"]["id"], bob.id.0);
    // Ending it again fails (404) and records nothing more.
    let (status, _) = s
        .delete(&format!("/api/v1/admin/sessions/{}", keep.id), &admin)
        .await;
    assert_eq!(status, 404);
    assert_eq!(count(&s, "session.ended"), 3);

    // Expiry: the sweeper ends it with reason idle_timeout and nobody as actor.
    let idle = login(&s, "bob@acme.test", CHROME_MAC).await;
    s.sql_exec(&format!(
        "UPDATE sessions SET expires_at = last_active_at - 1, created_at = last_active_at - 10
         WHERE public_id = '{}'",
        idle.id
    ));
    doorman::domain::ops::sweeper::sweep_once(&s.state).await;
    let last = events_of(&s, &root, "session.ended").await.pop().unwrap();
    assert_eq!(last["session_id"], idle.id);
    assert_eq!(last["details"]["reason"], "idle_timeout");
    assert_eq!(last["actor"], Value::Null);
    doorman::domain::ops::sweeper::sweep_once(&s.state).await;
    assert_eq!(count(&s, "session.ended"), 4, "swept once only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_changes_are_recorded_and_refused_changes_are_not() {
    let s = start().await;
    s.user("Ops", "root@ops.test", Role::Owner).await;
    let ada = s.user("Acme", "ada@acme.test", Role::Admin).await;
    let root = s.token("root@ops.test").await;
    let admin = s.token("ada@acme.test").await;

    let (status, body) = s
        .post(
            "/api/v1/admin/users",
            &admin,
            json!({"email": "cy@acme.test", "name": "Cy", "role": "user", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let cy = body["user"]["id"].as_i64().or(body["id"].as_i64()).unwrap();
    let created = events_of(&s, &root, "user.created").await;
    let e = created.last().unwrap();
    assert_eq!(
        (e["user"]["id"].as_i64(), e["actor"]["id"].as_i64()),
        (Some(cy), Some(ada.id.0))
    );
    assert_eq!(e["details"]["role"], "user");
    let n_created = count(&s, "user.created");
    // The same email again is refused: no event.
    let (status, _) = s
        .post(
            "/api/v1/admin/users",
            &admin,
            json!({"email": "CY@acme.test", "name": "Cy", "role": "user", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(count(&s, "user.created"), n_created);

    // Role change, then a refused one (granting owner): one event.
    let path = format!("/api/v1/admin/users/{cy}");
    let (status, _) = s.patch(&path, &admin, json!({"role": "admin"})).await;
    assert_eq!(status, 200);
    let (status, _) = s.patch(&path, &admin, json!({"role": "owner"})).await;
    assert_eq!(status, 403);
    let roles = events_of(&s, &root, "user.role_changed").await;
    assert_eq!(roles.len(), 1);
    assert_eq!(
        (
            roles[0]["details"]["from"].as_str(),
            roles[0]["details"]["to"].as_str()
        ),
        (Some("user"), Some("admin"))
    );

    // Disable: user.disabled and the sessions' session.ended (user_disabled); enable.
    let cy_sess = login(&s, "cy@acme.test", CHROME_MAC).await;
    let (status, _) = s.patch(&path, &admin, json!({"status": "disabled"})).await;
    assert_eq!(status, 200);
    assert_eq!(count(&s, "user.disabled"), 1);
    let last = events_of(&s, &root, "session.ended").await.pop().unwrap();
    assert_eq!(last["session_id"], cy_sess.id);
    assert_eq!(last["details"]["reason"], "user_disabled");
    // Disabling again changes nothing and records nothing.
    s.patch(&path, &admin, json!({"status": "disabled"})).await;
    assert_eq!(count(&s, "user.disabled"), 1);
    s.patch(&path, &admin, json!({"status": "active"})).await;
    assert_eq!(count(&s, "user.enabled"), 1);
    // Disabling oneself is refused: nothing recorded.
    let (status, _) = s
        .patch(
            &format!("/api/v1/admin/users/{}", ada.id.0),
            &admin,
            json!({"status": "disabled"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(count(&s, "user.disabled"), 1);

    // Deleting Cy: user.deleted by Ada, and Cy's events become tombstones.
    let resp = client()
        .delete(s.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let deleted = events_of(&s, &root, "user.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["user"]["id"], cy);
    assert_eq!(deleted[0]["user"]["email"], Value::Null);
    assert_eq!(deleted[0]["actor"]["id"], ada.id.0);
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM events WHERE user_id = {cy} AND (ip != '' OR browser_name != '')"
        )),
        0,
        "tombstones keep no IP or device"
    );
    let (_, all) = s
        .get(
            &format!("/api/v1/admin/events?user_id={cy}&limit=200"),
            &root,
        )
        .await;
    let all = all["items"].as_array().unwrap();
    assert!(all.len() >= 5, "{all:?}");
    assert!(
        all.iter()
            .all(|e| e["user"]["email"].is_null() && e["ip"] == "")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_alerts_and_refused_access_are_recorded() {
    let smtp = smtp::SmtpServer::start().await;
    let s = start_with(|c| {
        c.mail.smtp_url = smtp.url();
        c.applications = vec![doorman::config::Application {
            name: "Grafana".into(),
            url: "https://grafana.example.com".into(),
            allow_roles: vec!["admin".into()],
            ..Default::default()
        }];
        c.server.trusted_proxies = vec![doorman::config::Cidr("127.0.0.1/32".parse().unwrap())];
    })
    .await;
    s.user("Ops", "root@ops.test", Role::Owner).await;
    let dan = s.user("Acme", "dan@acme.test", Role::User).await;
    let root = s.token("root@ops.test").await;

    // The first sign-in alerts nobody; a second from a new device queues an alert,
    // which the worker sends: alert.queued, then alert.sent.
    let first = login(&s, "dan@acme.test", CHROME_MAC).await;
    assert_eq!(count(&s, "alert.queued"), 0);
    let second = login(&s, "dan@acme.test", FIREFOX_WIN).await;
    let queued = events_of(&s, &root, "alert.queued").await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["session_id"], second.id);
    assert_eq!(queued[0]["details"]["reasons"], "new_device");
    smtp.wait_for(1, std::time::Duration::from_secs(20)).await;
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = events_of(&s, &root, "alert.sent").await;
        if !sent.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["user"]["id"], dan.id.0);
    assert_eq!(sent[0]["session_id"], second.id);

    // A refused application: access.denied once, however often the proxy asks.
    for _ in 0..3 {
        let resp = client()
            .get(s.url("/auth/verify"))
            .bearer_auth(&first.token)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "grafana.example.com")
            .header("x-forwarded-uri", "/d/1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
    }
    // Recorded off the request path: wait for it, then let a window pass in which no
    // second one may come.
    eventually(std::time::Duration::from_secs(20), || async {
        count(&s, "access.denied") >= 1
    })
    .await;
    let denied = events_of(&s, &root, "access.denied").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(count(&s, "access.denied"), 1);
    assert_eq!(denied[0]["details"]["application"], "Grafana");
    assert_eq!(denied[0]["session_id"], first.id);

    // Password change through the page: a wrong current password is login.failed and
    // changes nothing; the right one is user.password_changed (and ends the other
    // sessions, each with its event).
    let b = browser();
    browser_login(&s, &b, "dan@acme.test").await;
    let page = b
        .get(s.url("/settings/profile"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let wrong = post_form(
        &b,
        &s,
        "/settings/security/password",
        &[
            ("csrf", &csrf),
            ("current", "not it at all"),
            ("new", "plum kettle orbit 7"),
            ("keep_current", "yes"),
        ],
    )
    .await;
    assert_ne!(wrong.status, 303, "a wrong current password is refused");
    assert_eq!(count(&s, "user.password_changed"), 0);
    let failed = events_of(&s, &root, "login.failed").await;
    assert_eq!(
        failed.last().unwrap()["details"]["reason"],
        "wrong_current_password"
    );
    let ok = post_form(
        &b,
        &s,
        "/settings/security/password",
        &[
            ("csrf", &csrf),
            ("current", PASSWORD),
            ("new", "plum kettle orbit 7"),
            ("keep_current", "yes"),
        ],
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let changed = events_of(&s, &root, "user.password_changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["actor"]["id"], dan.id.0);
    assert_eq!(changed[0]["details"]["sessions_ended"], 2);
    assert_eq!(changed[0]["ip"], "127.0.0.1");
    let reasons: Vec<Value> = events_of(&s, &root, "session.ended")
        .await
        .iter()
        .map(|e| e["details"]["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        vec![json!("password_changed"), json!("password_changed")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_and_rank_follow_the_sessions_rules() {
    let s = start().await;
    let owner = s.user("Ops", "root@ops.test", Role::Owner).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let bob = s.user("Acme", "bob@acme.test", Role::User).await;
    let hal = s.user("Hooli", "hal@hooli.test", Role::User).await;
    let acme_owner = s.user("Acme", "boss@acme.test", Role::Owner).await;
    for email in ["bob@acme.test", "hal@hooli.test", "boss@acme.test"] {
        s.token(email).await;
    }
    let root = s.token("root@ops.test").await;
    let admin = s.token("ada@acme.test").await;
    let bob_token = s.token("bob@acme.test").await;

    let (status, body) = s.get("/api/v1/admin/events?limit=200", &admin).await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items.iter().all(|e| e["account"]["name"] == "Acme"),
        "{items:?}"
    );
    assert!(
        items.iter().all(|e| e["user"]["id"] != acme_owner.id.0),
        "an owner's events are above an admin"
    );
    assert!(items.iter().any(|e| e["user"]["id"] == bob.id.0));

    // Out of scope: another account, a user there, an owner, a plain user.
    let hooli = s.sql_i64("SELECT id FROM accounts WHERE name = 'Hooli'");
    for path in [
        format!("/api/v1/admin/events?account_id={hooli}"),
        format!("/api/v1/admin/events?user_id={}", hal.id.0),
        format!("/api/v1/admin/events?user_id={}", acme_owner.id.0),
        format!("/api/v1/admin/events?user_id={}", owner.id.0),
    ] {
        let (status, body) = s.get(&path, &admin).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    let (status, _) = s.get("/api/v1/admin/events", &bob_token).await;
    assert_eq!(status, 404);

    // The owner sees every account and filters by one.
    let (_, all) = s.get("/api/v1/admin/events?limit=200", &root).await;
    let names: HashSet<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["account"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(names.contains("Hooli") && names.contains("Acme") && names.contains("Ops"));
    let (_, only) = s
        .get(&format!("/api/v1/admin/events?account_id={hooli}"), &root)
        .await;
    let only = only["items"].as_array().unwrap();
    assert!(!only.is_empty() && only.iter().all(|e| e["account"]["id"] == hooli));

    // Bad input: an unknown type, a bad time, a bad cursor, a reversed range.
    for q in [
        "type=session.nope",
        "since=yesterday",
        "cursor=abc",
        "limit=0",
        "since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z",
    ] {
        let (status, body) = s.get(&format!("/api/v1/events?{q}"), &bob_token).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
    // Time filters: nothing before 2000, everything since then.
    let (_, none) = s
        .get("/api/v1/events?until=2000-01-01T00:00:00Z", &bob_token)
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (_, since) = s
        .get(
            "/api/v1/events?since=2000-01-01T00:00:00Z&type=session.created",
            &bob_token,
        )
        .await;
    assert_eq!(since["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_while_events_are_written_misses_and_repeats_nothing() {
    let s = start().await;
    s.user("Ops", "root@ops.test", Role::Owner).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let root = s.token("root@ops.test").await;
    for _ in 0..40 {
        s.login_raw("ann@acme.test", "wrong password!", CHROME_MAC, None, None)
            .await;
    }
    let top = s.sql_i64("SELECT max(id) FROM events");

    // Someone keeps failing to sign in while the owner pages back through the log.
    let writer = {
        let base = s.base.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                let _ = client()
                    .post(format!("{base}/api/v1/login"))
                    .json(&json!({"email": format!("x{i}@acme.test"), "password": "whatever1"}))
                    .send()
                    .await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut first = true;
    loop {
        let (status, page) = s
            .get(
                &format!("/api/v1/admin/events?limit=7&cursor={cursor}"),
                &root,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        if first {
            // The walk starts at whatever is newest now; keep to the rows up to `top`
            // plus what the first page saw.
            first = false;
        }
        seen.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
        // Time is the subject: the pages are read apart, so writes fall between them.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    writer.await.unwrap();
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no event listed twice");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
    let expected = s.sql_i64(&format!("SELECT count(*) FROM events WHERE id <= {top}"));
    let listed_up_to_top = seen.iter().filter(|id| **id <= top).count() as i64;
    assert_eq!(
        listed_up_to_top, expected,
        "every event present at the start is listed"
    );
    let floor = *seen.last().unwrap();
    let start_id = seen[0];
    let in_range = s.sql_i64(&format!(
        "SELECT count(*) FROM events WHERE id BETWEEN {floor} AND {start_id}"
    ));
    assert_eq!(
        in_range,
        seen.len() as i64,
        "nothing missing between the first and last"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_events_in_batches() {
    let s = start_with(|c| {
        c.privacy.events_retention = std::time::Duration::from_secs(30 * 24 * 3600);
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.token("ann@acme.test").await;
    // 2500 old events (more than two batches) and the new ones of the sign-in.
    s.sql_exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
         INSERT INTO events (at, type, details) SELECT 1000 + i, 'login.failed', '{}' FROM n",
    );
    let recent = s.sql_i64("SELECT count(*) FROM events WHERE at > 100000");
    assert!(recent >= 2);
    let report = doorman::domain::people::privacy::enforce_retention(&s.state)
        .await
        .unwrap();
    assert_eq!(report.events, 2500);
    assert_eq!(s.sql_i64("SELECT count(*) FROM events"), recent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_list_filter_and_page() {
    let s = start().await;
    s.user("Ops", "root@ops.test", Role::Owner).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    s.user("Hooli", "hal@hooli.test", Role::User).await;
    for _ in 0..30 {
        s.token("bob@acme.test").await;
    }
    s.token("hal@hooli.test").await;
    for _ in 0..5 {
        s.login_raw("bob@acme.test", "wrong password!", CHROME_MAC, None, None)
            .await;
    }

    // Bob's own Security log tab.
    let b = browser();
    browser_login(&s, &b, "bob@acme.test").await;
    let page = read(b.get(s.url("/settings/security/log")).send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Security log") && page.body.contains("Sign-in refused"));
    assert!(page.body.contains("Older →"), "a second page");
    assert!(
        !page.body.contains("Team log"),
        "no team log for a plain user"
    );
    let team = read(b.get(s.url("/settings/team/log")).send().await.unwrap()).await;
    assert_eq!(team.status, 404);
    let filtered = read(
        b.get(s.url("/settings/security/log?type=session.created"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(filtered.body.contains("matching the filters"));
    assert!(!filtered.body.contains("Sign-in refused"));
    let bad = read(
        b.get(s.url("/settings/security/log?since=soon"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, 400);

    // The admin's team log: Acme only.
    let a = browser();
    browser_login(&s, &a, "ada@acme.test").await;
    let team = read(a.get(s.url("/settings/team/log")).send().await.unwrap()).await;
    assert_eq!(team.status, 200);
    assert!(team.body.contains("bob@acme.test"));
    assert!(!team.body.contains("hal@hooli.test"));
    assert!(
        team.body.contains("href=\"/settings/team/log\""),
        "reachable from the tabs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_note_is_in_the_session_ended_event() {
    let s = start().await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let bob = s.user("Acme", "bob@acme.test", Role::User).await;
    let admin = s.token("ada@acme.test").await;

    // One session, with a note: in the team log and in Bob's own log.
    let one = login(&s, "bob@acme.test", CHROME_MAC).await;
    let (status, _) = s
        .delete(
            &format!(
                "/api/v1/admin/sessions/{}?reason=Laptop%20reported%20stolen",
                one.id
            ),
            &admin,
        )
        .await;
    assert_eq!(status, 204);
    let ended = events_of(&s, &admin, "session.ended").await;
    let e = ended.last().unwrap();
    assert_eq!(e["session_id"], one.id);
    assert_eq!(e["details"]["note"], "Laptop reported stolen", "{e}");
    assert_eq!(e["details"]["reason"], "terminated_by_admin");
    let mine = login(&s, "bob@acme.test", FIREFOX_WIN).await;
    let (_, own) = s
        .get("/api/v1/events?type=session.ended", &mine.token)
        .await;
    assert_eq!(
        own["items"][0]["details"]["note"], "Laptop reported stolen",
        "{own}"
    );

    // Every session of a user, with a note: each event carries it.
    let two = login(&s, "bob@acme.test", SAFARI_IPHONE).await;
    let (status, body) = s
        .delete(
            &format!("/api/v1/admin/users/{}/sessions?reason=Offboarding", bob.id),
            &admin,
        )
        .await;
    assert_eq!((status, body["ended"].as_i64()), (200, Some(2)), "{body}");
    let ended = events_of(&s, &admin, "session.ended").await;
    let notes: HashSet<(String, String)> = ended[1..]
        .iter()
        .map(|e| {
            (
                e["session_id"].as_str().unwrap().to_string(),
                e["details"]["note"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        notes,
        HashSet::from([
            (mine.id.clone(), "Offboarding".to_string()),
            (two.id.clone(), "Offboarding".to_string()),
        ])
    );

    // Without a note there is none.
    let three = login(&s, "bob@acme.test", CHROME_MAC).await;
    let (status, _) = s
        .delete(&format!("/api/v1/admin/sessions/{}", three.id), &admin)
        .await;
    assert_eq!(status, 204);
    let last = events_of(&s, &admin, "session.ended").await.pop().unwrap();
    assert_eq!(last["session_id"], three.id);
    assert!(last["details"].get("note").is_none(), "{last}");
}
