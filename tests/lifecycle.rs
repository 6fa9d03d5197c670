#![allow(clippy::unwrap_used, clippy::expect_used)]
//! How sessions end (SPEC §3): at once on every path, by idle timeout and maximum
//! lifetime, by disabling the user; activity bookkeeping; the sweeper; restarts.
mod common;

use std::time::{Duration, Instant};

use common::*;
use doorman::db;
use doorman::domain::ops::sweeper;
use doorman::domain::people::users;
use doorman::model::{EndReason, Role, UserStatus};
use serde_json::json;

const SESSIONS: &str = "/settings/security/sessions";

/// Ends a session the way an admin or another device would, straight in storage.
async fn end_session(s: &TestServer, public_id: &str, reason: EndReason) {
    let id = public_id.to_string();
    let ended = s
        .state
        .db
        .run(move |c| {
            let sess = db::sessions::find_by_public_id(c, &id)?.expect("session exists");
            db::sessions::end(c, sess.pk, doorman::clock::now(), None, reason)
        })
        .await
        .unwrap();
    assert!(ended.is_some());
}

async fn verify_status(s: &TestServer, token: &str, by_cookie: bool) -> u16 {
    let req = client().get(s.url("/auth/verify"));
    let req = if by_cookie {
        req.header("cookie", format!("doorman_session={token}"))
    } else {
        req.bearer_auth(token)
    };
    req.send().await.unwrap().status().as_u16()
}

async fn page_with_cookie(s: &TestServer, token: &str) -> reqwest::Response {
    client()
        .get(s.url(SESSIONS))
        .header("cookie", format!("doorman_session={token}"))
        .send()
        .await
        .unwrap()
}

