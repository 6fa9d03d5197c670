#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Active Sessions through the HTTP API (SPEC §2, §3, §7): the session JSON and its
//! order, the permission matrix for listing and ending, the current-session rule,
//! immediate effect of ending, admin search, filters and paging, and cookie auth with
//! its CSRF header.
mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::*;
use doorman::config::Application;
use doorman::model::{Role, User};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

// ---------------------------------------------------------------------------------------
// helpers

/// Runs a statement against the server's database (test set-up only: moving times).
fn sql_exec(s: &TestServer, sql: &str) -> usize {
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute(sql, []).unwrap()
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339_utc(v: &Value) -> i64 {
    let text = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let t = OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert!(t.offset().is_utc(), "{text} is not UTC");
    t.unix_timestamp()
}

fn is_active_in_db(s: &TestServer, id: &str) -> bool {
    s.sql_i64(&format!(
        "SELECT count(*) FROM sessions WHERE public_id = '{id}' AND ended_at IS NULL"
    )) == 1
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str, what: &str) {
    assert_eq!(status, want_status, "{what}: {body}");
    assert_eq!(body["error"], want_code, "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message: {body}"
    );
}

fn ids_of(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn set(ids: &[&Sess]) -> BTreeSet<String> {
    ids.iter().map(|s| s.id.clone()).collect()
}

/// GET /api/v1/admin/sessions with a query string; asserts 200 and returns the ids of
/// one page (limit 200, so every fixture fits).
async fn admin_ids(s: &TestServer, token: &str, query: &str) -> BTreeSet<String> {
    let path = format!("/api/v1/admin/sessions?limit=200&{query}");
    let (status, body) = s.get(&path, token).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert!(body["next_cursor"].is_null(), "{path}: {body}");
    let ids = ids_of(&body);
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates in {path}: {body}");
    unique
}

/// Two client accounts, each with an admin and two users, plus the owner in a third
/// account; everyone signed in once (admins twice).
struct World {
    s: TestServer,
    acme: i64,
    bravo: i64,
    owner_user: User,
    a_admin_u: User,
    a_ann_u: User,
    b_bea_u: User,
    owner: Sess,
    a_admin: Sess,
    a_admin2: Sess,
    a_ann: Sess,
    a_abe: Sess,
    b_admin: Sess,
    b_admin2: Sess,
    b_bea: Sess,
    b_bob: Sess,
}

async fn world() -> World {
    let s = start().await;
    let owner_user = s.user("Operators", "olga@ops.test", Role::Owner).await;
    let a_admin_u = s.user("Acme", "alice@acme.test", Role::Admin).await;
    let a_ann_u = s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "abe@acme.test", Role::User).await;
    s.user("Bravo", "barb@bravo.test", Role::Admin).await;
    let b_bea_u = s.user("Bravo", "bea@bravo.test", Role::User).await;
    s.user("Bravo", "bob@bravo.test", Role::User).await;
    World {
        acme: a_admin_u.account_id.0,
        bravo: b_bea_u.account_id.0,
        owner: login(&s, "olga@ops.test", CHROME_MAC).await,
        a_admin: login(&s, "alice@acme.test", CHROME_MAC).await,
        a_admin2: login(&s, "alice@acme.test", FIREFOX_WIN).await,
        a_ann: login(&s, "ann@acme.test", SAFARI_IPHONE).await,
        a_abe: login(&s, "abe@acme.test", FIREFOX_WIN).await,
        b_admin: login(&s, "barb@bravo.test", CHROME_MAC).await,
        b_admin2: login(&s, "barb@bravo.test", SAFARI_IPHONE).await,
        b_bea: login(&s, "bea@bravo.test", FIREFOX_WIN).await,
        b_bob: login(&s, "bob@bravo.test", CHROME_MAC).await,
        owner_user,
        a_admin_u,
        a_ann_u,
        b_bea_u,
        s,
    }
}

impl World {
    fn acme_sessions(&self) -> BTreeSet<String> {
        set(&[&self.a_admin, &self.a_admin2, &self.a_ann, &self.a_abe])
    }
    fn bravo_sessions(&self) -> BTreeSet<String> {
        set(&[&self.b_admin, &self.b_admin2, &self.b_bea, &self.b_bob])
    }
}

// ---------------------------------------------------------------------------------------
// My sessions: shape and order

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_sessions_json_shape_and_order() {
    // A long touch interval, so that the requests below do not move last activity and
    // the order is exactly the one set up here.
    let s = start_with(|c| c.sessions.touch_interval = Duration::from_secs(86_400)).await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let t0 = login(&s, "ann@acme.test", CHROME_MAC).await;
    let t1 = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let t2 = login(&s, "ann@acme.test", SAFARI_IPHONE).await;
    let t3 = login(&s, "ann@acme.test", CHROME_MAC).await;
    let gone = login(&s, "ann@acme.test", CHROME_MAC).await;
    let expired = login(&s, "ann@acme.test", CHROME_MAC).await;
    let bob = login(&s, "bob@acme.test", CHROME_MAC).await;

    let (status, _) = s.post("/api/v1/logout", &gone.token, json!({})).await;
    assert_eq!(status, 204);
    let n = now();
    let times = [
        (&t1, n - 5000), // the current one: the oldest activity, still listed first
        (&t0, n - 300),
        (&t2, n - 100),
        (&t3, n - 200),
        (&bob, n - 50),
    ];
    for (sess, at) in times {
        assert_eq!(
            sql_exec(
                &s,
                &format!(
                    "UPDATE sessions SET created_at = {at}, last_active_at = {at} WHERE public_id = '{}'",
                    sess.id
                )
            ),
            1
        );
    }
    sql_exec(
        &s,
        &format!(
            "UPDATE sessions SET expires_at = {} WHERE public_id = '{}'",
            n - 1,
            expired.id
        ),
    );

    let (status, body) = s.get("/api/v1/sessions", &t1.token).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(
        ids_of(&body),
        vec![t1.id.clone(), t2.id.clone(), t3.id.clone(), t0.id.clone()],
        "current first, then by last activity; ended, expired and other users' sessions absent: {body}"
    );

    let wanted_at: HashMap<&str, i64> = times.iter().map(|(x, at)| (x.id.as_str(), *at)).collect();
    for (i, item) in items.iter().enumerate() {
        let obj = item.as_object().unwrap();
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = [
            "id",
            "current",
            "user",
            "account",
            "application",
            "device",
            "ip",
            "location",
            "created_at",
            "last_active_at",
            "expires_at",
            "applications_used",
            "signed_in_to",
            "moved_to",
            "auth_methods",
        ]
        .into_iter()
        .collect();
        assert_eq!(keys, want, "session keys: {item}");
        assert_eq!(item["moved_to"], Value::Null, "not moved: {item}");
        assert_eq!(
            item["applications_used"],
            json!([]),
            "used with nothing yet"
        );
        assert_eq!(
            item["current"],
            json!(i == 0),
            "current only on the first: {item}"
        );
        assert_eq!(
            item["user"],
            json!({"id": ann.id.0, "email": "ann@acme.test"})
        );
        assert_eq!(
            item["account"],
            json!({"id": ann.account_id.0, "name": "Acme"})
        );
        assert_eq!(item["application"], "api");
        assert_eq!(item["ip"], "127.0.0.1");
        let dev = item["device"].as_object().unwrap();
        let dev_keys: BTreeSet<&str> = dev.keys().map(String::as_str).collect();
        assert_eq!(
            dev_keys,
            [
                "category",
                "browser",
                "browser_version",
                "os",
                "os_version",
                "label"
            ]
            .into_iter()
            .collect(),
            "{item}"
        );
        assert!(dev.values().all(Value::is_string), "{item}");
        let loc = item["location"].as_object().unwrap();
        let loc_keys: BTreeSet<&str> = loc.keys().map(String::as_str).collect();
        assert_eq!(
            loc_keys,
            ["country_code", "country", "city", "network"]
                .into_iter()
                .collect(),
            "{item}"
        );
        // Loopback has no location: every part null.
        assert!(loc.values().all(Value::is_null), "{item}");
        let at = wanted_at[item["id"].as_str().unwrap()];
        assert_eq!(rfc3339_utc(&item["created_at"]), at, "{item}");
        assert_eq!(rfc3339_utc(&item["last_active_at"]), at, "{item}");
        assert!(rfc3339_utc(&item["expires_at"]) > n, "{item}");
        assert_ne!(item["id"], json!(t1.token));
    }
    let firefox = &items[0]["device"];
    assert_eq!(firefox["browser"], "Firefox");
    assert_eq!(firefox["browser_version"].as_str().unwrap(), "121.0");
    assert_eq!(firefox["category"], "Desktop");
    assert!(firefox["os"].as_str().unwrap().starts_with("Windows"));
    assert!(
        firefox["label"]
            .as_str()
            .unwrap()
            .starts_with("Firefox 121 · Windows"),
        "{firefox}"
    );
    let iphone = &items[1]["device"];
    assert_eq!(iphone["category"], "Smartphone");
    assert_eq!(iphone["browser"], "Safari");
    let chrome = &items[2]["device"];
    assert_eq!(chrome["label"], "Chrome 120 · macOS 10.15 · Desktop");
}

// ---------------------------------------------------------------------------------------
// Permission matrix

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_user_has_no_admin_view_and_cannot_end_others() {
    let w = world().await;
    let s = &w.s;
    let ann = &w.a_ann.token;

    for path in [
        "/api/v1/admin/sessions",
        "/api/v1/admin/sessions?q=acme",
        &format!("/api/v1/admin/sessions?account_id={}", w.acme),
    ] {
        let (status, body) = s.get(path, ann).await;
        assert_error(status, &body, 404, "not_found", path);
    }
    // Sessions of someone else, in the same account and in another one.
    for victim in [&w.a_abe, &w.a_admin, &w.b_bea] {
        let path = format!("/api/v1/admin/sessions/{}", victim.id);
        let (status, body) = s.delete(&path, ann).await;
        assert_error(status, &body, 404, "not_found", &path);
        let path = format!("/api/v1/sessions/{}", victim.id);
        let (status, body) = s.delete(&path, ann).await;
        assert_error(status, &body, 404, "not_found", &path);
        assert!(alive(s, &victim.token).await, "{path} ended a session");
    }
    for path in [
        "/api/v1/admin/sessions?q=acme".to_string(),
        format!("/api/v1/admin/sessions?account_id={}", w.acme),
        format!("/api/v1/admin/users/{}/sessions", w.a_admin_u.id.0),
        format!("/api/v1/admin/users/{}/sessions", w.b_bea_u.id.0),
        format!("/api/v1/admin/users/{}/sessions", w.a_ann_u.id.0),
    ] {
        let (status, body) = s.delete(&path, ann).await;
        assert_error(status, &body, 404, "not_found", &path);
    }
    // An unknown id looks exactly like someone else's.
    let (status, body) = s.delete("/api/v1/sessions/no-such-session", ann).await;
    assert_error(status, &body, 404, "not_found", "unknown id");
    for sess in [
        &w.owner,
        &w.a_admin,
        &w.a_admin2,
        &w.a_abe,
        &w.b_admin,
        &w.b_admin2,
        &w.b_bea,
        &w.b_bob,
        &w.a_ann,
    ] {
        assert!(is_active_in_db(s, &sess.id), "{sess:?} ended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_and_end_only_their_own_account() {
    let w = world().await;
    let s = &w.s;
    let cases = [
        (
            "Acme admin",
            &w.a_admin,
            w.acme,
            w.bravo,
            w.acme_sessions(),
            [&w.b_bea, &w.b_admin2],
            &w.a_abe,
        ),
        (
            "Bravo admin",
            &w.b_admin,
            w.bravo,
            w.acme,
            w.bravo_sessions(),
            [&w.a_ann, &w.a_admin2],
            &w.b_bob,
        ),
    ];
    for (who, admin, own, other, own_sessions, foreign, mine_to_end) in cases {
        let tok = &admin.token;
        assert_eq!(admin_ids(s, tok, "").await, own_sessions, "{who}: listing");
        assert_eq!(
            admin_ids(s, tok, &format!("account_id={own}")).await,
            own_sessions,
            "{who}: own account filter"
        );
        let path = format!("/api/v1/admin/sessions?account_id={other}");
        let (status, body) = s.get(&path, tok).await;
        assert_error(status, &body, 404, "not_found", &format!("{who}: {path}"));
        let (status, body) = s.delete(&path, tok).await;
        assert_error(
            status,
            &body,
            404,
            "not_found",
            &format!("{who}: DELETE {path}"),
        );

        for victim in foreign {
            let path = format!("/api/v1/admin/sessions/{}", victim.id);
            let (status, body) = s.delete(&path, tok).await;
            assert_error(status, &body, 404, "not_found", &format!("{who}: {path}"));
            assert!(alive(s, &victim.token).await, "{who} ended {victim:?}");
            // Filtering by a foreign user shows nothing of theirs.
            let me = s.get("/api/v1/me", &victim.token).await.1;
            let uid = me["user"]["id"].as_i64().unwrap();
            let path = format!("/api/v1/admin/sessions?user_id={uid}");
            let (status, body) = s.get(&path, tok).await;
            assert!(
                status == 404 || (status == 200 && ids_of(&body).is_empty()),
                "{who}: {path} leaked: {status} {body}"
            );
            let path = format!("/api/v1/admin/users/{uid}/sessions");
            let (status, body) = s.delete(&path, tok).await;
            assert_error(status, &body, 404, "not_found", &format!("{who}: {path}"));
            assert!(alive(s, &victim.token).await, "{who} ended {victim:?}");
        }
        // The owner's session (another account) is out of reach too.
        let path = format!("/api/v1/admin/sessions/{}", w.owner.id);
        let (status, body) = s.delete(&path, tok).await;
        assert_error(status, &body, 404, "not_found", &format!("{who}: {path}"));
        assert!(alive(s, &w.owner.token).await);

        // A session of their own account: ended, at once.
        let path = format!("/api/v1/admin/sessions/{}", mine_to_end.id);
        let (status, body) = s.delete(&path, tok).await;
        assert_eq!(status, 204, "{who}: {path}: {body}");
        assert!(!alive(s, &mine_to_end.token).await, "{who}: still alive");
        assert!(!admin_ids(s, tok, "").await.contains(&mine_to_end.id));
        // Twice: it is no longer an active session.
        let (status, body) = s.delete(&path, tok).await;
        assert_error(status, &body, 404, "not_found", &format!("{who}: again"));
    }
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM sessions WHERE public_id IN ('{}', '{}') AND end_reason = 'terminated_by_admin' AND ended_by IS NOT NULL",
            w.a_abe.id, w.b_bob.id
        )),
        2
    );
    // Nothing else ended.
    for sess in [
        &w.owner,
        &w.a_admin,
        &w.a_admin2,
        &w.a_ann,
        &w.b_admin,
        &w.b_admin2,
        &w.b_bea,
    ] {
        assert!(is_active_in_db(s, &sess.id), "{sess:?} ended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_sees_every_account_and_ends_anything() {
    let w = world().await;
    let s = &w.s;
    let tok = &w.owner.token;
    let mut all = w.acme_sessions();
    all.extend(w.bravo_sessions());
    all.insert(w.owner.id.clone());
    assert_eq!(admin_ids(s, tok, "").await, all);
    assert_eq!(
        admin_ids(s, tok, &format!("account_id={}", w.acme)).await,
        w.acme_sessions()
    );
    assert_eq!(
        admin_ids(s, tok, &format!("account_id={}", w.bravo)).await,
        w.bravo_sessions()
    );
    assert_eq!(
        admin_ids(s, tok, &format!("account_id={}", w.owner_user.account_id.0)).await,
        set(&[&w.owner])
    );
    for victim in [&w.b_admin2, &w.a_ann] {
        let path = format!("/api/v1/admin/sessions/{}", victim.id);
        let (status, body) = s.delete(&path, tok).await;
        assert_eq!(status, 204, "{path}: {body}");
        assert!(!alive(s, &victim.token).await);
    }
    let path = format!("/api/v1/admin/users/{}/sessions", w.a_admin_u.id.0);
    let (status, body) = s.delete(&path, tok).await;
    assert_eq!((status, body), (200, json!({"ended": 2})), "{path}");
    assert!(!alive(s, &w.a_admin.token).await);
    assert!(!alive(s, &w.a_admin2.token).await);
    for sess in [&w.owner, &w.a_abe, &w.b_admin, &w.b_bea, &w.b_bob] {
        assert!(alive(s, &sess.token).await, "{sess:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The current session; ending takes effect at once

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_session_cannot_be_ended_from_the_list() {
    let w = world().await;
    let s = &w.s;
    for sess in [&w.a_ann, &w.a_admin, &w.owner] {
        let path = format!("/api/v1/sessions/{}", sess.id);
        let (status, body) = s.delete(&path, &sess.token).await;
        assert_eq!(status, 409, "{path}: {body}");
        assert_eq!(body["error"], "current_session", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("logout"),
            "the message points to logout: {body}"
        );
        assert!(alive(s, &sess.token).await);
    }
    for sess in [&w.a_admin, &w.owner] {
        let path = format!("/api/v1/admin/sessions/{}", sess.id);
        let (status, body) = s.delete(&path, &sess.token).await;
        assert_eq!(status, 409, "{path}: {body}");
        assert_eq!(body["error"], "current_session", "{body}");
        assert!(alive(s, &sess.token).await);
    }
    // Ending all of one's own sessions as an admin keeps the current one.
    let path = format!("/api/v1/admin/users/{}/sessions", w.a_admin_u.id.0);
    let (status, body) = s.delete(&path, &w.a_admin.token).await;
    assert_eq!((status, body), (200, json!({"ended": 1})));
    assert!(alive(s, &w.a_admin.token).await);
    assert!(!alive(s, &w.a_admin2.token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_session_refuses_exactly_that_token_at_once() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let mine = login(&s, "ann@acme.test", CHROME_MAC).await;
    let phone = login(&s, "ann@acme.test", SAFARI_IPHONE).await;
    let laptop = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let tablet = login(&s, "ann@acme.test", FIREFOX_WIN).await;

    // Use every token once first, so that any cache would have seen it valid.
    for t in [&mine, &phone, &laptop, &tablet] {
        assert!(alive(&s, &t.token).await);
        let resp = client()
            .get(s.url("/auth/verify"))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    let (status, body) = s
        .delete(&format!("/api/v1/sessions/{}", phone.id), &mine.token)
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, Value::Null);

    let (status, body) = s.get("/api/v1/me", &phone.token).await;
    assert_error(
        status,
        &body,
        401,
        "session_ended",
        "GET /me after terminate",
    );
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("Your session has ended. Please sign in again.")
            && msg.contains("It was ended from another of your devices."),
        "{body}"
    );
    for (token, want) in [
        (&phone.token, 401),
        (&mine.token, 200),
        (&laptop.token, 200),
    ] {
        let resp = client()
            .get(s.url("/auth/verify"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want);
        if want == 200 {
            assert_eq!(resp.headers()["x-doorman-email"], "ann@acme.test");
        } else {
            assert!(resp.headers().get("x-doorman-user").is_none());
        }
    }
    let (status, _) = s.get("/api/v1/sessions", &phone.token).await;
    assert_eq!(status, 401);
    assert!(alive(&s, &mine.token).await);
    assert!(alive(&s, &laptop.token).await);
    assert!(alive(&s, &tablet.token).await);
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM sessions WHERE public_id = '{}' AND end_reason = 'terminated'",
            phone.id
        )),
        1
    );
    // Already ended: no longer one of mine.
    let (status, body) = s
        .delete(&format!("/api/v1/sessions/{}", phone.id), &mine.token)
        .await;
    assert_error(status, &body, 404, "not_found", "ending twice");

    // End all the others: two left, the current stays.
    let (status, body) = s.delete("/api/v1/sessions", &laptop.token).await;
    assert_eq!((status, body), (200, json!({"ended": 2})));
    assert!(alive(&s, &laptop.token).await);
    assert!(!alive(&s, &mine.token).await);
    assert!(!alive(&s, &tablet.token).await);
    let (status, body) = s.get("/api/v1/sessions", &laptop.token).await;
    assert_eq!(status, 200);
    assert_eq!(ids_of(&body), vec![laptop.id.clone()]);
    let (status, body) = s.delete("/api/v1/sessions", &laptop.token).await;
    assert_eq!((status, body), (200, json!({"ended": 0})));
    assert!(alive(&s, &laptop.token).await);
}

// ---------------------------------------------------------------------------------------
// Admin search, filters and bulk ending

async fn search_world() -> (
    TestServer,
    HashMap<&'static str, Vec<Sess>>,
    HashMap<&'static str, User>,
) {
    let s = start_with(|c| {
        c.applications = vec![Application {
            name: "Grafana".into(),
            url: "https://grafana.example.test".into(),
            ..Default::default()
        }];
    })
    .await;
    let mut users = HashMap::new();
    for (account, email, role) in [
        ("Acme", "admin@acme.test", Role::Admin),
        ("Acme", "bob@acme.test", Role::User),
        ("Acme", "carol@acme.test", Role::User),
        ("Acme", "x_y@acme.test", Role::User),
        ("Bravo", "bobby@bravo.test", Role::User),
        ("Operators", "olga@ops.test", Role::Owner),
    ] {
        users.insert(email, s.user(account, email, role).await);
    }
    let mut sessions: HashMap<&'static str, Vec<Sess>> = HashMap::new();
    for (email, n) in [
        ("admin@acme.test", 2),
        ("bob@acme.test", 2),
        ("carol@acme.test", 2),
        ("x_y@acme.test", 1),
        ("bobby@bravo.test", 2),
        ("olga@ops.test", 1),
    ] {
        for _ in 0..n {
            let sess = login(&s, email, FIREFOX_WIN).await;
            sessions.entry(email).or_default().push(sess);
        }
    }
    let grafana = login_with(
        &s,
        "bob@acme.test",
        CHROME_MAC,
        json!({"application": "Grafana"}),
    )
    .await;
    sessions.get_mut("bob@acme.test").unwrap().push(grafana);
    (s, sessions, users)
}

fn ids(sessions: &HashMap<&'static str, Vec<Sess>>, emails: &[&str]) -> BTreeSet<String> {
    emails
        .iter()
        .flat_map(|e| sessions[e].iter().map(|x| x.id.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_search_and_filters() {
    let (s, sess, users) = search_world().await;
    let admin = &sess["admin@acme.test"][0].token;
    let owner = &sess["olga@ops.test"][0].token;
    let acme = [
        "admin@acme.test",
        "bob@acme.test",
        "carol@acme.test",
        "x_y@acme.test",
    ];

    // Case-insensitive substring of the email.
    assert_eq!(
        admin_ids(&s, admin, "q=BOB").await,
        ids(&sess, &["bob@acme.test"])
    );
    assert_eq!(
        admin_ids(&s, admin, "q=Carol%40ACME").await,
        ids(&sess, &["carol@acme.test"])
    );
    assert_eq!(admin_ids(&s, owner, "q=ACME").await, ids(&sess, &acme));
    assert_eq!(
        admin_ids(&s, owner, "q=bob").await,
        ids(&sess, &["bob@acme.test", "bobby@bravo.test"])
    );
    assert_eq!(admin_ids(&s, admin, "q=nobody").await, BTreeSet::new());
    // LIKE wildcards are literal.
    assert_eq!(
        admin_ids(&s, admin, "q=_").await,
        ids(&sess, &["x_y@acme.test"])
    );
    assert_eq!(
        admin_ids(&s, owner, "q=_").await,
        ids(&sess, &["x_y@acme.test"])
    );
    assert_eq!(admin_ids(&s, admin, "q=%25").await, BTreeSet::new());
    assert_eq!(admin_ids(&s, owner, "q=b%25b").await, BTreeSet::new());
    assert_eq!(admin_ids(&s, owner, "q=b_b").await, BTreeSet::new());

    // By user.
    let bob = users["bob@acme.test"].id.0;
    assert_eq!(
        admin_ids(&s, admin, &format!("user_id={bob}")).await,
        ids(&sess, &["bob@acme.test"])
    );
    assert_eq!(
        admin_ids(&s, admin, &format!("user_id={bob}&q=carol")).await,
        BTreeSet::new()
    );

    // By application.
    let grafana: BTreeSet<String> = [sess["bob@acme.test"][2].id.clone()].into();
    assert_eq!(admin_ids(&s, admin, "application=Grafana").await, grafana);
    assert_eq!(admin_ids(&s, owner, "application=Grafana").await, grafana);
    let (_, body) = s
        .get("/api/v1/admin/sessions?application=Grafana", admin)
        .await;
    assert_eq!(body["items"][0]["application"], "Grafana");
    let mut api = ids(&sess, &acme);
    api.remove(&sess["bob@acme.test"][2].id);
    assert_eq!(admin_ids(&s, admin, "application=api").await, api);
    assert_eq!(
        admin_ids(&s, admin, "application=web").await,
        BTreeSet::new()
    );

    // Nothing was ended by looking.
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NULL"),
        11
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bulk_end_needs_a_filter_and_spares_the_caller() {
    let (s, sess, users) = search_world().await;
    let admin = &sess["admin@acme.test"][0];
    let active = || s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NULL");
    assert_eq!(active(), 11);

    let (status, body) = s.delete("/api/v1/admin/sessions", &admin.token).await;
    assert_error(status, &body, 400, "filter_required", "no filter");
    assert_eq!(active(), 11, "ended sessions without a filter");

    // A user of another account: 404, nothing ended.
    let bobby = users["bobby@bravo.test"].id.0;
    let path = format!("/api/v1/admin/users/{bobby}/sessions");
    let (status, body) = s.delete(&path, &admin.token).await;
    assert_error(status, &body, 404, "not_found", &path);
    let (status, body) = s
        .delete(
            &format!("/api/v1/admin/sessions?user_id={bobby}"),
            &admin.token,
        )
        .await;
    assert_eq!((status, body.clone()), (200, json!({"ended": 0})), "{body}");
    assert_eq!(active(), 11);

    // Every session of one user.
    let carol = users["carol@acme.test"].id.0;
    let (status, body) = s
        .delete(
            &format!("/api/v1/admin/users/{carol}/sessions"),
            &admin.token,
        )
        .await;
    assert_eq!((status, body), (200, json!({"ended": 2})));
    for x in &sess["carol@acme.test"] {
        assert!(!alive(&s, &x.token).await);
    }
    assert_eq!(active(), 9);

    // By application.
    let (status, body) = s
        .delete("/api/v1/admin/sessions?application=Grafana", &admin.token)
        .await;
    assert_eq!((status, body), (200, json!({"ended": 1})));
    assert!(!alive(&s, &sess["bob@acme.test"][2].token).await);
    assert!(alive(&s, &sess["bob@acme.test"][0].token).await);

    // "Sign everyone in Acme out": everyone matching, but never the caller's current one.
    let (status, body) = s
        .delete("/api/v1/admin/sessions?q=ACME", &admin.token)
        .await;
    assert_eq!((status, body), (200, json!({"ended": 4})));
    assert!(
        alive(&s, &admin.token).await,
        "the caller's own session ended"
    );
    for x in [
        &sess["admin@acme.test"][1],
        &sess["bob@acme.test"][0],
        &sess["bob@acme.test"][1],
        &sess["x_y@acme.test"][0],
    ] {
        assert!(!alive(&s, &x.token).await, "{x:?}");
    }
    for x in sess["bobby@bravo.test"]
        .iter()
        .chain(&sess["olga@ops.test"])
    {
        assert!(alive(&s, &x.token).await, "{x:?} outside the scope ended");
    }
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM sessions WHERE end_reason IN ('terminated_by_admin', 'terminated') AND ended_by IS NOT NULL"
        ),
        7
    );

    // The owner, across accounts, by account.
    let owner = &sess["olga@ops.test"][0];
    let bravo = users["bobby@bravo.test"].account_id.0;
    let (status, body) = s
        .delete(
            &format!("/api/v1/admin/sessions?account_id={bravo}"),
            &owner.token,
        )
        .await;
    assert_eq!((status, body), (200, json!({"ended": 2})));
    assert!(alive(&s, &owner.token).await);
    assert!(alive(&s, &admin.token).await);
    assert_eq!(active(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bulk_end_treats_empty_filters_as_no_filter() {
    let (s, sess, _) = search_world().await;
    let active = || s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NULL");
    // What an empty search form submits: an empty search box or "any" application is
    // not a filter, so nothing may end (the owner would sign out every account).
    for (who, token) in [
        ("admin", &sess["admin@acme.test"][0].token),
        ("owner", &sess["olga@ops.test"][0].token),
    ] {
        for path in [
            "/api/v1/admin/sessions?q=",
            "/api/v1/admin/sessions?q=%20%20",
            "/api/v1/admin/sessions?application=",
            "/api/v1/admin/sessions?q=&application=",
        ] {
            let (status, body) = s.delete(path, token).await;
            assert_error(
                status,
                &body,
                400,
                "filter_required",
                &format!("{who}: {path}"),
            );
            assert_eq!(active(), 11, "{who}: {path} ended sessions");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Paging

async fn page(s: &TestServer, token: &str, cursor: Option<&str>) -> (Vec<Value>, Option<String>) {
    let mut path = "/api/v1/admin/sessions?limit=7".to_string();
    if let Some(c) = cursor {
        path.push_str("&cursor=");
        path.push_str(c);
    }
    let (status, body) = s.get(&path, token).await;
    assert_eq!(status, 200, "{path}: {body}");
    let items = body["items"].as_array().unwrap().clone();
    assert!(items.len() <= 7, "{body}");
    let next = body["next_cursor"].as_str().map(str::to_string);
    if next.is_some() {
        assert_eq!(items.len(), 7, "a full page before a cursor: {body}");
    }
    (items, next)
}

fn assert_activity_order(items: &[Value]) {
    let times: Vec<i64> = items
        .iter()
        .map(|i| rfc3339_utc(&i["last_active_at"]))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest activity first: {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listing_pages_without_duplicates_or_gaps() {
    let s = start().await;
    s.user("Acme", "admin@acme.test", Role::Admin).await;
    for i in 0..5 {
        s.user("Acme", &format!("u{i}@acme.test"), Role::User).await;
    }
    let admin = login(&s, "admin@acme.test", CHROME_MAC).await;
    let mut everyone = vec![admin.clone()];
    for i in 0..24 {
        everyone.push(login(&s, &format!("u{}@acme.test", i % 5), FIREFOX_WIN).await);
    }
    // Ties across page boundaries: two groups of identical activity times (recent
    // enough that no request below moves them).
    let n = now();
    sql_exec(
        &s,
        &format!(
            "UPDATE sessions SET last_active_at = {} WHERE id % 2 = 0",
            n - 10
        ),
    );
    sql_exec(
        &s,
        &format!(
            "UPDATE sessions SET last_active_at = {} WHERE id % 2 = 1",
            n - 20
        ),
    );
    let all: BTreeSet<String> = everyone.iter().map(|x| x.id.clone()).collect();
    assert_eq!(all.len(), 25);

    // A plain walk.
    let mut seen = Vec::new();
    let mut all_items = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (items, next) = page(&s, &admin.token, cursor.as_deref()).await;
        pages += 1;
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        all_items.extend(items);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 4, "25 rows in pages of 7");
    assert_activity_order(&all_items);
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    assert_eq!(unique, all, "missing or extra rows");

    // A walk while sessions end and begin.
    let (p1, c1) = page(&s, &admin.token, None).await;
    let (p2, c2) = page(&s, &admin.token, c1.as_deref()).await;
    let mut walked: Vec<String> = p1
        .iter()
        .chain(&p2)
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    // End three that were on later pages of the first walk, and sign in four more.
    let later: Vec<&String> = seen[16..19].iter().collect();
    for id in &later {
        let (status, body) = s
            .delete(&format!("/api/v1/admin/sessions/{id}"), &admin.token)
            .await;
        assert_eq!(status, 204, "{body}");
    }
    let mut fresh = BTreeSet::new();
    for i in 0..4 {
        fresh.insert(
            login(&s, &format!("u{i}@acme.test"), SAFARI_IPHONE)
                .await
                .id,
        );
    }
    let mut cursor = c2;
    while let Some(c) = cursor {
        let (items, next) = page(&s, &admin.token, Some(&c)).await;
        walked.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        cursor = next;
        assert!(walked.len() < 100, "paging does not end");
    }
    let unique: BTreeSet<String> = walked.iter().cloned().collect();
    assert_eq!(unique.len(), walked.len(), "duplicates: {walked:?}");
    let stayed: BTreeSet<String> = all
        .iter()
        .filter(|id| !later.contains(id))
        .cloned()
        .collect();
    for id in &stayed {
        assert_eq!(
            walked.iter().filter(|w| *w == id).count(),
            1,
            "{id} stayed active and must appear exactly once"
        );
    }
    for id in &later {
        assert!(
            !walked.contains(id),
            "{id} ended before its page and is listed"
        );
    }
    assert!(
        unique
            .iter()
            .all(|id| stayed.contains(id) || fresh.contains(id)),
        "unknown rows"
    );
    // A fresh walk sees the new sessions and not the ended ones.
    let fresh_walk = {
        let mut ids = BTreeSet::new();
        let mut cursor = None;
        loop {
            let (items, next) = page(&s, &admin.token, cursor.as_deref()).await;
            ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        ids
    };
    let mut expected = stayed.clone();
    expected.extend(fresh.iter().cloned());
    assert_eq!(fresh_walk, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listing_rejects_bad_cursor_and_limit() {
    let s = start().await;
    s.user("Acme", "admin@acme.test", Role::Admin).await;
    let admin = s.token("admin@acme.test").await;
    for cursor in [
        "garbage!!",
        "bm90LWEtY3Vyc29y", // "not-a-cursor"
        "eC55",             // "x.y"
        &"A".repeat(100),
    ] {
        let path = format!("/api/v1/admin/sessions?cursor={cursor}");
        let (status, body) = s.get(&path, &admin).await;
        assert_error(status, &body, 400, "invalid_cursor", &path);
    }
    for limit in ["0", "1000", "-1", "201"] {
        let path = format!("/api/v1/admin/sessions?limit={limit}");
        let (status, body) = s.get(&path, &admin).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
    let (status, body) = s.get("/api/v1/admin/sessions?limit=abc", &admin).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    for limit in ["1", "200"] {
        let (status, body) = s
            .get(&format!("/api/v1/admin/sessions?limit={limit}"), &admin)
            .await;
        assert_eq!(status, 200, "limit={limit}: {body}");
        assert_eq!(body["items"].as_array().unwrap().len(), 1);
        assert!(body["next_cursor"].is_null());
    }
}

// ---------------------------------------------------------------------------------------
// Cookie authentication and CSRF

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_auth_needs_the_csrf_header_on_changes() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    let other = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let third = login(&s, "ann@acme.test", SAFARI_IPHONE).await;

    let resp = b.get(s.url("/api/v1/sessions")).send().await.unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{body}");
    assert_eq!(items[0]["current"], true);
    assert_eq!(items[0]["application"], "web");
    let browser_id = items[0]["id"].as_str().unwrap().to_string();

    let page = b
        .get(s.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").expect("csrf on the sessions page");

    let url = s.url(&format!("/api/v1/sessions/{}", other.id));
    let resp = b.delete(&url).send().await.unwrap();
    let (status, body) = status_json(resp).await;
    assert_error(
        status,
        &body,
        403,
        "forbidden",
        "cookie DELETE without CSRF",
    );
    assert!(alive(&s, &other.token).await);
    let resp = b
        .delete(&url)
        .header("X-CSRF-Token", "not-the-token")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_error(
        status,
        &body,
        403,
        "forbidden",
        "cookie DELETE with a wrong CSRF",
    );
    assert!(alive(&s, &other.token).await);
    let resp = b.delete(s.url("/api/v1/sessions")).send().await.unwrap();
    let (status, body) = status_json(resp).await;
    assert_error(
        status,
        &body,
        403,
        "forbidden",
        "cookie DELETE all without CSRF",
    );
    assert!(alive(&s, &other.token).await);
    assert!(alive(&s, &third.token).await);

    let resp = b
        .delete(&url)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(!alive(&s, &other.token).await);

    // The cookie's own session cannot be ended from the list either.
    let resp = b
        .delete(s.url(&format!("/api/v1/sessions/{browser_id}")))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);

    // Bearer requests need no CSRF header.
    let (status, body) = s
        .delete(&format!("/api/v1/sessions/{browser_id}"), &third.token)
        .await;
    assert_eq!(status, 204, "{body}");
    let resp = b.get(s.url("/api/v1/sessions")).send().await.unwrap();
    let (status, body) = status_json(resp).await;
    assert_error(status, &body, 401, "session_ended", "the ended cookie");
}

/// The listing checks its token in the same database trip as it reads the sessions: it
/// must refuse exactly as every other endpoint does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_refuses_bad_tokens_like_every_endpoint() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ended = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let keeper = login(&s, "ann@acme.test", CHROME_MAC).await;
    let (status, _) = s
        .delete(&format!("/api/v1/sessions/{}", ended.id), &keeper.token)
        .await;
    assert_eq!(status, 204);

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no credentials", None),
        ("not a bearer header", Some("Basic YW5uOnB3".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("unknown token", Some("Bearer nope-nope-nope".into())),
        (
            "overlong token",
            Some(format!("Bearer {}", "x".repeat(300))),
        ),
        ("ended session", Some(format!("Bearer {}", ended.token))),
    ];
    for (what, header) in cases {
        let get = |path: &str| {
            let mut req = client().get(s.url(path));
            if let Some(h) = &header {
                req = req.header("authorization", h);
            }
            req
        };
        let (list_status, list_body) =
            status_json(get("/api/v1/sessions").send().await.unwrap()).await;
        let (me_status, me_body) = status_json(get("/api/v1/me").send().await.unwrap()).await;
        assert_eq!(list_status, 401, "{what}: {list_body}");
        assert_eq!((list_status, &list_body), (me_status, &me_body), "{what}");
    }
    let (status, body) = s.get("/api/v1/sessions", &keeper.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids_of(&body), vec![keeper.id.clone()]);
}

/// Copies `session` (a public id) as `copy-<from>`… `n` times, with fresh tokens, copy `i`
/// last active `i` seconds before `base`.
fn copy_session(s: &TestServer, session: &str, from: usize, n: usize, base: i64) -> usize {
    sql_exec(
        s,
        &format!(
            "WITH RECURSIVE k(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM k WHERE i < {last})
             INSERT INTO sessions (public_id, token_hash, user_id, account_id, application,
               device_id, user_agent, device_category, browser_name, browser_version, os_name,
               os_version, ip, country_code, country_name, city, created_at, last_active_at,
               expires_at)
             SELECT 'copy-' || k.i, randomblob(32), user_id, account_id, application,
               device_id, user_agent, device_category, browser_name, browser_version, os_name,
               os_version, ip, country_code, country_name, city, created_at,
               {base} - k.i, expires_at
             FROM sessions, k WHERE public_id = '{session}'",
            last = from + n - 1,
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_sessions_lists_every_session_however_many() {
    // Most users' listings are read right after the session check on the request's own
    // thread; one with more than a hundred sessions goes to the blocking pool. Both must
    // list every session, the current one first.
    let s = start_with(|c| c.sessions.touch_interval = Duration::from_secs(86_400)).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let ann = login(&s, "ann@acme.test", CHROME_MAC).await;
    let bob = login(&s, "bob@acme.test", CHROME_MAC).await;
    // The current session is the least recently active, so it is last in the query's
    // order and must be moved to the front.
    sql_exec(
        &s,
        &format!(
            "UPDATE sessions SET last_active_at = last_active_at - 100000 WHERE public_id = '{}'",
            bob.id
        ),
    );
    // One base time for every batch: copies made a second apart would otherwise tie in
    // last activity across batches, and ties are ordered by id.
    let base = now();
    let mut copied = 0;
    for total in [100, 101, 250] {
        copied += copy_session(&s, &bob.id, copied + 1, total - 1 - copied, base);
        let (status, body) = s.get("/api/v1/sessions", &bob.token).await;
        assert_eq!(status, 200, "{body}");
        let ids = ids_of(&body);
        assert_eq!(ids.len(), total, "every session of bob's, none of ann's");
        assert_eq!(ids[0], bob.id, "current first");
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), total, "no session twice");
        let wanted: Vec<String> = (1..total).map(|i| format!("copy-{i}")).collect();
        assert_eq!(ids[1..], wanted[..], "then by last activity");
    }
    let (status, body) = s.get("/api/v1/sessions", &ann.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids_of(&body), vec![ann.id.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_shows_the_session_as_my_sessions_does_whether_or_not_activity_is_written() {
    // `/api/v1/me` reads the session in the check's own lookup, except when the check
    // writes the session's activity: then after, on the blocking pool. Ten minutes idle,
    // a minute's touch interval has it written; a day's does not.
    for (touch, writes) in [(86_400, false), (60, true)] {
        let s = start_with(move |c| c.sessions.touch_interval = Duration::from_secs(touch)).await;
        s.user("Acme", "ann@acme.test", Role::User).await;
        let ann = login(&s, "ann@acme.test", CHROME_MAC).await;
        login(&s, "ann@acme.test", FIREFOX_WIN).await;
        let long_ago = now() - 600;
        sql_exec(
            &s,
            &format!(
                "UPDATE sessions SET last_active_at = {long_ago} WHERE public_id = '{}'",
                ann.id
            ),
        );
        let (status, me) = s.get("/api/v1/me", &ann.token).await;
        assert_eq!(status, 200, "{me}");
        let active = rfc3339_utc(&me["session"]["last_active_at"]);
        assert_eq!(active > long_ago, writes, "activity written: {me}");
        let (status, list) = s.get("/api/v1/sessions", &ann.token).await;
        assert_eq!(status, 200, "{list}");
        let mut listed = list["items"][0].clone();
        let mut shown = me["session"].clone();
        assert_eq!(listed["id"], ann.id.as_str(), "{list}");
        // The listing's own check may write activity again, a second later.
        for v in [&mut listed, &mut shown] {
            let o = v.as_object_mut().unwrap();
            o.remove("last_active_at");
            o.remove("expires_at");
        }
        assert_eq!(shown, listed, "touch interval {touch}");
        assert_eq!(me["user"]["email"], "ann@acme.test");
    }
}

/// `GET /api/v1/me` and `GET /api/v1/sessions`, the reads a script polls most, are
/// answered ahead of the router; `HEAD` on the same paths still goes through the OpenAPI
/// service. Every way of presenting (or not) a session gets the same answer both ways:
/// the status, the headers, and for a refusal the API's error.
#[tokio::test]
async fn the_reads_answered_first_answer_as_the_api_service_does() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ann = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let gone = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let (status, _) = s.post("/api/v1/logout", &gone.token, json!({})).await;
    assert_eq!(status, 204);
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
    let cookie = |t: &str| ("cookie", format!("doorman_session={t}"));
    // How the session is presented, the status wanted, and the error of a refusal.
    type Way<'a> = (&'a str, Vec<(&'a str, String)>, u16, &'a str);
    let ways: Vec<Way> = vec![
        ("a bearer token", vec![bearer(&ann.token)], 200, ""),
        (
            "the cookie, no CSRF header (a read)",
            vec![cookie(&ann.token)],
            200,
            "",
        ),
        (
            "a bearer token beside an unknown cookie",
            vec![bearer(&ann.token), cookie("nope")],
            200,
            "",
        ),
        (
            "an unknown bearer token",
            vec![bearer("nope")],
            401,
            "unauthenticated",
        ),
        (
            "an ended session's token",
            vec![bearer(&gone.token)],
            401,
            "session_ended",
        ),
        (
            "an empty bearer token",
            vec![bearer("")],
            401,
            "unauthenticated",
        ),
        (
            "Basic credentials",
            vec![("authorization", "Basic YTpi".into())],
            401,
            "unauthenticated",
        ),
        (
            "an unknown cookie",
            vec![cookie("nope")],
            401,
            "unauthenticated",
        ),
        ("nothing", vec![], 401, "unauthenticated"),
    ];
    let send = |method: reqwest::Method, path: &str, headers: &[(&str, String)]| {
        let mut req = client().request(method, s.url(path));
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        req.send()
    };
    let compared = |r: &reqwest::Response| -> Vec<(String, String)> {
        let mut h: Vec<_> = r
            .headers()
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "content-length" | "date"))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        h.sort();
        h
    };
    for path in ["/api/v1/me", "/api/v1/sessions"] {
        for (what, headers, want, code) in &ways {
            let get = send(reqwest::Method::GET, path, headers).await.unwrap();
            let head = send(reqwest::Method::HEAD, path, headers).await.unwrap();
            let context = format!("GET and HEAD {path} with {what}");
            assert_eq!(get.status(), *want, "{context}");
            assert_eq!(head.status(), get.status(), "{context}");
            assert_eq!(compared(&get), compared(&head), "{context}");
            let (status, body) = status_json(get).await;
            if status == 200 {
                let current = match path {
                    "/api/v1/me" => body["session"].clone(),
                    _ => body["items"][0].clone(),
                };
                assert_eq!(current["id"], ann.id.as_str(), "{context}: {body}");
                assert_eq!(current["current"], true, "{context}: {body}");
            } else {
                assert_error(status, &body, *want, code, &context);
            }
        }
    }

    // A session held until its person adds a second factor reads neither (SPEC §19).
    s.sql_exec("UPDATE accounts SET require_second_factor = 1");
    for path in ["/api/v1/me", "/api/v1/sessions"] {
        let headers = [bearer(&ann.token)];
        let get = send(reqwest::Method::GET, path, &headers).await.unwrap();
        let head = send(reqwest::Method::HEAD, path, &headers).await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(compared(&get), compared(&head), "{path}");
        let (status, body) = status_json(get).await;
        assert_error(status, &body, 403, "second_factor_enrolment_required", path);
    }
}
