//! Privacy (SPEC §17): retention enforced by the sweeper, old IPs shortened, a
//! person's data exported, and a deleted user erased from every table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use doorman::config::Cidr;
use doorman::domain::ops::sweeper;
use doorman::model::Role;
use serde_json::{Value, json};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

fn days(n: u64) -> Duration {
    Duration::from_secs(n * DAY as u64)
}

/// `now - secs` in SQL.
fn ago(secs: i64) -> String {
    format!("(CAST(strftime('%s','now') AS INTEGER) - {secs})")
}

fn ids(s: &TestServer, sql: &str) -> Vec<i64> {
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    let mut stmt = c.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_exactly_what_is_older_than_each_limit() {
    let s = start_with(|c| {
        c.sessions.retention = days(10);
        c.privacy.login_records_retention = days(20);
        c.privacy.alerts_retention = days(30);
        c.privacy.devices_retention = days(40);
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    for _ in 0..4 {
        s.token("ann@acme.test").await;
    }
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 4);
    assert_eq!(s.sql_i64("SELECT count(*) FROM devices"), 4);
    assert_eq!(s.sql_i64("SELECT count(*) FROM login_records"), 4);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM alerts"),
        3,
        "every new device after the first"
    );

    // Sessions: 1 ended just past the retention, 2 ended just within it, 3 live but
    // created long ago, 4 live.
    s.sql_exec(&format!(
        "UPDATE sessions SET ended_at = {}, end_reason = 'logout' WHERE id = 1",
        ago(10 * DAY + HOUR)
    ));
    s.sql_exec(&format!(
        "UPDATE sessions SET ended_at = {}, end_reason = 'logout' WHERE id = 2",
        ago(10 * DAY - HOUR)
    ));
    s.sql_exec(&format!(
        "UPDATE sessions SET created_at = {} WHERE id = 3",
        ago(300 * DAY)
    ));
    // Login records: 1 past, 2 within.
    s.sql_exec(&format!(
        "UPDATE login_records SET at = {} WHERE id = 1",
        ago(20 * DAY + HOUR)
    ));
    s.sql_exec(&format!(
        "UPDATE login_records SET at = {} WHERE id = 2",
        ago(20 * DAY - HOUR)
    ));
    // A backlog bigger than one batch, all past the retention.
    s.sql_exec(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
         INSERT INTO login_records (at, email, ip, user_agent, device_category, browser_name,
             browser_version, os_name, os_version, success, reason)
         SELECT {}, 'x' || i || '@nowhere.test', '192.0.2.1', '', 'Unknown', 'Unknown', '',
             'Unknown', '', 0, 'unknown_email' FROM n",
        ago(200 * DAY)
    ));
    // Alerts: the oldest past, the next within.
    let alert_ids = ids(&s, "SELECT id FROM alerts ORDER BY id");
    s.sql_exec(&format!(
        "UPDATE alerts SET created_at = {} WHERE id = {}",
        ago(30 * DAY + HOUR),
        alert_ids[0]
    ));
    s.sql_exec(&format!(
        "UPDATE alerts SET created_at = {} WHERE id = {}",
        ago(30 * DAY - HOUR),
        alert_ids[1]
    ));
    // Devices: the one of session 1 unseen past the retention, of session 2 within.
    s.sql_exec(&format!(
        "UPDATE devices SET last_seen = {} WHERE device_id = (SELECT device_id FROM sessions WHERE id = 1)",
        ago(40 * DAY + HOUR)
    ));
    s.sql_exec(&format!(
        "UPDATE devices SET last_seen = {} WHERE device_id = (SELECT device_id FROM sessions WHERE id = 2)",
        ago(40 * DAY - HOUR)
    ));
    let old_device = s
        .sql_text("SELECT device_id FROM sessions WHERE id = 1")
        .unwrap();

    sweeper::sweep_once(&s.state).await;

    assert_eq!(
        ids(&s, "SELECT id FROM sessions ORDER BY id"),
        vec![2, 3, 4]
    );
    assert_eq!(
        ids(&s, "SELECT id FROM login_records ORDER BY id"),
        vec![2, 3, 4]
    );
    assert_eq!(
        ids(&s, "SELECT id FROM alerts ORDER BY id"),
        alert_ids[1..].to_vec()
    );
    assert_eq!(s.sql_i64("SELECT count(*) FROM devices"), 3);
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM devices WHERE device_id = '{old_device}'"
        )),
        0
    );
    // A second pass finds nothing more.
    sweeper::sweep_once(&s.state).await;
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 3);
    assert_eq!(s.sql_i64("SELECT count(*) FROM login_records"), 3);
    assert_eq!(s.sql_i64("SELECT count(*) FROM alerts"), 2);
    assert_eq!(s.sql_i64("SELECT count(*) FROM devices"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_ips_keep_only_their_network() {
    let s = start_with(|c| {
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        c.privacy.truncate_ips_after = Some(days(7));
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    for ip in ["203.0.113.77", "2001:db8:abcd:12::5", "198.51.100.23"] {
        s.api_login_from("ann@acme.test", CHROME_MAC, Some(ip), None)
            .await;
    }
    s.login_raw(
        "ann@acme.test",
        "wrong",
        CHROME_MAC,
        Some("203.0.113.78"),
        None,
    )
    .await;
    // Everything from the first two addresses is eight days old; the rest is new.
    for (table, time) in [("sessions", "created_at"), ("login_records", "at")] {
        s.sql_exec(&format!(
            "UPDATE {table} SET {time} = {} WHERE ip IN ('203.0.113.77', '2001:db8:abcd:12::5', '203.0.113.78')",
            ago(8 * DAY)
        ));
    }
    s.sql_exec(&format!(
        "UPDATE alerts SET created_at = {} WHERE json_extract(details, '$.ip') = '2001:db8:abcd:12::5'",
        ago(8 * DAY)
    ));

    sweeper::sweep_once(&s.state).await;

    let session_ips = |s: &TestServer| {
        let c = rusqlite::Connection::open(&s.db_path).unwrap();
        let mut stmt = c.prepare("SELECT ip FROM sessions ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    assert_eq!(
        session_ips(&s),
        vec!["203.0.113.0/24", "2001:db8:abcd::/48", "198.51.100.23"]
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM login_records WHERE ip = '203.0.113.0/24'"),
        2,
        "the success and the failure"
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM login_records WHERE ip = '2001:db8:abcd::/48'"),
        1
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM login_records WHERE ip = '198.51.100.23'"),
        1
    );
    let alert_ips = ids(&s, "SELECT id FROM alerts ORDER BY id");
    assert_eq!(alert_ips.len(), 2);
    assert_eq!(
        s.sql_text(&format!(
            "SELECT json_extract(details, '$.ip') FROM alerts WHERE id = {}",
            alert_ips[0]
        ))
        .as_deref(),
        Some("2001:db8:abcd::/48")
    );
    assert_eq!(
        s.sql_text(&format!(
            "SELECT json_extract(details, '$.ip') FROM alerts WHERE id = {}",
            alert_ips[1]
        ))
        .as_deref(),
        Some("198.51.100.23")
    );
    // Shortened addresses are left alone by the next pass, and the young stay whole.
    sweeper::sweep_once(&s.state).await;
    assert_eq!(
        session_ips(&s),
        vec!["203.0.113.0/24", "2001:db8:abcd::/48", "198.51.100.23"]
    );
}

fn text_of(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_holds_everything_of_mine_and_nothing_of_others() {
    let s = start().await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let boss = s.user("Acme", "boss@acme.test", Role::Owner).await;
    let zed = s.user("Zeta", "zed@zeta.test", Role::User).await;
    let current = s.token("ann@acme.test").await;
    let ended = s.token("ann@acme.test").await;
    assert_eq!(s.post("/api/v1/logout", &ended, json!({})).await.0, 204);
    s.login_raw("ann@acme.test", "wrong", CHROME_MAC, None, None)
        .await;
    let bob = s.token("bob@acme.test").await;
    let ada = s.token("ada@acme.test").await;

    let (status, mine) = s.get("/api/v1/me/export", &current).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["profile"]["email"], "ann@acme.test");
    assert_eq!(mine["profile"]["id"], ann.id.0);
    assert_eq!(mine["profile"]["account_name"], "Acme");
    assert_eq!(mine["active_sessions"].as_array().unwrap().len(), 1);
    assert_eq!(mine["ended_sessions"].as_array().unwrap().len(), 1);
    assert_eq!(mine["ended_sessions"][0]["end_reason"], "logout");
    assert_eq!(mine["devices"].as_array().unwrap().len(), 2);
    let records = mine["login_records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records.iter().filter(|r| r["success"] == false).count(), 1);
    let alerts = mine["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "the second device alerted");
    assert_eq!(alerts[0]["details"]["to_email"], "ann@acme.test");
    let text = text_of(&mine);
    for absent in [
        "bob@",
        "ada@",
        "boss@",
        "zed@",
        "$argon2",
        "password_hash",
        "token_hash",
    ] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
    assert!(
        !text.contains(&current) && !text.contains(&ended),
        "a token in the export"
    );

    // An admin exports a user of their account, not one outside it or above them.
    let (status, theirs) = s
        .get(&format!("/api/v1/admin/users/{}/export", ann.id.0), &ada)
        .await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["profile"]["email"], "ann@acme.test");
    assert_eq!(theirs["login_records"].as_array().unwrap().len(), 3);
    for (id, who) in [
        (zed.id.0, &ada),
        (boss.id.0, &ada),
        (ann.id.0, &bob),
        (999_999, &ada),
    ] {
        let (status, body) = s
            .get(&format!("/api/v1/admin/users/{id}/export"), who)
            .await;
        assert_eq!(status, 404, "{id}: {body}");
        assert_eq!(body["error"], "not_found", "{body}");
    }

    // The page's link downloads the same document.
    let browser = browser();
    browser_login(&s, &browser, "ann@acme.test").await;
    let page = browser
        .get(s.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Download my data"), "{page}");
    assert!(
        page.contains("href=\"/settings/security/sessions/export\""),
        "{page}"
    );
    let resp = browser
        .get(s.url("/settings/security/sessions/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let download: Value = resp.json().await.unwrap();
    assert_eq!(download["profile"]["email"], "ann@acme.test");
    assert_eq!(download["active_sessions"].as_array().unwrap().len(), 2);
    assert!(!text_of(&download).contains("bob@"));
    // Signed out, the link leads to the sign-in page.
    let resp = client()
        .get(s.url("/settings/security/sessions/export"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert!(resp.headers().contains_key("location"));
}

/// Every row of every table, each value as text.
fn every_value(s: &TestServer) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 7, "{tables:?}");
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = c.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                let text = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).to_lowercase()
                    }
                    other => format!("{other:?}"),
                };
                out.push((table.clone(), text));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_erases_every_trace_in_one_step() {
    let s = start_with(|c| {
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
    })
    .await;
    let ann = s.user("Acme", "Ann@Acme.test", Role::User).await;
    let ada = s.user("Acme", "ada@acme.test", Role::Admin).await;
    let boss = s.user("Acme", "boss@acme.test", Role::Owner).await;
    let zed = s.user("Zeta", "zed@zeta.test", Role::Admin).await;
    let first = s
        .api_login_from("ann@acme.test", CHROME_MAC, Some("192.0.2.45"), None)
        .await;
    let device = first["device_id"].as_str().unwrap().to_string();
    let ann_token = first["token"].as_str().unwrap().to_string();
    s.api_login_from("ann@acme.test", FIREFOX_WIN, Some("192.0.2.46"), None)
        .await;
    s.login_raw(
        "ANN@acme.test",
        "wrong",
        CHROME_MAC,
        Some("192.0.2.47"),
        Some(&device),
    )
    .await;
    let ada_token = s.token("ada@acme.test").await;
    let zed_token = s.token("zed@zeta.test").await;
    assert!(s.sql_i64("SELECT count(*) FROM alerts") >= 1);
    let path = format!("/api/v1/admin/users/{}", ann.id.0);

    // Out of scope, above rank, oneself, or no admin: refused, nothing changes.
    assert_eq!(s.delete(&path, &zed_token).await.0, 404);
    assert_eq!(
        s.delete(&format!("/api/v1/admin/users/{}", boss.id.0), &ada_token)
            .await
            .0,
        404
    );
    assert_eq!(
        s.delete(&format!("/api/v1/admin/users/{}", zed.id.0), &ada_token)
            .await
            .0,
        404
    );
    let (status, body) = s
        .delete(&format!("/api/v1/admin/users/{}", ada.id.0), &ada_token)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("self_delete")),
        "{body}"
    );
    assert_eq!(s.delete(&path, &ann_token).await.0, 404);
    assert_eq!(
        s.delete("/api/v1/admin/users/nope", &ada_token).await.0,
        400
    );
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM sessions WHERE user_id = {}",
            ann.id.0
        )),
        2
    );

    let (status, body) = s.delete(&path, &ada_token).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(s.get("/api/v1/me", &ann_token).await.0, 401);
    assert_eq!(s.delete(&path, &ada_token).await.0, 404, "already gone");

    let values = every_value(&s);
    for needle in [
        "ann@acme.test",
        "192.0.2.45",
        "192.0.2.46",
        "192.0.2.47",
        &device,
    ] {
        let found: Vec<_> = values.iter().filter(|(_, v)| v.contains(needle)).collect();
        assert!(found.is_empty(), "{needle} is still in {found:?}");
    }
    // Everyone else is untouched.
    assert_eq!(s.get("/api/v1/me", &ada_token).await.0, 200);
    assert_eq!(s.sql_i64("SELECT count(*) FROM users"), 3);
    let (status, list) = s.get("/api/v1/admin/users", &ada_token).await;
    assert_eq!(status, 200);
    assert!(!text_of(&list).contains("ann@"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_operations_are_documented() {
    let s = start().await;
    let resp = client()
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    let spec: Value = resp.json().await.unwrap();
    let paths = &spec["paths"];
    assert_eq!(paths["/me/export"]["get"]["operationId"], "exportMyData");
    assert_eq!(
        paths["/admin/users/{id}/export"]["get"]["operationId"],
        "exportUser"
    );
    assert_eq!(
        paths["/admin/users/{id}"]["patch"]["operationId"], "updateUser",
        "the delete sits beside the update"
    );
    let delete = &paths["/admin/users/{id}"]["delete"];
    assert_eq!(delete["operationId"], "deleteUser");
    for code in ["204", "401", "404", "409"] {
        assert!(delete["responses"][code].is_object(), "{code}: {delete}");
    }
}
