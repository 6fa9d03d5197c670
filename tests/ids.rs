//! Ids are never given out twice (SPEC §19): after a deletion, a new user, session,
//! alert or event gets an id no deleted one had, so a deleted person's alert links do
//! nothing to anyone else and a new person never sees a deleted one's events; and a
//! database from before the change is upgraded in place with every row, id and
//! reference intact. Through the real server and a real SMTP receiver on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::smtp::{self, SmtpServer};
use common::*;
use doorman::model::Role;
use rusqlite::Connection;
use serde_json::{Value, json};

/// The token of the `path` link in a mail's text.
fn link_token(text: &str, path: &str) -> String {
    let marker = format!("{path}?t=");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{path} in {text}"))
        + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The alert links of the one alert mail to `to`: (end, confirm, secure).
fn alert_links(mails: &[String], to: &str) -> (String, String, String) {
    let mine: Vec<&String> = mails
        .iter()
        .filter(|m| smtp::header(m, "To").unwrap_or_default().contains(to))
        .collect();
    assert_eq!(mine.len(), 1, "one alert to {to}");
    let text = smtp::text_part(mine[0]);
    (
        link_token(&text, "/alerts/end"),
        link_token(&text, "/alerts/confirm"),
        link_token(&text, "/alerts/secure"),
    )
}

async fn post_link(s: &TestServer, path: &str, token: &str) -> Page {
    read(
        client()
            .post(s.url(path))
            .form(&[("t", token)])
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn event_ids(list: &Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

/// Waits for the one mail to `to`.
async fn mail_to(mail: &SmtpServer, to: &str) -> Vec<String> {
    for _ in 0..200 {
        let all = mail.messages();
        if all
            .iter()
            .any(|m| smtp::header(m, "To").unwrap_or_default().contains(to))
        {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no mail to {to}");
}

/// Ann's links (GET and POST) do nothing: 404, and no alert of anyone's is answered.
async fn links_do_nothing(s: &TestServer, links: &[(&str, &String)]) {
    for (path, token) in links {
        let page = read(
            client()
                .get(s.url(&format!("{path}?t={token}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(page.status, 404, "GET {path}: {}", page.body);
        assert!(!page.body.contains("Firefox"), "{}", page.body);
        let page = post_link(s, path, token).await;
        assert_eq!(page.status, 404, "POST {path}: {}", page.body);
    }
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM alerts WHERE link_used_at IS NOT NULL
               OR confirmed_at IS NOT NULL OR reported_at IS NOT NULL"
        ),
        0,
        "no alert was answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_id_links_and_events_never_reach_a_new_user() {
    let mail = SmtpServer::start().await;
    let url = mail.url();
    let s = start_with(move |c| c.mail.smtp_url = url).await;
    s.user("Acme", "admin@acme.test", Role::Admin).await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    let admin = s.token("admin@acme.test").await;

    // Ann signs in twice (the second from a new device: an alert with its links), and
    // changes her password (an event a new person must never see).
    let ann_first = login(&s, "ann@acme.test", CHROME_MAC).await;
    login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let got = mail_to(&mail, "ann@acme.test").await;
    let (end, confirm, secure) = alert_links(&got, "ann@acme.test");
    let ann_alert = s.sql_i64(&format!(
        "SELECT id FROM alerts WHERE user_id = {} AND reasons = 'new_device'",
        ann.id
    ));
    let (status, _) = s
        .post(
            "/api/v1/me/password",
            &ann_first.token,
            json!({"current_password": PASSWORD, "new_password": "violet tractor umbrella"}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, ann_log) = s.get("/api/v1/events", &ann_first.token).await;
    let ann_events = event_ids(&ann_log);
    assert!(ann_events.len() >= 3, "{ann_log}");

    // The newest user is deleted; the next one is created, and signs in twice too:
    // his own alert.
    let (status, body) = s
        .delete(&format!("/api/v1/admin/users/{}", ann.id), &admin)
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, bob) = s
        .post(
            "/api/v1/admin/users",
            &admin,
            json!({"email": "bob@acme.test", "name": "Bob", "role": "user", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{bob}");
    let bob_id = bob["id"].as_i64().unwrap();
    let bob_first = login(&s, "bob@acme.test", CHROME_MAC).await;
    let bob_second = login(&s, "bob@acme.test", FIREFOX_WIN).await;
    let got = mail_to(&mail, "bob@acme.test").await;
    alert_links(&got, "bob@acme.test");
    let bob_alert = s.sql_i64(&format!(
        "SELECT id FROM alerts WHERE user_id = {bob_id} AND reasons = 'new_device'"
    ));

    // Ann's links do nothing to Bob, on GET or POST.
    let links = [
        ("/alerts/end", &end),
        ("/alerts/confirm", &confirm),
        ("/alerts/secure", &secure),
    ];
    links_do_nothing(&s, &links).await;
    assert!(
        alive(&s, &bob_first.token).await,
        "Bob's first session lives"
    );
    assert!(
        alive(&s, &bob_second.token).await,
        "Bob's second session lives"
    );

    // Bob's security log holds only Bob's events: in the API…
    let (status, bob_log) = s.get("/api/v1/events", &bob_first.token).await;
    assert_eq!(status, 200);
    let bob_events = event_ids(&bob_log);
    assert!(!bob_events.is_empty());
    assert!(
        bob_events.iter().all(|id| !ann_events.contains(id)),
        "none of Ann's events: {bob_events:?} vs {ann_events:?}"
    );
    for e in bob_log["items"].as_array().unwrap() {
        assert_ne!(e["type"], "user.deleted", "{e}");
        assert_ne!(e["type"], "user.password_changed", "{e}");
    }
    // …and on the page.
    let b = browser();
    browser_login(&s, &b, "bob@acme.test").await;
    let page = read(b.get(s.url("/settings/security/log")).send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Signed in"), "{}", page.body);
    for foreign in ["Password changed", "User deleted", "deleted user"] {
        assert!(!page.body.contains(foreign), "{foreign}: {}", page.body);
    }

    // A deleted user's id, alert ids and event ids are not given out again.
    assert_ne!(bob_id, ann.id.0);
    assert!(bob_id > ann.id.0);
    assert!(bob_alert > ann_alert);

    // An alert id that a database from before this change gave out twice: Ann's link
    // names her as well as the alert, so it still does nothing to Bob's alert.
    s.sql_exec(&format!(
        "UPDATE alerts SET id = {ann_alert} WHERE id = {bob_alert}"
    ));
    links_do_nothing(&s, &links).await;
    assert!(alive(&s, &bob_first.token).await);
    assert!(alive(&s, &bob_second.token).await);
}

// ---------------------------------------------------------------------------------------
// upgrade

/// Every row of every table (but the migrations' own records and the search index's
/// shadow tables), by table: the columns, and each row as text, sorted.
type Snapshot = BTreeMap<String, (Vec<String>, Vec<String>)>;

fn columns(c: &Connection, table: &str) -> Vec<String> {
    let mut stmt = c
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn rows(c: &Connection, table: &str, cols: &[String]) -> Vec<String> {
    let select = cols
        .iter()
        .map(|c| format!("quote({c})"))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    let mut stmt = c.prepare(&format!("SELECT {select} FROM {table}")).unwrap();
    let mut all: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    all.sort();
    all
}

fn snapshot(c: &Connection) -> Snapshot {
    let mut stmt = c
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
               AND name NOT LIKE 'users_email_trigram%' AND name <> 'schema_migrations'",
        )
        .unwrap();
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let cols = columns(c, &t);
            let rows = rows(c, &t, &cols);
            (t, (cols, rows))
        })
        .collect()
}

/// A database as Doorman left it before ids were protected (migrations 0001–0011), with
/// rows in every table, gaps where rows were deleted, and a deleted user (7) and actor
/// (8) that only the security log remembers.
fn old_database(path: &std::path::Path, password_hash: &str, now: i64) {
    let mut c = Connection::open(path).unwrap();
    doorman::db::migrate::apply_until(&mut c, 11).unwrap();
    assert_eq!(
        c.query_row("SELECT max(version) FROM schema_migrations", [], |r| r
            .get::<_, i64>(0))
            .unwrap(),
        11
    );
    assert!(
        !c.query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'users'",
            [],
            |r| r.get::<_, String>(0)
        )
        .unwrap()
        .contains("AUTOINCREMENT")
    );
    c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let (t, later, soon) = (now - 600, now + 3600, now + 86_400);
    let hash = password_hash.replace('\'', "''");
    c.execute_batch(&format!(
        "INSERT INTO accounts (id, name, created_at, alerts_locked, require_second_factor)
             VALUES (1, 'Acme', {t}, 1, 0), (3, 'Beta', {t}, 0, 1);
         INSERT INTO users (id, account_id, email, email_lower, name, role, status,
             password_hash, created_at, credentials_version, invited_at, require_second_factor)
         VALUES
             (1, 1, 'Owner@Acme.test', 'owner@acme.test', 'Owner', 'owner', 'active', '{hash}', {t}, 0, NULL, 0),
             (2, 1, 'ann@acme.test', 'ann@acme.test', 'Ann', 'user', 'active', '{hash}', {t}, 3, NULL, 1),
             (5, 3, 'bea@beta.test', 'bea@beta.test', 'Bea', 'admin', 'disabled', '{hash}', {t}, 1, {t}, 0);
         INSERT INTO sessions (id, public_id, token_hash, user_id, account_id, application,
             device_id, user_agent, device_category, browser_name, browser_version, os_name,
             os_version, ip, country_code, country_name, city, created_at, last_active_at,
             expires_at, ended_at, ended_by, end_reason, email_lower, applications_used,
             latitude, longitude, accuracy_km, network, moved_country_code,
             moved_country_name, moved_city, moved_at, end_note, auth_methods, verified_at)
         VALUES
             (1, 'pub-one', x'01', 2, 1, 'web', 'dev-a', 'UA', 'pc', 'Chrome', '120', 'macOS',
              '10.15', '203.0.113.5', 'HU', 'Hungary', 'Budapest', {t}, {t}, {later}, NULL,
              NULL, NULL, 'ann@acme.test', '[{{\"name\":\"Wiki\",\"last_used_at\":{t}}}]',
              47.5, 19.04, 20, 'Office', 'JP', 'Japan', 'Tokyo', {t}, NULL,
              'password,totp', {t}),
             (2, 'pub-two', x'02', 2, 1, 'api', 'dev-b', 'UA2', 'smartphone', 'Safari', '17',
              'iOS', '17.1', '2001:db8::1', NULL, NULL, NULL, {t}, {t}, {later}, {t}, 1,
              'terminated_by_admin', '', '[]', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
              'Left the company', 'password', 0),
             (9, 'pub-nine', x'09', 1, 1, 'web', 'dev-c', 'UA3', 'pc', 'Firefox', '121',
              'Windows', '10', '198.51.100.1', 'GB', 'United Kingdom', NULL, {t}, {t}, {later},
              NULL, NULL, NULL, 'owner@acme.test', '[]', NULL, NULL, NULL, NULL, NULL, NULL,
              NULL, NULL, NULL, 'passkey', {t});
         INSERT INTO session_moves (session_id, country_code, at) VALUES (1, 'JP', {t});
         INSERT INTO devices (user_id, device_id, first_seen, last_seen)
             VALUES (2, 'dev-a', {t}, {t}), (1, 'dev-c', {t}, {t});
         INSERT INTO login_records (id, at, email, user_id, ip, country_code, country_name,
             city, device_id, user_agent, device_category, browser_name, browser_version,
             os_name, os_version, success, reason, latitude, longitude, accuracy_km, network)
         VALUES
             (1, {t}, 'ann@acme.test', 2, '203.0.113.5', 'HU', 'Hungary', 'Budapest', 'dev-a',
              'UA', 'pc', 'Chrome', '120', 'macOS', '10.15', 1, 'ok', 47.5, 19.04, 20, NULL),
             (4, {t}, 'nobody@acme.test', NULL, '192.0.2.1', NULL, NULL, NULL, NULL, 'curl',
              'crawler', 'curl', '', '', '', 0, 'unknown_email', NULL, NULL, NULL, NULL);
         INSERT INTO alerts (id, user_id, session_id, reasons, status, attempts,
             next_attempt_at, last_error, sent_at, created_at, held_back, reported_by,
             message_id, details, link_used_at, confirmed_at, reported_at)
         VALUES
             (2, 2, 1, 'new_device', 'sent', 1, {t}, NULL, {t}, {t}, 1, NULL, '<a2@doorman>',
              '{{\"to_email\":\"ann@acme.test\"}}', {t}, {t}, NULL),
             (1, 2, NULL, 'new_country', 'suppressed', 0, {t}, 'timeout', NULL, {t}, 0, 2,
              '<a1@doorman>', '{{}}', NULL, NULL, NULL),
             (6, 1, 9, 'new_device,travel', 'failed', 16, {t}, 'refused', NULL, {t}, 0, NULL,
              '<a6@doorman>', '{{}}', NULL, NULL, {t});
         INSERT INTO secrets (name, value) VALUES ('webhook_test', x'0102');
         INSERT INTO links (id, kind, user_id, token_hash, new_email, created_at, expires_at,
             used_at, revoked_at)
         VALUES (1, 'invite', 5, x'a1', NULL, {t}, {soon}, NULL, NULL),
                (3, 'email', 2, x'a3', 'ann@new.test', {t}, {soon}, NULL, {t});
         INSERT INTO alert_preferences (user_id, new_device, new_country, travel, moved)
             VALUES (2, 1, 0, 1, 0);
         INSERT INTO events (id, at, type, actor_id, user_id, account_id, session_id, ip,
             country_code, country_name, city, device_category, browser_name,
             browser_version, os_name, os_version, details)
         VALUES
             (1, {t}, 'session.created', 2, 2, 1, 'pub-one', '203.0.113.5', 'HU', 'Hungary',
              'Budapest', 'pc', 'Chrome', '120', 'macOS', '10.15', '{{}}'),
             (2, {t}, 'user.deleted', 8, 7, 1, NULL, '', NULL, NULL, NULL, '', '', '', '', '',
              '{{\"deleted_user_id\":7}}'),
             (10, {t}, 'alert.queued', NULL, 2, 1, 'pub-one', '', NULL, NULL, NULL, '', '', '',
              '', '', '{{\"alert_id\":2}}');
         INSERT INTO webhooks (id, url, events) VALUES (4, 'https://hooks.example/in', '[]');
         INSERT INTO webhook_deliveries (id, webhook_id, event_id, queue, message_id, status,
             attempts, next_attempt_at, last_error, created_at, delivered_at)
         VALUES (7, 4, 10, 2, 'msg_7', 'delivered', 1, {t}, NULL, {t}, {t});
         INSERT INTO second_factors (id, user_id, kind, name, secret, credential_id,
             credential, active, last_step, created_at, last_used_at)
         VALUES (3, 2, 'totp', 'Phone', x'00ff', NULL, NULL, 1, 123, {t}, {t});
         INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (2, x'c0de', NULL);
         INSERT INTO login_challenges (id, token_hash, purpose, user_id, credentials_version,
             application, device_id, target, factor_id, state, created_at, expires_at)
         VALUES (5, x'ce', 'second_factor', 2, 3, 'web', 'dev-a', '/', NULL, NULL, {t}, {later});"
    ))
    .unwrap();
    let dangling: i64 = c
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(dangling, 0, "the old database is itself consistent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_is_upgraded_with_every_row_id_and_reference_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doorman.sqlite3");
    let config = test_config(&path);
    let hash = doorman::domain::passwords::Hasher::new(&config.security.argon2)
        .unwrap()
        .hash_now(PASSWORD)
        .unwrap();
    let now = common::factors::now() as i64;
    old_database(&path, &hash, now);
    let before = snapshot(&Connection::open(&path).unwrap());
    assert_eq!(before["users"].1.len(), 3);

    let s = start_in(dir, config).await;

    // Every row survived, with the same ids and contents (a new column is left out).
    let c = Connection::open(&s.db_path).unwrap();
    let after = snapshot(&c);
    for (table, (cols, rows_before)) in &before {
        assert!(after.contains_key(table), "{table} is gone");
        let rows_after = rows(&c, table, cols);
        for row in rows_before {
            assert!(
                rows_after.contains(row),
                "{table}: {row} is gone or changed; now {rows_after:#?}"
            );
        }
    }
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let dangling: i64 = c
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(dangling, 0, "no reference dangles");
    let triggers: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name NOT LIKE '%oidc%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        triggers, 4,
        "the email search and session email triggers are back"
    );
    drop(c);

    // The upgraded database works: Ann signs in with her password, from a new device
    // (an alert), and the owner finds her sessions by email.
    let (status, body) = s
        .login_raw("ann@acme.test", PASSWORD, FIREFOX_WIN, None, None)
        .await;
    assert_eq!(status, 200, "Ann has a second factor: {body}");
    let (status, body) = s
        .login_raw("Owner@acme.test", PASSWORD, FIREFOX_WIN, None, None)
        .await;
    assert_eq!(status, 201, "{body}");
    let owner = body["token"].as_str().unwrap().to_string();
    let (status, found) = s.get("/api/v1/admin/sessions?q=ANN@acme", &owner).await;
    assert_eq!(status, 200, "{found}");
    let ids: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pub-one"], "{found}");

    // A second sign-in of the owner, from a device it has not used: an alert.
    s.login_raw("owner@acme.test", PASSWORD, SAFARI_IPHONE, None, None)
        .await;
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM alerts WHERE id NOT IN (1, 2, 6)"),
        1
    );

    // New ids go above every id the old database gave out, deleted ones included.
    let carl = s.user("Acme", "carl@acme.test", Role::User).await;
    assert!(
        carl.id.0 > 8,
        "above the deleted user and actor: {}",
        carl.id
    );
    assert!(
        s.sql_i64("SELECT min(id) FROM sessions WHERE public_id NOT LIKE 'pub-%'") > 9,
        "new sessions go above 9"
    );
    assert!(
        s.sql_i64("SELECT min(id) FROM alerts WHERE id NOT IN (1, 2, 6)") > 6,
        "new alerts go above 6"
    );
    assert!(
        s.sql_i64("SELECT min(id) FROM events WHERE id NOT IN (1, 2, 10)") > 10,
        "new events go above 10"
    );
    // Erasing the newest user does not give its id out again.
    s.sql_exec(&format!(
        "DELETE FROM users WHERE id = {} AND email = 'carl@acme.test'",
        carl.id
    ));
    let dora = s.user("Acme", "dora@acme.test", Role::User).await;
    assert!(dora.id.0 > carl.id.0);
}