/// The token is refused on the API (bearer and cookie), by `/auth/verify` and by the
/// pages, each saying the session ended and why.
async fn assert_refused_everywhere(s: &TestServer, token: &str, reason: &str, why: &str) {
    let (status, body) = s.get("/api/v1/me", token).await;
    assert_eq!(status, 401, "{reason}: {body}");
    assert_eq!(body["error"], "session_ended", "{reason}: {body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Your session has ended. Please sign in again.")
            && message.contains(why),
        "{reason}: {message}"
    );
    let resp = client()
        .get(s.url("/api/v1/me"))
        .header("cookie", format!("doorman_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "{reason}: cookie on the API");
    assert_eq!(
        verify_status(s, token, false).await,
        401,
        "{reason}: verify"
    );
    assert_eq!(verify_status(s, token, true).await, 401, "{reason}: verify");

    let page = page_with_cookie(s, token).await;
    assert_eq!(page.status(), 303, "{reason}: page");
    let to = page.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.starts_with("/login?") && to.contains(&format!("ended={reason}")),
        "{reason}: {to}"
    );
    let notice = client()
        .get(s.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        notice.contains("Your session has ended. Please sign in again.") && notice.contains(why),
        "{reason}: the sign-in page does not say why"
    );
    let root = client()
        .get(s.url("/"))
        .header("cookie", format!("doorman_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.headers()["location"], "/login", "{reason}: /");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_is_refused_on_the_very_next_request() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    for (reason, why) in [
        (
            EndReason::TerminatedByAdmin,
            "It was ended by an administrator.",
        ),
        (
            EndReason::Terminated,
            "It was ended from another of your devices.",
        ),
        (
            EndReason::PasswordChanged,
            "Your password was changed, so your other sessions were ended.",
        ),
    ] {
        let body = s.api_login("ann@acme.test", CHROME_MAC).await;
        let token = body["token"].as_str().unwrap();
        // Valid everywhere first, so the refusal below is the ending's doing.
        assert_eq!(s.get("/api/v1/me", token).await.0, 200);
        assert_eq!(verify_status(&s, token, false).await, 200);
        assert_eq!(verify_status(&s, token, true).await, 200);
        assert_eq!(page_with_cookie(&s, token).await.status(), 200);

        end_session(&s, body["session"]["id"].as_str().unwrap(), reason).await;
        assert_refused_everywhere(&s, token, reason.as_str(), why).await;
    }

    // Logout through the API: the notice has no "why".
    let token = s.token("ann@acme.test").await;
    assert_eq!(s.post("/api/v1/logout", &token, json!({})).await.0, 204);
    assert_refused_everywhere(&s, &token, "logout", "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_time_out_and_the_sweeper_ends_them() {
    let s = start_with(|c| {
        c.sessions.idle_timeout = Duration::from_secs(2);
        c.sessions.touch_interval = Duration::from_secs(1);
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = body["token"].as_str().unwrap();
    assert_eq!(s.get("/api/v1/me", token).await.0, 200);

    // Time is the subject: idle for longer than the idle timeout.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_refused_everywhere(&s, token, "idle_timeout", "It timed out.").await;

    // A session made now is not swept with it.
    let fresh = s.token("ann@acme.test").await;
    sweeper::sweep_once(&s.state).await;
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    let (ended_at, expires_at, reason): (Option<i64>, i64, Option<String>) = c
        .query_row(
            "SELECT ended_at, expires_at, end_reason FROM sessions WHERE public_id = ?1",
            [body["session"]["id"].as_str().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(reason.as_deref(), Some("idle_timeout"));
    assert_eq!(ended_at, Some(expires_at), "ended when it expired");
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NULL"),
        1
    );
    assert_eq!(s.get("/api/v1/me", &fresh).await.0, 200);
    // Still refused, now with the stored reason.
    assert_refused_everywhere(&s, token, "idle_timeout", "It timed out.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_within_the_idle_window_keeps_a_session_alive() {
    let s = start_with(|c| {
        c.sessions.idle_timeout = Duration::from_secs(2);
        c.sessions.touch_interval = Duration::from_secs(1);
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = body["token"].as_str().unwrap();
    let start = Instant::now();
    // Only the reverse proxy asks: /auth/verify counts as activity too.
    while start.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            verify_status(&s, token, false).await,
            200,
            "after {:?}",
            start.elapsed()
        );
        // Time is the subject: asked twice a second, for longer than the idle timeout.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, me) = s.get("/api/v1/me", token).await;
    assert_eq!(status, 200, "{me}");
    let moved = s.sql_i64("SELECT last_active_at - created_at FROM sessions");
    assert!(moved >= 3, "last_active_at moved {moved} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lifetime_ends_a_session_even_with_activity() {
    let s = start_with(|c| {
        c.sessions.idle_timeout = Duration::from_secs(2);
        c.sessions.touch_interval = Duration::from_secs(1);
        c.sessions.max_lifetime = Duration::from_secs(3);
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = body["token"].as_str().unwrap();
    let start = Instant::now();
    let refused_after = loop {
        let (status, me) = s.get("/api/v1/me", token).await;
        if status != 200 {
            assert_eq!(status, 401, "{me}");
            assert_eq!(me["error"], "session_ended");
            assert!(me["message"].as_str().unwrap().contains("It timed out."));
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still valid after the maximum lifetime"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    };
    assert!(
        refused_after >= Duration::from_secs(2),
        "ended too early: {refused_after:?}"
    );
    sweeper::sweep_once(&s.state).await;
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE end_reason = 'max_lifetime'"),
        1
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE expires_at > created_at + 3"),
        0,
        "activity must not push expiry past the maximum lifetime"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_activity_is_written_at_most_once_per_touch_interval() {
    let s = start().await; // touch_interval: 60 s
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    let resp = browser_login(&s, &b, "ann@acme.test").await;
    drop(resp);
    // Pretend the session was made 100 s ago and last touched 30 s ago.
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute(
        "UPDATE sessions SET created_at = created_at - 100, last_active_at = last_active_at - 30",
        [],
    )
    .unwrap();
    let before = s.sql_i64("SELECT last_active_at FROM sessions");
    let expires_before = s.sql_i64("SELECT expires_at FROM sessions");

    for _ in 0..10 {
        assert_eq!(b.get(s.url(SESSIONS)).send().await.unwrap().status(), 200);
        assert_eq!(
            b.get(s.url("/auth/verify")).send().await.unwrap().status(),
            200
        );
        assert_eq!(
            b.get(s.url("/api/v1/me")).send().await.unwrap().status(),
            200
        );
    }
    assert_eq!(s.sql_i64("SELECT last_active_at FROM sessions"), before);
    assert_eq!(s.sql_i64("SELECT expires_at FROM sessions"), expires_before);

    // Once the interval has passed, the next request records it.
    c.execute(
        "UPDATE sessions SET last_active_at = last_active_at - 31",
        [],
    )
    .unwrap();
    assert_eq!(
        b.get(s.url("/auth/verify")).send().await.unwrap().status(),
        200
    );
    let now = doorman::clock::now();
    let after = s.sql_i64("SELECT last_active_at FROM sessions");
    assert!(after >= now - 1, "last_active_at {after}, now {now}");
    assert_eq!(
        s.sql_i64("SELECT expires_at - last_active_at FROM sessions"),
        14 * 24 * 3600,
        "the idle window starts again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_refuses_its_sessions_at_once() {
    let s = start().await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let api = s.token("ann@acme.test").await;
    let b = browser();
    let resp = browser_login(&s, &b, "ann@acme.test").await;
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find_map(|c| c.strip_prefix("doorman_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap();
    let bob = s.token("bob@acme.test").await;

    let ended = users::set_status(&s.state, ann.id, UserStatus::Disabled, None)
        .await
        .unwrap();
    assert_eq!(ended, 2);
    for token in [&api, &cookie] {
        assert_refused_everywhere(
            &s,
            token,
            "user_disabled",
            "It was ended by an administrator.",
        )
        .await;
    }
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE end_reason = 'user_disabled'"),
        2
    );
    assert_eq!(
        s.get("/api/v1/me", &bob).await.0,
        200,
        "other users unaffected"
    );

    // Enabling again does not bring the sessions back.
    users::set_status(&s.state, ann.id, UserStatus::Active, None)
        .await
        .unwrap();
    assert_eq!(s.get("/api/v1/me", &api).await.0, 401);
    assert_eq!(verify_status(&s, &cookie, true).await, 401);

    // A user marked disabled behind the server's back is refused too.
    let fresh = s.token("ann@acme.test").await;
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute(
        "UPDATE users SET status = 'disabled' WHERE email = 'ann@acme.test'",
        [],
    )
    .unwrap();
    assert_eq!(verify_status(&s, &fresh, false).await, 401);
    let (status, body) = s.get("/api/v1/me", &fresh).await;
    assert_eq!(status, 401, "{body}");
}

/// `path` asked for `token` by `n` requests at once (so that they are answered on
/// several pooled connections): their responses.
async fn get_at_once(s: &TestServer, path: &str, token: &str, n: usize) -> Vec<reqwest::Response> {
    let mut asked = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (url, token) = (s.url(path), token.to_string());
        asked.spawn(async move { client().get(url).bearer_auth(token).send().await.unwrap() });
    }
    asked.join_all().await
}

/// `/auth/verify` for `token` by `n` requests at once: their statuses.
async fn verify_at_once(s: &TestServer, token: &str, n: usize) -> Vec<u16> {
    let answers = get_at_once(s, "/auth/verify", token, n).await;
    answers.iter().map(|r| r.status().as_u16()).collect()
}

/// Checked again and again, several at a time: kept by storage, and recalled.
async fn kept(s: &TestServer, token: &str) {
    for _ in 0..4 {
        assert_eq!(verify_at_once(s, token, 16).await, vec![200; 16]);
        assert_eq!(s.get("/api/v1/me", token).await.0, 200);
    }
}

/// Refused by `/auth/verify`, several at a time, and by `/api/v1/me`.
async fn refused(s: &TestServer, token: &str, after: &str) {
    assert_eq!(verify_at_once(s, token, 16).await, vec![401; 16], "{after}");
    assert_eq!(s.get("/api/v1/me", token).await.0, 401, "{after}");
}

/// A server with Ann, and another connection to its file (as the CLI's, or a script's).
async fn ann_and_another_connection() -> (TestServer, rusqlite::Connection) {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let outside = rusqlite::Connection::open(&s.db_path).unwrap();
    outside.busy_timeout(Duration::from_secs(5)).unwrap();
    (s, outside)
}

/// Ends session `id` through `outside`, behind the server's back.
fn end_outside(outside: &rusqlite::Connection, id: &str) {
    outside
        .execute(
            "UPDATE sessions SET ended_at = unixepoch(), end_reason = 'terminated_by_admin'
             WHERE public_id = ?1",
            [id],
        )
        .unwrap();
}

/// Storage recalls the row of a token it has just read while nothing is committed
/// (`db::Pooled`): a session checked over and over, on several connections, is refused
/// at once after a change from anywhere: the server's own API, another connection to
/// the file (as the CLI's, or a script's), a person disabled behind the server's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_checked_over_and_over_is_refused_at_once_after_any_change() {
    let (s, outside) = ann_and_another_connection().await;

    // Ended through the API, by another of the person's sessions.
    let other = s.token("ann@acme.test").await;
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = body["token"].as_str().unwrap().to_string();
    kept(&s, &token).await;
    let id = body["session"]["id"].as_str().unwrap();
    let (status, body) = s.delete(&format!("/api/v1/sessions/{id}"), &other).await;
    assert_eq!(status, 204, "{body}");
    refused(&s, &token, "the API").await;

    // Ended by another connection to the file.
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = body["token"].as_str().unwrap().to_string();
    kept(&s, &token).await;
    end_outside(&outside, body["session"]["id"].as_str().unwrap());
    refused(&s, &token, "outside").await;

    // Its person disabled by another connection; then enabled again.
    let token = s.token("ann@acme.test").await;
    kept(&s, &token).await;
    let status = |to: &str| {
        outside
            .execute(
                "UPDATE users SET status = ?1 WHERE email = 'ann@acme.test'",
                [to],
            )
            .unwrap()
    };
    status("disabled");
    refused(&s, &token, "disabled").await;
    status("active");
    assert_eq!(
        verify_at_once(&s, &token, 16).await,
        vec![200; 16],
        "enabled"
    );
}

/// My Sessions' ids for `token`, asked by `n` requests at once: every answer must be
/// the same list.
async fn listed_at_once(s: &TestServer, token: &str, n: usize) -> Vec<String> {
    let mut lists = Vec::new();
    for resp in get_at_once(s, "/api/v1/sessions", token, n).await {
        assert_eq!(resp.status().as_u16(), 200);
        let list: serde_json::Value = resp.json().await.unwrap();
        let ids = list["items"].as_array().unwrap().iter();
        lists.push(
            ids.map(|i| i["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
    }
    assert!(lists.windows(2).all(|w| w[0] == w[1]), "{lists:?}");
    lists.swap_remove(0)
}

/// Storage recalls a person's listed sessions while nothing is committed (`db::Pooled`):
/// My Sessions asked over and over, on several connections, lists every change at once:
/// a session ended through the API, one ended by another connection to the file (as the
/// CLI's), a new sign-in, a session ended by the person's sign-out of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_sessions_asked_over_and_over_lists_every_change_at_once() {
    let (s, outside) = ann_and_another_connection().await;
    let me = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = me["token"].as_str().unwrap().to_string();
    let mut others = Vec::new();
    for _ in 0..3 {
        let b = s.api_login("ann@acme.test", CHROME_MAC).await;
        others.push((
            b["session"]["id"].as_str().unwrap().to_string(),
            b["token"].as_str().unwrap().to_string(),
        ));
    }
    let asked = |n| listed_at_once(&s, &token, n);
    let mut expected = asked(1).await;
    assert_eq!(expected.len(), 4);
    for _ in 0..4 {
        assert_eq!(asked(8).await, expected, "kept");
    }

    // Ended through the API.
    let (status, body) = s
        .delete(&format!("/api/v1/sessions/{}", others[0].0), &token)
        .await;
    assert_eq!(status, 204, "{body}");
    expected.retain(|id| *id != others[0].0);
    assert_eq!(asked(8).await, expected, "ended through the API");
    asked(8).await;

    // Ended by another connection to the file.
    end_outside(&outside, &others[1].0);
    expected.retain(|id| *id != others[1].0);
    assert_eq!(asked(8).await, expected, "ended outside");
    asked(8).await;

    // A new sign-in is listed.
    let new = s.api_login("ann@acme.test", CHROME_MAC).await;
    let new_id = new["session"]["id"].as_str().unwrap().to_string();
    let now = asked(8).await;
    assert!(now.contains(&new_id), "{now:?}");
    assert_eq!(now.len(), expected.len() + 1, "{now:?}");
    expected = now;

    // Signed out by its own person.
    assert_eq!(
        s.post("/api/v1/logout", &others[2].1, json!({})).await.0,
        204
    );
    expected.retain(|id| *id != others[2].0);
    assert_eq!(asked(8).await, expected, "signed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_deletes_ended_sessions_after_retention() {
    let s = start_with(|c| c.sessions.retention = Duration::from_secs(1)).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let gone = s.token("ann@acme.test").await;
    let kept = s.token("ann@acme.test").await;
    assert_eq!(s.post("/api/v1/logout", &gone, json!({})).await.0, 204);
    sweeper::sweep_once(&s.state).await;
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions"),
        2,
        "kept for the retention period"
    );
    // Time is the subject: the retention period passes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    sweeper::sweep_once(&s.state).await;
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 1);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NULL"),
        1
    );
    assert_eq!(s.get("/api/v1/me", &kept).await.0, 200);
    // The history stays.
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM login_records WHERE success = 1"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let body = s.api_login("ann@acme.test", CHROME_MAC).await;
    let token = body["token"].as_str().unwrap().to_string();
    let ended = s.token("ann@acme.test").await;
    assert_eq!(s.post("/api/v1/logout", &ended, json!({})).await.0, 204);

    let s = s.restart().await;
    let (status, me) = s.get("/api/v1/me", &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["session"]["id"], body["session"]["id"]);
    assert_eq!(verify_status(&s, &token, false).await, 200);
    // An ended session stays ended.
    let (status, me) = s.get("/api/v1/me", &ended).await;
    assert_eq!((status, me["error"].as_str()), (401, Some("session_ended")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_lock_does_not_hold_up_the_session_check() {
    let s = start().await; // touch_interval: 60 s
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.api_login("ann@acme.test", "curl/8.0").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    let client = reqwest::Client::new();
    let verify = || async {
        let req = client.get(s.url("/auth/verify"));
        req.header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .status()
    };
    s.sql_exec("UPDATE sessions SET last_active_at = last_active_at - 120");
    let before = s.sql_i64("SELECT last_active_at FROM sessions");

    // Another process holds the write lock: the check answers at once (the server's
    // busy timeout is 5 s) and the touch waits for a later request.
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    assert_eq!(verify().await, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?} for the write lock",
        started.elapsed()
    );
    c.execute_batch("ROLLBACK").unwrap();
    assert_eq!(s.sql_i64("SELECT last_active_at FROM sessions"), before);

    // Lock released: the next request records the activity.
    assert_eq!(verify().await, 200);
    assert!(s.sql_i64("SELECT last_active_at FROM sessions") >= doorman::clock::now() - 1);
}
