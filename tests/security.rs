#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Session-management security (OWASP ASVS 4.0.3 V3, see docs/SECURITY.md): no access
//! across accounts or users through any id, CSRF on every unsafe cookie request, sign-in
//! timing that does not tell whether an email exists, password change with
//! re-authentication, tokens never in URLs or logs, no session fixation, cookie flags,
//! and level-2 timeouts.
mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use doorman::model::{Role, User};
use serde_json::{Value, json};

const PAGE: &str = "/settings/security/sessions";
const USERS: &str = "/settings/security/sessions/users";
/// The Profile page, where the password is changed, and the password form's action.
const PASSWORD_PAGE: &str = "/settings/profile";
const PASSWORD_FORM: &str = "/settings/profile/password";

// ---------------------------------------------------------------------------------------
// helpers

/// Everything an attack below could change, as one comparable value: sessions (ended or
/// not, and why), users (name, role, status, password hash) and accounts.
fn snapshot(s: &TestServer) -> Vec<String> {
    [
        "SELECT group_concat(public_id || ':' || coalesce(ended_at, '-') || ':' || coalesce(end_reason, '-'), ',') FROM (SELECT * FROM sessions ORDER BY id)",
        "SELECT group_concat(id || ':' || email || ':' || name || ':' || role || ':' || status || ':' || password_hash, ',') FROM (SELECT * FROM users ORDER BY id)",
        "SELECT group_concat(id || ':' || name || ':' || require_second_factor, ',') FROM (SELECT * FROM accounts ORDER BY id)",
        "SELECT group_concat(id || ':' || name || ':' || active, ',') FROM (SELECT * FROM second_factors ORDER BY id)",
        "SELECT group_concat(hex(code_hash), ',') FROM recovery_codes",
    ]
    .iter()
    .map(|q| s.sql_text(q).unwrap_or_default())
    .collect()
}

fn active_count(s: &TestServer) -> i64 {
    s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NULL")
}

/// A browser signed in through the form: its client, session token and page CSRF token.
struct Browser {
    c: reqwest::Client,
    token: String,
    csrf: String,
}

async fn signed_in_browser(s: &TestServer, email: &str) -> Browser {
    let c = browser();
    let resp = browser_login(s, &c, email).await;
    let token = cookie_of(&resp, "doorman_session")
        .expect("session cookie at sign-in")
        .value;
    let page = read(c.get(s.url(PAGE)).send().await.unwrap()).await;
    assert_eq!(page.status, 200, "{email}: {}", page.body);
    let csrf = form_value(&page.body, "csrf").expect("csrf on the sessions page");
    Browser { c, token, csrf }
}

/// One `Set-Cookie`: its value and its attributes, lower-cased (`secure`, `path=/`, …).
#[derive(Debug)]
struct SetCookie {
    value: String,
    attrs: Vec<String>,
}

impl SetCookie {
    fn has(&self, attr: &str) -> bool {
        self.attrs.iter().any(|a| a == attr)
    }

    fn attr(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.attrs
            .iter()
            .find_map(|a| a.strip_prefix(prefix.as_str()))
    }
}

fn cookie_of(resp: &reqwest::Response, name: &str) -> Option<SetCookie> {
    let prefix = format!("{name}=");
    let all: Vec<&str> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .filter(|v| v.starts_with(&prefix))
        .collect();
    assert!(all.len() <= 1, "several Set-Cookie {name}: {all:?}");
    let mut parts = all.first()?.split(';').map(str::trim);
    let value = parts.next().unwrap()[prefix.len()..].to_string();
    Some(SetCookie {
        value,
        attrs: parts.map(str::to_ascii_lowercase).collect(),
    })
}

/// Form fields besides `csrf`.
type Fields = Vec<(&'static str, String)>;

fn assert_not_found(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 404, "{what}: {body}");
    assert_eq!(body["error"], "not_found", "{what}: {body}");
}

fn assert_csrf_refused(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 403, "{what}: {body}");
    assert_eq!(body["error"], "forbidden", "{what}: {body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("X-CSRF-Token"),
        "{what}: {body}"
    );
}

/// Two accounts: Acme (an admin and two users) and Globex (an admin and a user), each
/// signed in through the API once.
struct Tenants {
    s: TestServer,
    acme_ann: User,
    acme_bob: User,
    globex_admin: User,
    globex_gus: User,
    sess_acme_admin: Sess,
    sess_ann: Sess,
    sess_bob: Sess,
    sess_globex_admin: Sess,
    sess_gus: Sess,
}

async fn tenants() -> Tenants {
    let s = start().await;
    s.user("Acme", "admin@acme.test", Role::Admin).await;
    let acme_ann = s.user("Acme", "ann@acme.test", Role::User).await;
    let acme_bob = s.user("Acme", "bob@acme.test", Role::User).await;
    let globex_admin = s.user("Globex", "admin@globex.test", Role::Admin).await;
    let globex_gus = s.user("Globex", "gus@globex.test", Role::User).await;
    let sess_acme_admin = login(&s, "admin@acme.test", CHROME_MAC).await;
    let sess_ann = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let sess_bob = login(&s, "bob@acme.test", SAFARI_IPHONE).await;
    let sess_globex_admin = login(&s, "admin@globex.test", CHROME_MAC).await;
    let sess_gus = login(&s, "gus@globex.test", SAFARI_IPHONE).await;
    Tenants {
        s,
        acme_ann,
        acme_bob,
        globex_admin,
        globex_gus,
        sess_acme_admin,
        sess_ann,
        sess_bob,
        sess_globex_admin,
        sess_gus,
    }
}

