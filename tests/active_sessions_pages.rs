#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Active Sessions pages (SPEC §3, §6): My Sessions, terminating with CSRF, the
//! confirmation before ending all others, what an ended browser sees next, the Users
//! Sessions tab and its scope, and the security headers.
mod common;

use std::time::Duration;

use common::*;
use doorman::model::{Role, User};
use time::OffsetDateTime;

const PAGE: &str = "/settings/security/sessions";
const USERS: &str = "/settings/security/sessions/users";
const ENDED: &str = "Your session has ended. Please sign in again.";

// ---------------------------------------------------------------------------------------
// helpers

/// Runs a statement against the server's database (test set-up only: moving times).
fn sql_exec(s: &TestServer, sql: &str) -> usize {
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute(sql, []).unwrap()
}

fn active_in_db(s: &TestServer) -> i64 {
    s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NULL")
}

async fn get(b: &reqwest::Client, s: &TestServer, path: &str) -> Page {
    read(b.get(s.url(path)).send().await.unwrap()).await
}

/// A signed-in browser, its page CSRF token and its session's public id.
struct Browser {
    c: reqwest::Client,
    csrf: String,
    id: String,
}

async fn signed_in_browser(s: &TestServer, email: &str) -> Browser {
    let c = browser();
    browser_login(s, &c, email).await;
    let p = get(&c, s, PAGE).await;
    assert_eq!(p.status, 200, "{email}: {}", p.body);
    let csrf = form_value(&p.body, "csrf").expect("csrf on the sessions page");
    let (status, me) = status_json(c.get(s.url("/api/v1/me")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{me}");
    Browser {
        c,
        csrf,
        id: me["session"]["id"].as_str().unwrap().to_string(),
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn id_field(id: &str) -> String {
    format!("name=\"id\" value=\"{id}\"")
}

/// "2026-11-23 08:15:00 UTC", as the pages show on hover.
fn utc(t: i64) -> String {
    let d = OffsetDateTime::from_unix_timestamp(t).unwrap();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        d.year(),
        d.month() as u8,
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// The ended browser's next page load: to the sign-in page with `ended=<reason>`, whose
/// notice says why.
async fn assert_sent_to_login(s: &TestServer, b: &reqwest::Client, reason: &str, why: &str) {
    let p = get(b, s, PAGE).await;
    assert_eq!(p.status, 303, "the ended browser is sent away: {}", p.body);
    assert!(
        p.location == format!("/login?ended={reason}")
            || p.location.starts_with(&format!("/login?ended={reason}&")),
        "redirect to {}",
        p.location
    );
    let login = get(b, s, &p.location).await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains(ENDED), "{}", login.body);
    assert!(login.body.contains(why), "{}", login.body);
    // Nor does the ended cookie open the API.
    let (status, body) = status_json(b.get(s.url("/api/v1/sessions")).send().await.unwrap()).await;
    assert_eq!(status, 401, "{body}");
}

// ---------------------------------------------------------------------------------------
// My Sessions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_sessions_page_shows_current_others_and_escapes() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let me = signed_in_browser(&s, "ann@acme.test").await;
    let firefox = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let evil = login(&s, "ann@acme.test", "<script>alert(1)</script>").await;
    let bob = login(&s, "bob@acme.test", CHROME_MAC).await;
    let five_min_ago = OffsetDateTime::now_utc().unix_timestamp() - 300;
    sql_exec(
        &s,
        &format!(
            "UPDATE sessions SET created_at = {five_min_ago}, last_active_at = {five_min_ago} WHERE public_id = '{}'",
            firefox.id
        ),
    );

    let p = get(&me.c, &s, PAGE).await;
    assert_eq!(p.status, 200);
    let html = &p.body;
    assert_eq!(count(html, ">Current<"), 1, "one Current label: {html}");
    assert_eq!(
        count(html, &format!("action=\"{PAGE}/terminate\"")),
        2,
        "one Terminate form per other session: {html}"
    );
    assert_eq!(count(html, ">Terminate<"), 2);
    assert!(html.contains(&id_field(&firefox.id)), "{html}");
    assert!(html.contains(&id_field(&evil.id)), "{html}");
    assert!(
        !html.contains(&id_field(&me.id)),
        "a Terminate form for the current session"
    );
    assert!(
        !html.contains(&me.id),
        "the current session's id offered for ending"
    );
    assert!(!html.contains(&bob.id), "another user's session is listed");
    assert!(html.contains("End all other sessions"));
    assert!(html.contains("Other sessions (2)"), "{html}");
    // The current session sits in its own box, before the others.
    let current_at = html.find(">Current<").unwrap();
    let first_form = html.find(&format!("action=\"{PAGE}/terminate\"")).unwrap();
    assert!(current_at < first_form);

    // Device, and times relative with the exact UTC time on hover.
    assert!(html.contains("Firefox 121"), "{html}");
    assert!(
        html.contains("Chrome 120 · macOS 10.15 · Desktop"),
        "{html}"
    );
    assert!(html.contains("just now"), "{html}");
    assert_eq!(count(html, ">5 minutes ago<"), 2, "{html}");
    assert!(
        html.contains(&format!("title=\"{}\"", utc(five_min_ago))),
        "exact UTC time in a title: {html}"
    );
    let titled_utc = html
        .match_indices("title=\"")
        .filter(|(i, _)| html[i + 7..].split('"').next().unwrap().ends_with(" UTC"))
        .count();
    assert!(titled_utc >= 6, "every time has its UTC title: {html}");

    // A hostile User-Agent is shown as text.
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"), "unescaped User-Agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_needs_csrf_and_ends_that_session_at_once() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let laptop = signed_in_browser(&s, "ann@acme.test").await;
    let phone = signed_in_browser(&s, "ann@acme.test").await;
    let script = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let bob = login(&s, "bob@acme.test", FIREFOX_WIN).await;
    let action = format!("{PAGE}/terminate");

    for (what, form) in [
        ("no csrf", vec![("id", script.id.as_str())]),
        ("empty csrf", vec![("csrf", ""), ("id", &script.id)]),
        (
            "wrong csrf",
            vec![("csrf", "not-the-token"), ("id", &script.id)],
        ),
        (
            "another session's csrf",
            vec![("csrf", &phone.csrf), ("id", &script.id)],
        ),
    ] {
        let p = post_form(&laptop.c, &s, &action, &form).await;
        assert_eq!(p.status, 403, "{what}: {}", p.body);
        assert!(alive(&s, &script.token).await, "{what}: ended");
    }
    assert_eq!(active_in_db(&s), 4);

    // Not mine, and my current one: refused.
    let p = post_form(
        &laptop.c,
        &s,
        &action,
        &[("csrf", &laptop.csrf), ("id", &bob.id)],
    )
    .await;
    assert_eq!(p.status, 404, "{}", p.body);
    assert!(alive(&s, &bob.token).await);
    let p = post_form(
        &laptop.c,
        &s,
        &action,
        &[("csrf", &laptop.csrf), ("id", &laptop.id)],
    )
    .await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("sign out"), "{}", p.body);
    assert_eq!(get(&laptop.c, &s, PAGE).await.status, 200);

    // The right token: 303 back to the list, and that token is refused at once.
    let p = post_form(
        &laptop.c,
        &s,
        &action,
        &[("csrf", &laptop.csrf), ("id", &script.id)],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with(PAGE), "{}", p.location);
    assert!(!alive(&s, &script.token).await);
    let back = get(&laptop.c, &s, &p.location).await;
    assert_eq!(back.status, 200);
    assert!(back.body.contains("1 session ended"), "{}", back.body);
    assert!(!back.body.contains(&script.id));

    // Ending the other browser: its next page load goes to the sign-in page.
    let p = post_form(
        &laptop.c,
        &s,
        &action,
        &[("csrf", &laptop.csrf), ("id", &phone.id)],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_sent_to_login(
        &s,
        &phone.c,
        "terminated",
        "It was ended from another of your devices.",
    )
    .await;
    // The ended cookie is gone: the next visit is a plain sign-in.
    let again = get(&phone.c, &s, PAGE).await;
    assert_eq!(again.status, 303);
    assert!(again.location.starts_with("/login"), "{}", again.location);
    assert!(!again.location.contains("ended="), "{}", again.location);
    // The laptop is untouched.
    assert_eq!(get(&laptop.c, &s, PAGE).await.status, 200);
    assert!(alive(&s, &bob.token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_all_others_asks_first() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let me = signed_in_browser(&s, "ann@acme.test").await;
    let others = [
        login(&s, "ann@acme.test", FIREFOX_WIN).await,
        login(&s, "ann@acme.test", SAFARI_IPHONE).await,
        login(&s, "ann@acme.test", CHROME_MAC).await,
    ];
    let bob = login(&s, "bob@acme.test", CHROME_MAC).await;
    let action = format!("{PAGE}/end-others");

    for form in [
        vec![("csrf", me.csrf.as_str())],
        vec![("csrf", &me.csrf), ("confirm", "no")],
    ] {
        let p = post_form(&me.c, &s, &action, &form).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            p.body.contains("End all 3 other sessions?"),
            "the confirmation names the count: {}",
            p.body
        );
        assert!(
            p.body.contains("name=\"confirm\" value=\"yes\""),
            "{}",
            p.body
        );
        for o in &others {
            assert!(alive(&s, &o.token).await, "ended without confirmation");
        }
    }
    let p = post_form(&me.c, &s, &action, &[("confirm", "yes")]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    let p = post_form(&me.c, &s, &action, &[("csrf", "nope"), ("confirm", "yes")]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert_eq!(active_in_db(&s), 5);

    let p = post_form(
        &me.c,
        &s,
        &action,
        &[("csrf", &me.csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    for o in &others {
        assert!(!alive(&s, &o.token).await);
    }
    assert!(alive(&s, &bob.token).await);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE end_reason = 'ended_other_sessions'"),
        3
    );
    let back = get(&me.c, &s, &p.location).await;
    assert_eq!(back.status, 200);
    assert!(back.body.contains("3 sessions ended"), "{}", back.body);
    assert!(
        back.body.contains("not signed in anywhere else"),
        "{}",
        back.body
    );
    assert_eq!(count(&back.body, ">Terminate<"), 0);
}

// ---------------------------------------------------------------------------------------
// Users Sessions

struct Team {
    s: TestServer,
    bob_u: User,
    dave_u: User,
    bravo: i64,
    admin: Browser,
    admin_api: Sess,
    bob: [Sess; 2],
    carol: Sess,
    dave: Sess,
    olga: Sess,
}

async fn team() -> Team {
    let s = start().await;
    s.user("Acme", "alice@acme.test", Role::Admin).await;
    let bob_u = s.user("Acme", "bob@acme.test", Role::User).await;
    s.user("Acme", "carol@acme.test", Role::User).await;
    let dave_u = s.user("Bravo", "dave@bravo.test", Role::User).await;
    s.user("Operators", "olga@ops.test", Role::Owner).await;
    Team {
        admin: signed_in_browser(&s, "alice@acme.test").await,
        admin_api: login(&s, "alice@acme.test", FIREFOX_WIN).await,
        bob: [
            login(&s, "bob@acme.test", FIREFOX_WIN).await,
            login(&s, "bob@acme.test", SAFARI_IPHONE).await,
        ],
        carol: login(&s, "carol@acme.test", CHROME_MAC).await,
        dave: login(&s, "dave@bravo.test", CHROME_MAC).await,
        olga: login(&s, "olga@ops.test", CHROME_MAC).await,
        bravo: dave_u.account_id.0,
        bob_u,
        dave_u,
        s,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sessions_tab_is_not_there_for_plain_users() {
    let t = team().await;
    let s = &t.s;
    let carol = signed_in_browser(s, "carol@acme.test").await;
    let mine = get(&carol.c, s, PAGE).await;
    assert_eq!(mine.status, 200);
    assert!(mine.body.contains("My Sessions"));
    assert!(!mine.body.contains("Users Sessions"), "{}", mine.body);
    assert!(
        !mine.body.contains(&format!("href=\"{USERS}")),
        "{}",
        mine.body
    );

    for path in [
        USERS.to_string(),
        format!("{USERS}?q=acme"),
        format!("{USERS}?user_id={}", t.bob_u.id.0),
    ] {
        let p = get(&carol.c, s, &path).await;
        assert_eq!(p.status, 404, "{path}: {}", p.body);
        assert!(!p.body.contains("bob@acme.test"), "{path}");
    }
    let before = active_in_db(s);
    let p = post_form(
        &carol.c,
        s,
        &format!("{USERS}/terminate"),
        &[("csrf", &carol.csrf), ("id", &t.bob[0].id)],
    )
    .await;
    assert_eq!(p.status, 404, "{}", p.body);
    let p = post_form(
        &carol.c,
        s,
        &format!("{USERS}/end-listed"),
        &[("csrf", &carol.csrf), ("confirm", "yes"), ("q", "acme")],
    )
    .await;
    assert_eq!(p.status, 404, "{}", p.body);
    let p = post_form(
        &carol.c,
        s,
        &format!("{USERS}/end-user"),
        &[
            ("csrf", &carol.csrf),
            ("confirm", "yes"),
            ("target", &t.bob_u.id.0.to_string()),
        ],
    )
    .await;
    assert_eq!(p.status, 404, "{}", p.body);
    assert_eq!(active_in_db(s), before, "a plain user ended sessions");
    assert!(alive(s, &t.bob[0].token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sees_searches_and_ends_only_their_account() {
    let t = team().await;
    let s = &t.s;
    let a = &t.admin;

    let mine = get(&a.c, s, PAGE).await;
    assert!(
        mine.body.contains(&format!("href=\"{USERS}\"")),
        "{}",
        mine.body
    );
    assert!(mine.body.contains("Users Sessions"));

    let p = get(&a.c, s, USERS).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let html = &p.body;
    assert!(html.contains("<th>User</th>"), "a User column: {html}");
    for email in ["alice@acme.test", "bob@acme.test", "carol@acme.test"] {
        assert!(html.contains(email), "{email} missing");
    }
    for id in [&t.admin_api.id, &t.bob[0].id, &t.bob[1].id, &t.carol.id] {
        assert!(html.contains(&id_field(id)), "{id} has no Terminate form");
    }
    assert!(
        !html.contains(&id_field(&a.id)),
        "the admin's own current session"
    );
    assert_eq!(count(html, ">Current<"), 1);
    assert!(!html.contains("dave@bravo.test") && !html.contains(&t.dave.id));
    assert!(!html.contains("olga@ops.test") && !html.contains(&t.olga.id));
    assert!(
        !html.contains("<select name=\"account_id\""),
        "an account filter for an admin"
    );
    assert!(html.contains("5 active sessions match."), "{html}");

    // Search: a case-insensitive substring of the email.
    let p = get(&a.c, s, &format!("{USERS}?q=BOB")).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("bob@acme.test"));
    assert!(!p.body.contains("carol@acme.test") && !p.body.contains(&t.admin_api.id));
    assert!(p.body.contains("2 active sessions match."), "{}", p.body);
    let p = get(&a.c, s, &format!("{USERS}?q=bravo")).await;
    assert!(p.body.contains("No active sessions match."), "{}", p.body);
    // Another account's filter: not found.
    let p = get(&a.c, s, &format!("{USERS}?account_id={}", t.bravo)).await;
    assert_eq!(p.status, 404, "{}", p.body);

    // End all listed: confirmation first, then exactly the matching sessions.
    let listed = format!("{USERS}/end-listed");
    let filters = [
        ("q", "bob"),
        ("user_id", ""),
        ("account_id", ""),
        ("application", ""),
    ];
    let mut form = vec![("csrf", a.csrf.as_str())];
    form.extend(filters);
    let p = post_form(&a.c, s, &listed, &form).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("End all 2 listed sessions?"), "{}", p.body);
    assert_eq!(active_in_db(s), 7, "ended without confirmation");
    form.push(("confirm", "yes"));
    let p = post_form(&a.c, s, &listed, &form).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with(USERS), "{}", p.location);
    assert!(
        p.location.contains("q=bob"),
        "back to the same search: {}",
        p.location
    );
    assert!(!alive(s, &t.bob[0].token).await);
    assert!(!alive(s, &t.bob[1].token).await);
    for x in [&t.carol, &t.admin_api, &t.dave, &t.olga] {
        assert!(alive(s, &x.token).await, "{x:?}");
    }

    // Everyone in Acme: all but the admin's own session.
    let form = [
        ("csrf", a.csrf.as_str()),
        ("confirm", "yes"),
        ("q", "ACME"),
        ("user_id", ""),
        ("account_id", ""),
        ("application", ""),
    ];
    let p = post_form(&a.c, s, &listed, &form).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.contains("done=2"), "{}", p.location);
    assert!(!alive(s, &t.carol.token).await);
    assert!(!alive(s, &t.admin_api.token).await);
    assert_eq!(
        get(&a.c, s, PAGE).await.status,
        200,
        "the admin was signed out"
    );
    assert!(alive(s, &t.dave.token).await);
    assert!(alive(s, &t.olga.token).await);

    // The owner sees every account and can filter by one.
    let owner = signed_in_browser(s, "olga@ops.test").await;
    let p = get(&owner.c, s, USERS).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("<select name=\"account_id\""), "{}", p.body);
    assert!(
        p.body.contains(">Acme<") && p.body.contains(">Bravo<"),
        "{}",
        p.body
    );
    assert!(p.body.contains("dave@bravo.test") && p.body.contains("alice@acme.test"));
    let p = get(&owner.c, s, &format!("{USERS}?account_id={}", t.bravo)).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("dave@bravo.test"));
    assert!(!p.body.contains("alice@acme.test"), "{}", p.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_listed_confirmation_counts_what_will_end() {
    let t = team().await;
    let s = &t.s;
    let a = &t.admin;
    // "ACME" matches the admin's own current session too, which is never ended: the
    // question must name the number that will actually end.
    let mut form = vec![
        ("csrf", a.csrf.as_str()),
        ("q", "ACME"),
        ("user_id", ""),
        ("account_id", ""),
        ("application", ""),
    ];
    let p = post_form(&a.c, s, &format!("{USERS}/end-listed"), &form).await;
    assert_eq!(p.status, 200, "{}", p.body);
    form.push(("confirm", "yes"));
    let done = post_form(&a.c, s, &format!("{USERS}/end-listed"), &form).await;
    assert_eq!(done.status, 303);
    assert!(done.location.contains("done=4"), "{}", done.location);
    assert!(
        p.body.contains("End all 4 listed sessions?"),
        "4 sessions ended, the confirmation said: {}",
        p.body
            .split("<h1>")
            .nth(1)
            .and_then(|h| h.split("</h1>").next())
            .unwrap_or(&p.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ending_a_session_sends_that_user_to_sign_in() {
    let t = team().await;
    let s = &t.s;
    let a = &t.admin;
    let carol = signed_in_browser(s, "carol@acme.test").await;
    let terminate = format!("{USERS}/terminate");

    // Out of scope or without the token: refused, nothing ended.
    let p = post_form(
        &a.c,
        s,
        &terminate,
        &[("csrf", &a.csrf), ("id", &t.dave.id)],
    )
    .await;
    assert_eq!(p.status, 404, "{}", p.body);
    assert!(alive(s, &t.dave.token).await);
    let p = post_form(&a.c, s, &terminate, &[("id", &carol.id)]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    let p = post_form(&a.c, s, &terminate, &[("csrf", "x"), ("id", &carol.id)]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert_eq!(get(&carol.c, s, PAGE).await.status, 200);

    let p = post_form(&a.c, s, &terminate, &[("csrf", &a.csrf), ("id", &carol.id)]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with(USERS), "{}", p.location);
    assert_sent_to_login(
        s,
        &carol.c,
        "terminated_by_admin",
        "It was ended by an administrator.",
    )
    .await;
    assert!(alive(s, &t.carol.token).await, "only that session ends");

    // Every session of one user, after a confirmation.
    let end_user = format!("{USERS}/end-user");
    let bob_id = t.bob_u.id.0.to_string();
    let p = post_form(
        &a.c,
        s,
        &end_user,
        &[("csrf", &a.csrf), ("target", &bob_id)],
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("name=\"confirm\" value=\"yes\""));
    assert!(alive(s, &t.bob[0].token).await);
    let p = post_form(
        &a.c,
        s,
        &end_user,
        &[("csrf", &a.csrf), ("confirm", "yes"), ("target", &bob_id)],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(!alive(s, &t.bob[0].token).await);
    assert!(!alive(s, &t.bob[1].token).await);
    let dave_id = t.dave_u.id.0.to_string();
    let p = post_form(
        &a.c,
        s,
        &end_user,
        &[("csrf", &a.csrf), ("confirm", "yes"), ("target", &dave_id)],
    )
    .await;
    assert_eq!(p.status, 404, "{}", p.body);
    assert!(alive(s, &t.dave.token).await);
    assert!(alive(s, &t.carol.token).await);
    assert_eq!(get(&a.c, s, PAGE).await.status, 200);
}

// ---------------------------------------------------------------------------------------
// Headers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers() {
    let t = team().await;
    let s = &t.s;
    let carol = signed_in_browser(s, "carol@acme.test").await;
    let anon = browser();
    let mut pages = vec![
        ("login", get(&anon, s, "/login").await),
        ("signed out", get(&anon, s, PAGE).await),
        ("my sessions", get(&t.admin.c, s, PAGE).await),
        ("users sessions", get(&t.admin.c, s, USERS).await),
        ("404 users tab", get(&carol.c, s, USERS).await),
    ];
    pages.push((
        "confirmation",
        post_form(
            &t.admin.c,
            s,
            &format!("{PAGE}/end-others"),
            &[("csrf", &t.admin.csrf)],
        )
        .await,
    ));
    pages.push((
        "403 form",
        post_form(&t.admin.c, s, &format!("{PAGE}/terminate"), &[("id", "x")]).await,
    ));
    let expected_status = [200, 303, 200, 200, 404, 200, 403];
    for ((what, p), want) in pages.iter().zip(expected_status) {
        assert_eq!(p.status, want, "{what}");
        let h = |name: &str| {
            p.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert!(
            h("content-security-policy").contains("frame-ancestors 'none'"),
            "{what}: CSP {:?}",
            h("content-security-policy")
        );
        assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    }
    // Session lists are never cached.
    for (what, p) in &pages[2..4] {
        let cc = p.headers.get("cache-control").unwrap().to_str().unwrap();
        assert!(cc.contains("no-store"), "{what}: {cc}");
    }
}