// ---------------------------------------------------------------------------------------
// IDOR: every endpoint that takes an id

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_ids_outside_the_callers_scope_answer_404_and_change_nothing() {
    let t = tenants().await;
    let s = &t.s;
    let before = snapshot(s);
    let gus = t.globex_gus.id.0;
    let bob = t.acme_bob.id.0;
    let globex = t.globex_admin.account_id.0;

    // (attacker, what it may not touch): a plain user against another user of the same
    // account and of another account; an admin against another account.
    let attackers = [
        ("ann (user) → bob", &t.sess_ann, &t.sess_bob, bob),
        ("ann (user) → gus", &t.sess_ann, &t.sess_gus, gus),
        ("acme admin → gus", &t.sess_acme_admin, &t.sess_gus, gus),
        (
            "acme admin → globex admin",
            &t.sess_acme_admin,
            &t.sess_globex_admin,
            t.globex_admin.id.0,
        ),
    ];
    for (who, attacker, victim, victim_user) in attackers {
        let tok = attacker.token.as_str();
        let (st, b) = s
            .delete(&format!("/api/v1/sessions/{}", victim.id), tok)
            .await;
        assert_not_found(st, &b, &format!("{who}: DELETE /sessions/{{id}}"));
        let (st, b) = s
            .delete(&format!("/api/v1/admin/sessions/{}", victim.id), tok)
            .await;
        assert_not_found(st, &b, &format!("{who}: DELETE /admin/sessions/{{id}}"));
        let (st, b) = s
            .delete(&format!("/api/v1/admin/users/{victim_user}/sessions"), tok)
            .await;
        assert_not_found(
            st,
            &b,
            &format!("{who}: DELETE /admin/users/{{id}}/sessions"),
        );
        for change in [
            json!({"status": "disabled"}),
            json!({"role": "user"}),
            json!({"name": "Pwned"}),
        ] {
            let (st, b) = s
                .patch(
                    &format!("/api/v1/admin/users/{victim_user}"),
                    tok,
                    change.clone(),
                )
                .await;
            assert_not_found(
                st,
                &b,
                &format!("{who}: PATCH /admin/users/{{id}} {change}"),
            );
        }
        let (st, b) = s
            .get(&format!("/api/v1/login-records?user_id={victim_user}"), tok)
            .await;
        assert_not_found(st, &b, &format!("{who}: GET /login-records?user_id="));
    }
    // Account ids: an admin's filters may not reach another account.
    let tok = t.sess_acme_admin.token.as_str();
    let (st, b) = s
        .delete(&format!("/api/v1/admin/sessions?account_id={globex}"), tok)
        .await;
    assert_not_found(
        st,
        &b,
        "acme admin: DELETE /admin/sessions?account_id=globex",
    );
    let (st, b) = s
        .get(&format!("/api/v1/admin/sessions?account_id={globex}"), tok)
        .await;
    assert_not_found(st, &b, "acme admin: GET /admin/sessions?account_id=globex");
    let (st, b) = s
        .get(&format!("/api/v1/admin/sessions?user_id={gus}"), tok)
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["items"],
        json!([]),
        "another account's user lists nothing"
    );

    // Out of scope looks exactly like "does not exist", so ids do not leak.
    let (_, outside) = s
        .delete(
            &format!("/api/v1/admin/sessions/{}", t.sess_gus.id),
            &t.sess_acme_admin.token,
        )
        .await;
    let (_, missing) = s
        .delete(
            "/api/v1/admin/sessions/AAAAAAAAAAAAAAAAAAAAAA",
            &t.sess_acme_admin.token,
        )
        .await;
    assert_eq!(outside, missing);
    let (_, outside) = s
        .patch(
            &format!("/api/v1/admin/users/{gus}"),
            &t.sess_acme_admin.token,
            json!({"name": "x"}),
        )
        .await;
    let (_, missing) = s
        .patch(
            "/api/v1/admin/users/999999",
            &t.sess_acme_admin.token,
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(outside, missing);

    assert_eq!(snapshot(s), before, "nothing changed");
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"),
        0
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM users WHERE status = 'disabled'"),
        0
    );
    for victim in [&t.sess_bob, &t.sess_gus, &t.sess_globex_admin] {
        assert!(alive(s, &victim.token).await, "{victim:?} still signed in");
    }

    // The same calls inside the caller's scope do work, so the 404s above are the scope
    // rule and not a broken route.
    let (st, b) = s
        .delete(&format!("/api/v1/admin/sessions/{}", t.sess_bob.id), tok)
        .await;
    assert_eq!(st, 204, "{b}");
    assert!(!alive(s, &t.sess_bob.token).await);
    let (st, b) = s
        .get(&format!("/api/v1/login-records?user_id={bob}"), tok)
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .patch(
            &format!("/api/v1/admin/users/{bob}"),
            tok,
            json!({"name": "Bob B"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .delete(
            &format!("/api/v1/admin/users/{}/sessions", t.acme_ann.id.0),
            tok,
        )
        .await;
    assert_eq!((st, b["ended"].as_i64()), (200, Some(1)), "{b}");
    assert!(alive(s, &t.sess_gus.token).await);
    assert!(alive(s, &t.sess_globex_admin.token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_forms_with_ids_outside_the_callers_scope_answer_404_and_change_nothing() {
    let t = tenants().await;
    let s = &t.s;
    let ann = signed_in_browser(s, "ann@acme.test").await;
    let admin = signed_in_browser(s, "admin@acme.test").await;
    let before = snapshot(s);
    let gus = t.globex_gus.id.0.to_string();
    let bob = t.acme_bob.id.0.to_string();
    let globex = t.globex_admin.account_id.0.to_string();

    let cases: Vec<(&str, &Browser, String, Fields)> = vec![
        (
            "ann ends bob's session",
            &ann,
            format!("{PAGE}/terminate"),
            vec![("id", t.sess_bob.id.clone())],
        ),
        (
            "ann ends gus's session",
            &ann,
            format!("{PAGE}/terminate"),
            vec![("id", t.sess_gus.id.clone())],
        ),
        (
            "admin ends gus's session as its own",
            &admin,
            format!("{PAGE}/terminate"),
            vec![("id", t.sess_gus.id.clone())],
        ),
        (
            "ann as admin ends bob's session",
            &ann,
            format!("{USERS}/terminate"),
            vec![("confirm", "yes".into()), ("id", t.sess_bob.id.clone())],
        ),
        (
            "admin ends gus's session",
            &admin,
            format!("{USERS}/terminate"),
            vec![("confirm", "yes".into()), ("id", t.sess_gus.id.clone())],
        ),
        (
            "admin ends the globex admin's session",
            &admin,
            format!("{USERS}/terminate"),
            vec![
                ("confirm", "yes".into()),
                ("id", t.sess_globex_admin.id.clone()),
            ],
        ),
        (
            "ann ends all of bob",
            &ann,
            format!("{USERS}/end-listed"),
            vec![("confirm", "yes".into()), ("user_id", bob.clone())],
        ),
        (
            "admin ends all of gus",
            &admin,
            format!("{USERS}/end-listed"),
            vec![("confirm", "yes".into()), ("user_id", gus.clone())],
        ),
        (
            "admin ends everything listed in globex",
            &admin,
            format!("{USERS}/end-listed"),
            vec![("confirm", "yes".into()), ("account_id", globex.clone())],
        ),
        (
            "admin counts globex's sessions",
            &admin,
            format!("{USERS}/end-listed"),
            vec![("account_id", globex.clone())],
        ),
        (
            "ann ends everything listed",
            &ann,
            format!("{USERS}/end-listed"),
            vec![("confirm", "yes".into()), ("q", "@".into())],
        ),
    ];
    for (what, b, path, fields) in &cases {
        let mut form: Vec<(&str, &str)> = vec![("csrf", b.csrf.as_str())];
        form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        let p = post_form(&b.c, s, path, &form).await;
        assert_eq!(p.status, 404, "{what}: {}", p.body);
        assert!(p.body.contains("Not found."), "{what}: {}", p.body);
    }
    // The users tab itself, asked for another account.
    let p = read(
        admin
            .c
            .get(s.url(&format!("{USERS}?account_id={globex}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, 404, "{}", p.body);

    assert_eq!(snapshot(s), before, "nothing changed");
    for victim in [&t.sess_bob, &t.sess_gus, &t.sess_globex_admin] {
        assert!(alive(s, &victim.token).await, "{victim:?} still signed in");
    }
    // In scope, the admin's forms work.
    let p = post_form(
        &admin.c,
        s,
        &format!("{USERS}/terminate"),
        &[
            ("csrf", &admin.csrf),
            ("confirm", "yes"),
            ("id", &t.sess_bob.id),
        ],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(!alive(s, &t.sess_bob.token).await);
    assert!(alive(s, &t.sess_gus.token).await);
}

// ---------------------------------------------------------------------------------------
// CSRF

/// One unsafe API call: method, path, JSON body.
struct Call {
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
    /// The status when it succeeds.
    ok: u16,
}

fn call(method: &str, path: String, body: Option<Value>, ok: u16) -> Call {
    Call {
        method: method.parse().unwrap(),
        path,
        body,
        ok,
    }
}

async fn send_with_cookie(
    s: &TestServer,
    cookie: &str,
    c: &Call,
    csrf: Option<&str>,
) -> (u16, Value) {
    let mut req = client()
        .request(c.method.clone(), s.url(&c.path))
        .header("cookie", format!("doorman_session={cookie}"));
    if let Some(token) = csrf {
        req = req.header("X-CSRF-Token", token);
    }
    if let Some(body) = &c.body {
        req = req.json(body);
    }
    status_json(req.send().await.unwrap()).await
}

/// The unsafe operations of the published API, as `METHOD /path` with `{}` for every
/// path parameter.
async fn unsafe_operations(s: &TestServer) -> BTreeSet<String> {
    let spec: Value = client()
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, _) in ops.as_object().unwrap() {
            if !["get", "head", "options"].contains(&method.as_str()) {
                let mut generic = String::new();
                let mut in_param = false;
                for ch in path.chars() {
                    match ch {
                        '{' => {
                            in_param = true;
                            generic.push_str("{}");
                        }
                        '}' => in_param = false,
                        c if !in_param => generic.push(c),
                        _ => {}
                    }
                }
                out.insert(format!("{} {generic}", method.to_uppercase()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unsafe_api_call_with_the_cookie_needs_the_csrf_header() {
    let s = start().await;
    s.user("Acme", "owner@acme.test", Role::Owner).await;
    let victim = s.user("Acme", "vic@acme.test", Role::User).await;
    let gone = s.user("Acme", "gone@acme.test", Role::User).await;
    let b = signed_in_browser(&s, "owner@acme.test").await;
    let other = signed_in_browser(&s, "owner@acme.test").await;
    let own_api = login(&s, "owner@acme.test", FIREFOX_WIN).await;
    let vic1 = login(&s, "vic@acme.test", CHROME_MAC).await;
    let vic2 = login(&s, "vic@acme.test", FIREFOX_WIN).await;
    let vic3 = login(&s, "vic@acme.test", SAFARI_IPHONE).await;
    let (_, inv) = s
        .post(
            "/api/v1/admin/users",
            &own_api.token,
            json!({"email": "inv@acme.test", "name": "Inv", "role": "user", "invite": true}),
        )
        .await;
    let invited = inv["id"].as_i64().unwrap();
    // An authenticator app waiting for its first code, to activate through the cookie.
    common::factors::settle().await;
    let (_, totp) = s
        .post(
            "/api/v1/me/second-factors/totp",
            &own_api.token,
            json!({"name": "Phone"}),
        )
        .await;
    let factor = totp["id"].as_i64().unwrap();
    let first_code = common::factors::code(
        &common::factors::key_bytes(totp["secret"].as_str().unwrap()),
        0,
    );

    // A grant of an application on two sessions, for the per-app sign-outs (§21).
    for sid in [&own_api.id, &vic1.id] {
        s.sql_exec(&format!(
            "INSERT INTO oidc_grants (session_id, user_id, client_id, application, sid, scopes,
                created_at, last_used_at)
             SELECT id, user_id, 'grafana', 'Grafana', public_id, 'openid', 0, 0
             FROM sessions WHERE public_id = '{sid}'"
        ));
    }
    let calls = vec![
        call(
            "DELETE",
            format!("/api/v1/sessions/{}/apps/grafana", own_api.id),
            None,
            204,
        ),
        call(
            "DELETE",
            format!("/api/v1/admin/sessions/{}/apps/grafana", vic1.id),
            None,
            204,
        ),
        call(
            "POST",
            "/api/v1/admin/users".into(),
            Some(
                json!({"email": "new@acme.test", "name": "New", "role": "user", "password": "a long enough secret"}),
            ),
            201,
        ),
        call(
            "POST",
            "/api/v1/admin/accounts".into(),
            Some(json!({"name": "Initech"})),
            201,
        ),
        call(
            "PATCH",
            format!("/api/v1/admin/users/{}", victim.id.0),
            Some(json!({"name": "Renamed"})),
            200,
        ),
        call(
            "DELETE",
            format!("/api/v1/sessions/{}", own_api.id),
            None,
            204,
        ),
        call(
            "DELETE",
            format!("/api/v1/admin/sessions/{}", vic1.id),
            None,
            204,
        ),
        call(
            "DELETE",
            format!("/api/v1/admin/users/{}/sessions", victim.id.0),
            None,
            200,
        ),
        call(
            "DELETE",
            "/api/v1/admin/sessions?q=vic%40".into(),
            None,
            200,
        ),
        call(
            "DELETE",
            format!("/api/v1/admin/users/{}", gone.id.0),
            None,
            204,
        ),
        call(
            "POST",
            format!("/api/v1/admin/users/{invited}/invitation"),
            None,
            200,
        ),
        call(
            "DELETE",
            format!("/api/v1/admin/users/{invited}/invitation"),
            None,
            204,
        ),
        call(
            "POST",
            format!("/api/v1/admin/users/{}/password-reset", victim.id.0),
            None,
            202,
        ),
        call(
            "PATCH",
            format!("/api/v1/admin/accounts/{}", victim.account_id.0),
            Some(json!({"name": "Acme Ltd"})),
            200,
        ),
        call(
            "PATCH",
            "/api/v1/me".into(),
            Some(json!({"name": "Olga"})),
            200,
        ),
        call(
            "POST",
            "/api/v1/me/email".into(),
            Some(json!({"new_email": "olga@else.test", "current_password": PASSWORD})),
            202,
        ),
        call(
            "POST",
            format!("/api/v1/me/second-factors/{factor}/activate"),
            Some(json!({"code": first_code})),
            200,
        ),
        call(
            "PATCH",
            format!("/api/v1/me/second-factors/{factor}"),
            Some(json!({"name": "Old phone"})),
            204,
        ),
        call(
            "PUT",
            "/api/v1/alert-preferences".into(),
            Some(json!({"new_device": true, "new_country": false, "travel": true, "moved": true})),
            200,
        ),
        call(
            "PUT",
            format!("/api/v1/admin/accounts/{}/alert-lock", victim.account_id.0),
            Some(json!({"locked": true})),
            204,
        ),
        call(
            "POST",
            "/api/v1/me/recovery-codes".into(),
            Some(json!({})),
            200,
        ),
        call(
            "POST",
            "/api/v1/me/step-up".into(),
            Some(json!({"password": PASSWORD})),
            204,
        ),
        call(
            "POST",
            "/api/v1/me/second-factors/totp".into(),
            Some(json!({"name": "Tablet"})),
            201,
        ),
        call(
            "DELETE",
            format!("/api/v1/me/second-factors/{factor}"),
            None,
            204,
        ),
        call(
            "DELETE",
            format!("/api/v1/admin/users/{}/second-factors", victim.id.0),
            None,
            204,
        ),
        call(
            "PUT",
            format!(
                "/api/v1/admin/accounts/{}/second-factor-policy",
                victim.account_id.0
            ),
            Some(json!({"required": false})),
            204,
        ),
        call("DELETE", "/api/v1/sessions".into(), None, 200),
        call(
            "POST",
            "/api/v1/me/password".into(),
            Some(json!({"current_password": PASSWORD, "new_password": "plum kettle orbit 7"})),
            204,
        ),
        call("POST", "/api/v1/logout".into(), None, 204),
    ];
    // The list covers every unsafe operation the API publishes (except sign-in, which
    // takes no session): a new one fails here until it is added.
    let covered: BTreeSet<String> = calls
        .iter()
        .map(|c| {
            let path = c.path.split('?').next().unwrap();
            let generic: Vec<String> = path
                .trim_start_matches("/api/v1")
                .split('/')
                .map(|seg| {
                    let is_id = seg.parse::<i64>().is_ok()
                        || seg == "grafana"
                        || [&own_api.id, &vic1.id].contains(&&seg.to_string());
                    if is_id {
                        "{}".to_string()
                    } else {
                        seg.to_string()
                    }
                })
                .collect();
            format!("{} {}", c.method, generic.join("/"))
        })
        .chain([
            "POST /login".to_string(),
            "POST /login/second-factor".to_string(),
        ])
        .collect();
    assert_eq!(covered, unsafe_operations(&s).await);

    let before = snapshot(&s);
    let wrong_tokens = [
        None,
        Some("not-the-token".to_string()),
        Some(String::new()),
        // A real CSRF token, but of another session of the same user.
        Some(other.csrf.clone()),
        // The session token itself is not the CSRF token.
        Some(b.token.clone()),
    ];
    for c in &calls {
        for wrong in &wrong_tokens {
            let (st, body) = send_with_cookie(&s, &b.token, c, wrong.as_deref()).await;
            assert_csrf_refused(
                st,
                &body,
                &format!("{} {} with {wrong:?}", c.method, c.path),
            );
        }
    }
    assert_eq!(snapshot(&s), before, "nothing changed");
    for t in [
        &b.token,
        &other.token,
        &own_api.token,
        &vic1.token,
        &vic2.token,
        &vic3.token,
    ] {
        assert!(alive(&s, t).await);
    }

    // With the session's own token each one goes through: the 403s were the CSRF rule.
    for c in &calls {
        let (st, body) = send_with_cookie(&s, &b.token, c, Some(&b.csrf)).await;
        assert_eq!(st, c.ok, "{} {}: {body}", c.method, c.path);
    }
    assert!(!alive(&s, &b.token).await, "logged out at the end");
    assert!(!alive(&s, &other.token).await, "ended by DELETE /sessions");
    assert!(
        !alive(&s, &vic3.token).await,
        "ended by the user-wide DELETE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_form_needs_the_csrf_token() {
    let s = start().await;
    s.user("Acme", "admin@acme.test", Role::Admin).await;
    let victim = s.user("Acme", "vic@acme.test", Role::User).await;
    let b = signed_in_browser(&s, "admin@acme.test").await;
    let other_browser = signed_in_browser(&s, "admin@acme.test").await;
    let mine = login(&s, "admin@acme.test", FIREFOX_WIN).await;
    let vic1 = login(&s, "vic@acme.test", CHROME_MAC).await;
    let _vic2 = login(&s, "vic@acme.test", FIREFOX_WIN).await;
    let vid = victim.id.0.to_string();

    // (path, fields besides csrf, the status when the token is right)
    let forms: Vec<(String, Fields, u16)> = vec![
        (
            format!("{PAGE}/terminate"),
            vec![("id", mine.id.clone())],
            303,
        ),
        (
            format!("{USERS}/terminate"),
            vec![("confirm", "yes".into()), ("id", vic1.id.clone())],
            303,
        ),
        (
            format!("{USERS}/end-listed"),
            vec![("confirm", "yes".into()), ("q", "vic@".into())],
            303,
        ),
        (
            format!("{PAGE}/end-others"),
            vec![("confirm", "yes".into())],
            303,
        ),
        (
            "/settings/profile/name".to_string(),
            vec![("name", "Renamed Admin".into())],
            303,
        ),
        (
            "/settings/profile/email-change".to_string(),
            vec![
                ("new_email", "admin@elsewhere.test".into()),
                ("current_password", PASSWORD.into()),
            ],
            303,
        ),
        (
            "/settings/team/users/invite".to_string(),
            vec![
                ("email", "invited@acme.test".into()),
                ("name", "Invited".into()),
                ("role", "user".into()),
            ],
            200,
        ),
        (
            "/settings/team/users/action".to_string(),
            vec![("id", vid.clone()), ("action", "reset".into())],
            303,
        ),
        (
            PASSWORD_FORM.to_string(),
            vec![
                ("current", PASSWORD.into()),
                ("new", "a different password".into()),
                ("keep_current", "yes".into()),
            ],
            303,
        ),
        (
            "/settings/security/second-factors/totp".to_string(),
            vec![("name", "Phone".into())],
            200,
        ),
        (
            "/settings/security/second-factors/policy".to_string(),
            vec![("required", "yes".into())],
            303,
        ),
        ("/logout".to_string(), vec![], 303),
    ];
    let before = snapshot(&s);
    let wrong_tokens = [
        None,
        Some("not-the-token".to_string()),
        Some(String::new()),
        Some(other_browser.csrf.clone()),
        Some(b.token.clone()),
    ];
    for (path, fields, _) in &forms {
        for wrong in &wrong_tokens {
            let mut form: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let Some(w) = wrong {
                form.push(("csrf", w));
            }
            let p = post_form(&b.c, &s, path, &form).await;
            assert_eq!(p.status, 403, "{path} with {wrong:?}: {}", p.body);
            assert!(p.location.is_empty());
        }
    }
    assert_eq!(snapshot(&s), before, "nothing changed");
    assert_eq!(active_count(&s), 5);
    assert!(alive(&s, &mine.token).await && alive(&s, &vic1.token).await);
    let p = read(b.c.get(s.url(PAGE)).send().await.unwrap()).await;
    assert_eq!(p.status, 200, "still signed in");

    for (path, fields, ok) in &forms {
        let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.push(("csrf", &b.csrf));
        let p = post_form(&b.c, &s, path, &form).await;
        assert_eq!(p.status, *ok, "{path} with the right token: {}", p.body);
    }
    assert_eq!(
        active_count(&s),
        0,
        "every action went through, logout last"
    );
}

// ---------------------------------------------------------------------------------------
// sign-in

/// One failed sign-in: how long it took, its status and body.
async fn timed_attempt(s: &TestServer, email: &str) -> (Duration, u16, Value) {
    let started = Instant::now();
    let (status, body) = s
        .login_raw(email, "not the password", CHROME_MAC, None, None)
        .await;
    (started.elapsed(), status, body)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_timing_does_not_tell_whether_an_email_exists() {
    let s = start_with(|c| {
        c.security.argon2 = doorman::config::Argon2Config {
            m: 19456,
            t: 2,
            p: 1,
        };
        c.security.login_rate_limit.failures = 1000;
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    assert!(
        s.sql_text("SELECT password_hash FROM users")
            .unwrap()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "the real parameters are in use"
    );
    // Warm-up: connections, caches.
    timed_attempt(&s, "ann@acme.test").await;
    timed_attempt(&s, "warm@acme.test").await;

    let (mut unknown, mut known) = (vec![], vec![]);
    let mut bodies = BTreeSet::new();
    for i in 0..15 {
        // Interleaved, so that a slow spell of the machine hits both alike.
        let (d, st, body) = timed_attempt(&s, &format!("nobody{i}@acme.test")).await;
        assert_eq!(st, 401, "{body}");
        bodies.insert(body.to_string());
        unknown.push(d);
        let (d, st, body) = timed_attempt(&s, "ann@acme.test").await;
        assert_eq!(st, 401, "{body}");
        bodies.insert(body.to_string());
        known.push(d);
    }
    assert_eq!(bodies.len(), 1, "one answer for both: {bodies:?}");
    let (u, k) = (median(unknown), median(known));
    let ratio = u.as_secs_f64() / k.as_secs_f64();
    eprintln!("median sign-in: unknown email {u:?}, wrong password {k:?}, ratio {ratio:.2}");
    assert!(
        (0.5..=2.0).contains(&ratio),
        "unknown email {u:?} vs wrong password {k:?}: ratio {ratio:.2}"
    );
    // Hashing really happened for both (tens of milliseconds with these parameters).
    assert!(
        u >= Duration::from_millis(5) && k >= Duration::from_millis(5),
        "{u:?} {k:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_presented_at_sign_in_is_never_adopted() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "eve@acme.test", Role::User).await;
    let eves = s.token("eve@acme.test").await;
    let chosen = "A".repeat(43);
    for (what, planted) in [
        ("chosen", chosen.clone()),
        ("eve's live token", eves.clone()),
    ] {
        let get = client()
            .get(s.url("/login"))
            .header("cookie", format!("doorman_session={planted}"))
            .send()
            .await
            .unwrap();
        // A live token is signed in already and sent on; a made-up one gets the form.
        let csrf = cookie_of(&get, "doorman_csrf").map(|c| c.value);
        let csrf = match csrf {
            Some(c) => c,
            None => {
                cookie_of(
                    &client().get(s.url("/login")).send().await.unwrap(),
                    "doorman_csrf",
                )
                .unwrap()
                .value
            }
        };
        let resp = client()
            .post(s.url("/login"))
            .header(
                "cookie",
                format!("doorman_session={planted}; doorman_csrf={csrf}"),
            )
            .form(&[
                ("email", "ann@acme.test"),
                ("password", PASSWORD),
                ("csrf", csrf.as_str()),
                ("rd", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{what}");
        let issued = cookie_of(&resp, "doorman_session").unwrap().value;
        assert_ne!(issued, planted, "{what}: a new token is issued");
        assert_eq!(issued.len(), 43);
        let (st, me) = s.get("/api/v1/me", &issued).await;
        assert_eq!(
            (st, me["user"]["email"].as_str()),
            (200, Some("ann@acme.test"))
        );
    }
    // The planted values stay what they were: nothing, and eve's own session.
    assert!(!alive(&s, &chosen).await);
    let (_, me) = s.get("/api/v1/me", &eves).await;
    assert_eq!(me["user"]["email"], "eve@acme.test");
    let hash = |t: &str| {
        use sha2::Digest;
        sha2::Sha256::digest(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM sessions WHERE hex(token_hash) = upper('{}')",
            hash(&chosen)
        )),
        0
    );
}

// ---------------------------------------------------------------------------------------
// password change

async fn change_password(
    b: &Browser,
    s: &TestServer,
    current: &str,
    new: &str,
    keep: bool,
) -> Page {
    let mut form = vec![
        ("csrf", b.csrf.as_str()),
        ("current", current),
        ("new", new),
    ];
    if keep {
        form.push(("keep_current", "yes"));
    }
    post_form(&b.c, s, PASSWORD_FORM, &form).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_needs_the_current_password_and_ends_the_other_sessions() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let b = signed_in_browser(&s, "ann@acme.test").await;
    let phone = login(&s, "ann@acme.test", SAFARI_IPHONE).await;
    let laptop = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let bob = login(&s, "bob@acme.test", CHROME_MAC).await;
    let hash = || s.sql_text("SELECT password_hash FROM users WHERE email = 'ann@acme.test'");
    let before = snapshot(&s);

    // The page asks for the current password.
    let page = read(b.c.get(s.url(PASSWORD_PAGE)).send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"current\""), "{}", page.body);

    // Wrong current password (and a missing one): 400, nothing changes.
    for current in ["not my password", ""] {
        let p = change_password(&b, &s, current, "a brand new password", true).await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(
            p.body.contains("current password is not right"),
            "{}",
            p.body
        );
    }
    // Right current password, but a new one that breaks the policy: 400 too.
    let p = change_password(&b, &s, PASSWORD, "short", true).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert_eq!(snapshot(&s), before, "nothing changed");
    for t in [&phone.token, &laptop.token, &b.token] {
        assert!(alive(&s, t).await);
    }
    let (st, _) = s
        .login_raw("ann@acme.test", PASSWORD, CHROME_MAC, None, None)
        .await;
    assert_eq!(st, 201, "the old password still works");
    let extra =
        s.sql_text("SELECT public_id FROM sessions WHERE id = (SELECT max(id) FROM sessions)");

    // Right: every other session ends, this one stays (keep_current=yes).
    let old_hash = hash();
    let p = change_password(&b, &s, PASSWORD, "a brand new password", true).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location, format!("{PASSWORD_PAGE}?done=password&n=3"));
    assert_ne!(hash(), old_hash);
    assert!(!alive(&s, &phone.token).await);
    assert!(!alive(&s, &laptop.token).await);
    assert!(alive(&s, &b.token).await, "the current session stays");
    assert!(alive(&s, &bob.token).await, "other users are not touched");
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM sessions WHERE end_reason = 'password_changed' AND public_id IN ('{}', '{}', '{}')",
            phone.id,
            laptop.id,
            extra.unwrap()
        )),
        3
    );
    let (st, _) = s
        .login_raw("ann@acme.test", PASSWORD, CHROME_MAC, None, None)
        .await;
    assert_eq!(st, 401, "the old password is refused");
    let tablet = s
        .api_login_with(
            "ann@acme.test",
            CHROME_MAC,
            json!({"password": "a brand new password"}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Without keep_current the current session ends too, and the browser is sent to sign in.
    let p = change_password(&b, &s, "a brand new password", "a third password", false).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location, "/login?ended=password_changed");
    assert!(!alive(&s, &b.token).await);
    assert!(!alive(&s, &tablet).await);
    assert!(alive(&s, &bob.token).await);
    let p = read(b.c.get(s.url(PAGE)).send().await.unwrap()).await;
    assert_eq!(p.status, 303);
    assert!(
        p.location.starts_with("/login?ended=password_changed"),
        "{}",
        p.location
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'ann@acme.test' AND s.ended_at IS NULL"),
        0
    );
}

// ---------------------------------------------------------------------------------------
// tokens never in URLs or logs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_token_never_appears_in_a_url_or_a_page() {
    let s = start_with(|c| {
        c.applications = vec![doorman::config::Application {
            name: "Grafana".into(),
            url: "https://grafana.example.com".into(),
            ..Default::default()
        }];
    })
    .await;
    s.user("Acme", "admin@acme.test", Role::Admin).await;
    for rd in [
        "",
        "/settings/security/sessions/users?q=a",
        "https://grafana.example.com/d/1",
    ] {
        let c = browser();
        let page = read(
            c.get(s.url(&format!(
                "/login?rd={}",
                url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
            )))
            .send()
            .await
            .unwrap(),
        )
        .await;
        let csrf = form_value(&page.body, "csrf").unwrap();
        let resp = c
            .post(s.url("/login"))
            .form(&[
                ("email", "admin@acme.test"),
                ("password", PASSWORD),
                ("csrf", csrf.as_str()),
                ("rd", rd),
            ])
            .send()
            .await
            .unwrap();
        let token = cookie_of(&resp, "doorman_session").unwrap().value;
        assert_eq!(token.len(), 43);
        let mut next = read(resp).await;
        assert_eq!(next.status, 303);
        let mut seen = vec![];
        // Follow the redirects on Doorman itself, looking at every address and page.
        for _ in 0..5 {
            assert!(
                !next.location.contains(&token),
                "token in Location {}",
                next.location
            );
            assert!(!next.body.contains(&token), "token in a page");
            seen.push(next.location.clone());
            if next.location.is_empty() || !next.location.starts_with('/') {
                break;
            }
            next = read(c.get(s.url(&next.location)).send().await.unwrap()).await;
        }
        assert!(
            seen.len() >= 2 || rd.starts_with("https://"),
            "{rd}: {seen:?}"
        );
        for path in [
            PAGE,
            USERS,
            PASSWORD_PAGE,
            "/settings/security/history",
            "/",
        ] {
            let p = read(c.get(s.url(path)).send().await.unwrap()).await;
            assert!(p.status == 200 || p.status == 303, "{path}: {}", p.status);
            assert!(
                !p.body.contains(&token) && !p.location.contains(&token),
                "{path}"
            );
        }
        let page = read(c.get(s.url(PAGE)).send().await.unwrap()).await;
        let csrf = form_value(&page.body, "csrf").unwrap();
        assert_ne!(csrf, token);
        let out = read(
            c.post(s.url("/logout"))
                .form(&[("csrf", csrf.as_str())])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(out.status, 303);
        assert!(!out.location.contains(&token));
    }
}

/// The binary with a clean environment: this database, cheap hashing, debug logging.
fn doorman_cmd(db: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_doorman"));
    c.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DOORMAN_") {
            c.env_remove(key);
        }
    }
    c.env("DOORMAN_STORAGE__PATH", db)
        .env("DOORMAN_SECURITY__ARGON2__M", "1024")
        .env("DOORMAN_SECURITY__ARGON2__T", "1")
        .env("RUST_LOG", "debug");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_never_logs_tokens_or_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doorman.sqlite3");
    let password = "pw-in-the-clear-4711";
    let wrong = "wrong-pw-in-the-clear-0815";

    let mut add = doorman_cmd(
        &db,
        &[
            "user",
            "add",
            "--email",
            "ann@acme.test",
            "--account",
            "Acme",
            "--password-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let added = add.wait_with_output().unwrap();
    let add_log = String::from_utf8_lossy(&added.stderr).into_owned()
        + &String::from_utf8_lossy(&added.stdout);
    assert!(added.status.success(), "{add_log}");
    assert!(!add_log.contains(password), "{add_log}");

    let port = common::process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = dir.path().join("serve.log");
    let mut child = doorman_cmd(&db, &["serve"])
        .env("DOORMAN_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("DOORMAN_SERVER__PUBLIC_URL", &base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log().contains("listening") {
        assert!(Instant::now() < deadline, "serve did not start:\n{}", log());
        assert!(
            child.try_wait().unwrap().is_none(),
            "serve exited:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = |p: &str| format!("{base}{p}");

    // API: sign in, /me, verify, a wrong password, logout.
    let (st, body) = status_json(
        client()
            .post(url("/api/v1/login"))
            .json(&json!({"email": "ann@acme.test", "password": password}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 201, "{body}\n{}", log());
    let api_token = body["token"].as_str().unwrap().to_string();
    let me = client()
        .get(url("/api/v1/me"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let verify = client()
        .get(url("/auth/verify"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(verify.status(), 200);
    let (st, _) = status_json(
        client()
            .post(url("/api/v1/login"))
            .json(&json!({"email": "ann@acme.test", "password": wrong}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 401);

    // Browser: sign in through the form, a page, a wrong password, logout.
    let c = browser();
    let page = c
        .get(url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let resp = c
        .post(url("/login"))
        .form(&[
            ("email", "ann@acme.test"),
            ("password", password),
            ("csrf", &csrf),
            ("rd", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{}", log());
    let cookie_token = cookie_of(&resp, "doorman_session").unwrap().value;
    let page = c.get(url(PAGE)).send().await.unwrap().text().await.unwrap();
    let page_csrf = form_value(&page, "csrf").unwrap();
    let me = c.get(url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let out = c
        .post(url("/logout"))
        .form(&[("csrf", page_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let anon = browser();
    let page = anon
        .get(url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let resp = anon
        .post(url("/login"))
        .form(&[
            ("email", "ann@acme.test"),
            ("password", wrong),
            ("csrf", &csrf),
            ("rd", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The ended tokens, presented again (an "ended" path that logs its reason).
    assert_eq!(
        client()
            .get(url("/api/v1/me"))
            .bearer_auth(&cookie_token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let resp = client()
        .post(url("/api/v1/logout"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        client()
            .get(url("/api/v1/me"))
            .bearer_auth(&api_token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop:\n{}", log());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = log();
    // Debug logging was on, and the sign-ins and refusals were logged.
    assert!(log.contains("DEBUG"), "{log}");
    assert!(
        log.contains("signed in") && log.contains("sign-in refused"),
        "{log}"
    );
    for (what, secret) in [
        ("API token", api_token.as_str()),
        ("cookie token", cookie_token.as_str()),
        ("password", password),
        ("wrong password", wrong),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log:\n{log}");
    }
}

// ---------------------------------------------------------------------------------------
// cookies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_on_https_and_scoped_to_the_cookie_domain() {
    let s = start_with(|c| {
        c.server.public_url = "https://doorman.example.com".into();
        c.server.cookie_domain = "example.com".into();
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let check = |c: &SetCookie, what: &str| {
        for want in [
            "secure",
            "httponly",
            "samesite=lax",
            "path=/",
            "domain=example.com",
        ] {
            assert!(c.has(want), "{what}: no {want}: {c:?}");
        }
    };
    // Cookies by hand: a cookie store would not send Secure cookies over http.
    let get = client().get(s.url("/login")).send().await.unwrap();
    let csrf = cookie_of(&get, "doorman_csrf").unwrap();
    check(&csrf, "csrf cookie");
    assert_eq!(
        csrf.attr("max-age"),
        Some("3600"),
        "the sign-in form expires in an hour"
    );
    let resp = client()
        .post(s.url("/login"))
        .header("cookie", format!("doorman_csrf={}", csrf.value))
        .form(&[
            ("email", "ann@acme.test"),
            ("password", PASSWORD),
            ("csrf", csrf.value.as_str()),
            ("rd", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let session = cookie_of(&resp, "doorman_session").unwrap();
    check(&session, "session cookie");
    let max_age: i64 = session.attr("max-age").unwrap().parse().unwrap();
    assert!(max_age > 0 && max_age <= 30 * 24 * 3600, "{session:?}");
    check(
        &cookie_of(&resp, "doorman_device").unwrap(),
        "device cookie",
    );
    let spent = cookie_of(&resp, "doorman_csrf").unwrap();
    check(&spent, "spent csrf cookie");

    // Logging out deletes the cookie with the same Domain and Path, or the browser would
    // keep it.
    let page = client()
        .get(s.url(PAGE))
        .header("cookie", format!("doorman_session={}", session.value))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page_csrf = form_value(&page, "csrf").unwrap();
    let out = client()
        .post(s.url("/logout"))
        .header("cookie", format!("doorman_session={}", session.value))
        .form(&[("csrf", page_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let cleared = cookie_of(&out, "doorman_session").unwrap();
    check(&cleared, "cleared session cookie");
    assert_eq!(
        (cleared.value.as_str(), cleared.attr("max-age")),
        ("", Some("0"))
    );
    // An ended session visiting a page gets the same deletion.
    let stale = client()
        .get(s.url(PAGE))
        .header("cookie", format!("doorman_session={}", session.value))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 303);
    let cleared = cookie_of(&stale, "doorman_session").unwrap();
    check(&cleared, "cleared stale cookie");
    assert_eq!(cleared.attr("max-age"), Some("0"));

    // The defaults: host-only (no Domain) and, on http, no Secure.
    let plain = start().await;
    plain.user("Acme", "ann@acme.test", Role::User).await;
    let resp = browser_login(&plain, &browser(), "ann@acme.test").await;
    for name in ["doorman_session", "doorman_device"] {
        let c = cookie_of(&resp, name).unwrap();
        assert!(
            c.attr("domain").is_none() && !c.has("secure"),
            "{name}: {c:?}"
        );
        assert!(
            c.has("httponly") && c.has("samesite=lax") && c.has("path=/"),
            "{c:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// timeouts at ASVS level 2

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level_two_timeouts_hold_when_configured() {
    // ASVS V3.3.2 at level 2: 30 minutes idle, 12 hours at most.
    let s = start_with(|c| {
        c.sessions.idle_timeout = Duration::from_secs(30 * 60);
        c.sessions.max_lifetime = Duration::from_secs(12 * 3600);
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let a = login(&s, "ann@acme.test", CHROME_MAC).await;
    let b = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let row = |id: &str, col: &str| {
        s.sql_i64(&format!(
            "SELECT {col} FROM sessions WHERE public_id = '{id}'"
        ))
    };
    assert_eq!(row(&a.id, "expires_at") - row(&a.id, "created_at"), 30 * 60);

    // 31 minutes without activity: refused.
    s.sql_exec(&format!(
        "UPDATE sessions SET last_active_at = last_active_at - 1860, created_at = created_at - 1860, expires_at = expires_at - 1860 WHERE public_id = '{}'",
        a.id
    ));
    let (st, body) = s.get("/api/v1/me", &a.token).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (401, Some("session_ended")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("timed out"),
        "{body}"
    );

    // Active all along, but signed in 12 hours less 10 seconds ago: the next touch
    // cannot push expiry past the 12 hours, and past them the session is refused.
    s.sql_exec(&format!(
        "UPDATE sessions SET created_at = created_at - 43190, last_active_at = last_active_at - 120 WHERE public_id = '{}'",
        b.id
    ));
    assert!(alive(&s, &b.token).await);
    assert_eq!(
        row(&b.id, "expires_at"),
        row(&b.id, "created_at") + 12 * 3600,
        "capped at the absolute lifetime"
    );
    s.sql_exec(&format!(
        "UPDATE sessions SET created_at = created_at - 20, expires_at = expires_at - 20 WHERE public_id = '{}'",
        b.id
    ));
    let (st, body) = s.get("/api/v1/me", &b.token).await;
    assert_eq!(st, 401, "{body}");
}
