#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Admin users and accounts (SPEC §2, §7): who may list, create and change whom, invites,
//! disabling, the owner-only accounts, and the answers to bad input.
mod common;

use common::*;
use doorman::model::Role;
use serde_json::{Value, json};

/// Signs in through the API with any password; returns (status, body).
async fn login(s: &TestServer, email: &str, password: &str) -> (u16, Value) {
    let resp = client()
        .post(s.url("/api/v1/login"))
        .header("user-agent", CHROME_MAC)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

fn emails(body: &Value) -> Vec<String> {
    let mut all: Vec<String> = body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect();
    all.sort();
    all
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str, what: &str) {
    assert_eq!(status, want_status, "{what}: {body}");
    assert_eq!(body["error"], want_code, "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message: {body}"
    );
}

/// Owner in Ops; admin, user and an owner in Acme; admin and user in Beta.
struct World {
    s: TestServer,
    owner: String,
    admin_a: String,
    user_a_id: i64,
    boss_a_id: i64,
    user_b_id: i64,
    acme: i64,
    beta: i64,
}

async fn world() -> World {
    let s = start().await;
    s.user("Ops", "owner@ops.test", Role::Owner).await;
    let admin_a = s.user("Acme", "admin@acme.test", Role::Admin).await;
    let user_a = s.user("Acme", "ann@acme.test", Role::User).await;
    let boss_a = s.user("Acme", "boss@acme.test", Role::Owner).await;
    s.user("Beta", "admin@beta.test", Role::Admin).await;
    let user_b = s.user("Beta", "bob@beta.test", Role::User).await;
    let owner = s.token("owner@ops.test").await;
    let admin_a_token = s.token("admin@acme.test").await;
    World {
        owner,
        admin_a: admin_a_token,
        user_a_id: user_a.id.0,
        boss_a_id: boss_a.id.0,
        user_b_id: user_b.id.0,
        acme: admin_a.account_id.0,
        beta: user_b.account_id.0,
        s,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_users_find_no_admin_endpoints() {
    let w = world().await;
    let user = w.s.token("ann@acme.test").await;
    let (st, body) = w.s.get("/api/v1/admin/users", &user).await;
    assert_error(st, &body, 404, "not_found", "user lists users");
    let new = json!({"email": "x@acme.test", "name": "X", "role": "user", "password": PASSWORD});
    let (st, body) = w.s.post("/api/v1/admin/users", &user, new).await;
    assert_error(st, &body, 404, "not_found", "user creates a user");
    let path = format!("/api/v1/admin/users/{}", w.user_a_id);
    let (st, body) = w.s.patch(&path, &user, json!({"name": "Renamed"})).await;
    assert_error(st, &body, 404, "not_found", "user renames a user");
    let (st, body) = w.s.get("/api/v1/admin/accounts", &user).await;
    assert_error(st, &body, 404, "not_found", "user lists accounts");
    let (st, body) =
        w.s.post("/api/v1/admin/accounts", &user, json!({"name": "New"}))
            .await;
    assert_error(st, &body, 404, "not_found", "user creates an account");
    assert_eq!(
        w.s.sql_i64("SELECT count(*) FROM users WHERE email = 'x@acme.test'"),
        0
    );
    assert_eq!(
        w.s.sql_i64("SELECT count(*) FROM accounts WHERE name = 'New'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_lists_only_their_account() {
    let w = world().await;
    let (st, body) = w.s.get("/api/v1/admin/users", &w.admin_a).await;
    assert_eq!(st, 200, "{body}");
    // The owner (boss@, in Acme) ranks above an admin: not listed (SPEC §18).
    assert_eq!(emails(&body), ["admin@acme.test", "ann@acme.test"]);
    assert_eq!(body["next_cursor"], Value::Null);
    let ann = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "ann@acme.test")
        .unwrap();
    assert_eq!(ann["id"], w.user_a_id);
    assert_eq!(ann["name"], "ann");
    assert_eq!(ann["role"], "user");
    assert_eq!(ann["status"], "active");
    assert_eq!(ann["account"], json!({"id": w.acme, "name": "Acme"}));
    let created = ann["created_at"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{created}"
    );
    assert!(ann.get("initial_password").is_none(), "{ann}");

    let (st, body) =
        w.s.get(
            &format!("/api/v1/admin/users?account_id={}", w.acme),
            &w.admin_a,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(emails(&body).len(), 2);
    let (st, body) =
        w.s.get(
            &format!("/api/v1/admin/users?account_id={}", w.beta),
            &w.admin_a,
        )
        .await;
    assert_error(st, &body, 404, "not_found", "admin lists another account");
    let (st, body) = w.s.get("/api/v1/admin/users?q=ANN", &w.admin_a).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(emails(&body), ["ann@acme.test"]);
    let (st, body) = w.s.get("/api/v1/admin/users?q=bob", &w.admin_a).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(emails(&body), Vec::<String>::new(), "Beta's bob leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sees_every_account_and_filters() {
    let w = world().await;
    let (st, body) = w.s.get("/api/v1/admin/users", &w.owner).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        emails(&body),
        [
            "admin@acme.test",
            "admin@beta.test",
            "ann@acme.test",
            "bob@beta.test",
            "boss@acme.test",
            "owner@ops.test"
        ]
    );
    let (st, body) =
        w.s.get(
            &format!("/api/v1/admin/users?account_id={}", w.beta),
            &w.owner,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(emails(&body), ["admin@beta.test", "bob@beta.test"]);
    let (st, body) = w.s.get("/api/v1/admin/users?q=admin@", &w.owner).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(emails(&body), ["admin@acme.test", "admin@beta.test"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_only_in_their_account_and_not_above_their_role() {
    let w = world().await;
    let new = |email: &str, role: &str| json!({"email": email, "name": "New One", "role": role, "password": PASSWORD});
    let mut other = new("n1@beta.test", "user");
    other["account_id"] = json!(w.beta);
    let (st, body) = w.s.post("/api/v1/admin/users", &w.admin_a, other).await;
    assert_error(st, &body, 404, "not_found", "admin creates in Beta");

    let (st, body) =
        w.s.post(
            "/api/v1/admin/users",
            &w.admin_a,
            new("n2@acme.test", "owner"),
        )
        .await;
    assert_error(st, &body, 403, "forbidden", "admin grants owner");

    let (st, body) =
        w.s.post(
            "/api/v1/admin/users",
            &w.admin_a,
            new("n3@acme.test", "admin"),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["account"], json!({"id": w.acme, "name": "Acme"}));

    let mut own = new("n4@acme.test", "user");
    own["account_id"] = json!(w.acme);
    let (st, body) = w.s.post("/api/v1/admin/users", &w.admin_a, own).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["account"]["id"], w.acme);

    assert_eq!(
        w.s.sql_i64("SELECT count(*) FROM users WHERE email IN ('n1@beta.test', 'n2@acme.test')"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_creates_in_any_existing_account() {
    let w = world().await;
    let body = json!({"email": "new@beta.test", "name": "New", "role": "owner",
        "password": PASSWORD, "account_id": w.beta});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.owner, body).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["account"], json!({"id": w.beta, "name": "Beta"}));
    assert_eq!(body["role"], "owner");

    let body =
        json!({"email": "home@ops.test", "name": "Home", "role": "user", "password": PASSWORD});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.owner, body).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["account"]["name"], "Ops");

    let body = json!({"email": "nowhere@x.test", "name": "N", "role": "user",
        "password": PASSWORD, "account_id": 987_654});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.owner, body).await;
    assert_error(
        st,
        &body,
        404,
        "not_found",
        "owner creates in an unknown account",
    );
    assert_eq!(
        w.s.sql_i64("SELECT count(*) FROM users WHERE email = 'nowhere@x.test'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_created_with_a_password_signs_in() {
    let w = world().await;
    let body = json!({"email": "Carol@Acme.test", "name": "Carol", "role": "user",
        "password": "a long enough secret"});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.admin_a, body).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["email"], "Carol@Acme.test");
    assert_eq!(body["name"], "Carol");
    assert_eq!(body["status"], "active");
    assert!(body["id"].as_i64().is_some(), "{body}");
    assert!(body["created_at"].is_string(), "{body}");
    assert_eq!(body["invite_url"], Value::Null);
    assert!(
        body.get("invite_url").is_some(),
        "invite_url missing: {body}"
    );

    let (st, login_body) = login(&w.s, "carol@acme.test", "a long enough secret").await;
    assert_eq!(st, 201, "{login_body}");
    assert_eq!(login_body["session"]["user"]["id"], body["id"]);
    let (st, _) = login(&w.s, "carol@acme.test", PASSWORD).await;
    assert_eq!(st, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_returns_its_link_once_and_the_user_cannot_sign_in_yet() {
    let w = world().await;
    let body = json!({"email": "dave@acme.test", "name": "Dave", "role": "user", "invite": true});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.admin_a, body).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["status"], "invited");
    let url = body["invite_url"].as_str().unwrap().to_string();
    let token = url.split("token=").nth(1).unwrap().to_string();
    assert_eq!(token.len(), 43, "{url}");

    // Shown once: neither the list nor a change gives it back.
    let (_, list) = w.s.get("/api/v1/admin/users?q=dave", &w.admin_a).await;
    assert_eq!(emails(&list), ["dave@acme.test"]);
    assert_eq!(list["items"][0]["status"], "invited");
    assert!(!list.to_string().contains(&token), "{list}");
    let path = format!("/api/v1/admin/users/{}", body["id"]);
    let (st, changed) = w.s.patch(&path, &w.admin_a, json!({"name": "David"})).await;
    assert_eq!(st, 200, "{changed}");
    assert_eq!(changed["name"], "David");
    assert!(changed.get("invite_url").is_none(), "{changed}");
    let (st, _) =
        w.s.patch(&path, &w.admin_a, json!({"status": "invited"}))
            .await;
    assert_eq!(st, 400);

    // Two invites get different links.
    let body = json!({"email": "erin@acme.test", "name": "Erin", "role": "user", "invite": true});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.admin_a, body).await;
    assert_eq!(st, 201, "{body}");
    assert_ne!(body["invite_url"].as_str().unwrap(), url);
    // Neither a password nor an invite: refused.
    let body = json!({"email": "fay@acme.test", "name": "Fay", "role": "user"});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.admin_a, body).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("password_required"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_email_in_another_case_is_a_conflict() {
    let w = world().await;
    let body =
        json!({"email": "ANN@Acme.TEST", "name": "Ann 2", "role": "user", "password": PASSWORD});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.admin_a, body).await;
    assert_error(st, &body, 409, "email_taken", "duplicate email");
    // Across accounts too: emails are unique in the install.
    let body = json!({"email": "Bob@beta.test", "name": "Bob 2", "role": "user",
        "password": PASSWORD, "account_id": w.acme});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.owner, body).await;
    assert_error(
        st,
        &body,
        409,
        "email_taken",
        "duplicate email from another account",
    );
    assert_eq!(
        w.s.sql_i64("SELECT count(*) FROM users WHERE email_lower = 'ann@acme.test'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_only_users_in_scope_and_below() {
    let w = world().await;
    let (st, body) =
        w.s.patch(
            &format!("/api/v1/admin/users/{}", w.user_b_id),
            &w.admin_a,
            json!({"status": "disabled"}),
        )
        .await;
    assert_error(st, &body, 404, "not_found", "admin changes a Beta user");
    let (st, body) =
        w.s.patch(
            "/api/v1/admin/users/987654",
            &w.admin_a,
            json!({"name": "X"}),
        )
        .await;
    assert_error(st, &body, 404, "not_found", "unknown user");
    let boss = format!("/api/v1/admin/users/{}", w.boss_a_id);
    let (st, body) =
        w.s.patch(&boss, &w.admin_a, json!({"status": "disabled"}))
            .await;
    // Out of rank is out of scope (SPEC §18): as if the owner did not exist.
    assert_error(st, &body, 404, "not_found", "admin disables an owner");
    let ann = format!("/api/v1/admin/users/{}", w.user_a_id);
    let (st, body) = w.s.patch(&ann, &w.admin_a, json!({"role": "owner"})).await;
    assert_error(st, &body, 403, "forbidden", "admin grants owner");
    assert_eq!(
        w.s.sql_i64("SELECT count(*) FROM users WHERE status = 'disabled' OR email = 'ann@acme.test' AND role != 'user'"),
        0
    );

    let (st, body) =
        w.s.patch(&ann, &w.admin_a, json!({"role": "admin", "name": "Ann A."}))
            .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["name"], "Ann A.");
    assert_eq!(body["status"], "active");
    let ann_token = w.s.token("ann@acme.test").await;
    let (st, list) = w.s.get("/api/v1/admin/users", &ann_token).await;
    assert_eq!(st, 200, "the new admin lists users: {list}");

    // The owner may change anyone, in any account.
    let bob = format!("/api/v1/admin/users/{}", w.user_b_id);
    let (st, body) = w.s.patch(&bob, &w.owner, json!({"role": "admin"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["role"], "admin");
    let (st, body) = w.s.patch(&boss, &w.owner, json!({"role": "admin"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["role"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_ends_sessions_at_once_and_blocks_sign_in() {
    let w = world().await;
    let ann_token = w.s.token("ann@acme.test").await;
    let ann_other = w.s.token("ann@acme.test").await;
    let (st, _) = w.s.get("/api/v1/me", &ann_token).await;
    assert_eq!(st, 200);

    let ann = format!("/api/v1/admin/users/{}", w.user_a_id);
    let (st, body) =
        w.s.patch(&ann, &w.admin_a, json!({"status": "disabled"}))
            .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], "disabled");

    for token in [&ann_token, &ann_other] {
        let (st, body) = w.s.get("/api/v1/me", token).await;
        assert_eq!(st, 401, "{body}");
        assert_eq!(body["error"], "session_ended", "{body}");
    }
    let ended = w.s.sql_i64(&format!(
        "SELECT count(*) FROM sessions WHERE user_id = {} AND end_reason = 'user_disabled' AND ended_at IS NOT NULL",
        w.user_a_id
    ));
    assert_eq!(ended, 2);
    let (st, body) = login(&w.s, "ann@acme.test", PASSWORD).await;
    assert_error(
        st,
        &body,
        401,
        "invalid_credentials",
        "disabled user signs in",
    );

    // The admin's own session is untouched; re-enabling lets Ann sign in again.
    let (st, _) = w.s.get("/api/v1/me", &w.admin_a).await;
    assert_eq!(st, 200);
    let (st, body) =
        w.s.patch(&ann, &w.admin_a, json!({"status": "active"}))
            .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], "active");
    let (st, body) = login(&w.s, "ann@acme.test", PASSWORD).await;
    assert_eq!(st, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_disables_themselves_or_changes_their_own_role() {
    let w = world().await;
    let me_admin = w.s.get("/api/v1/me", &w.admin_a).await.1;
    let path = format!("/api/v1/admin/users/{}", me_admin["user"]["id"]);
    let (st, body) =
        w.s.patch(&path, &w.admin_a, json!({"status": "disabled"}))
            .await;
    assert_error(st, &body, 409, "self_change", "admin disables themselves");
    let (st, body) = w.s.patch(&path, &w.admin_a, json!({"role": "user"})).await;
    assert_error(st, &body, 409, "self_change", "admin demotes themselves");

    let me_owner = w.s.get("/api/v1/me", &w.owner).await.1;
    let path_owner = format!("/api/v1/admin/users/{}", me_owner["user"]["id"]);
    let (st, body) =
        w.s.patch(&path_owner, &w.owner, json!({"role": "admin"}))
            .await;
    assert_error(st, &body, 409, "self_change", "owner demotes themselves");
    let (st, body) =
        w.s.patch(&path_owner, &w.owner, json!({"status": "disabled"}))
            .await;
    assert_error(st, &body, 409, "self_change", "owner disables themselves");

    let (st, _) = w.s.get("/api/v1/me", &w.admin_a).await;
    assert_eq!(st, 200, "the refused change must not end the session");
    // Renaming oneself is fine.
    let (st, body) = w.s.patch(&path, &w.admin_a, json!({"name": "Chief"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["name"], "Chief");
    assert_eq!(body["role"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_for_the_owner() {
    let w = world().await;
    let (st, body) = w.s.get("/api/v1/admin/accounts", &w.admin_a).await;
    assert_error(st, &body, 404, "not_found", "admin lists accounts");
    let (st, body) =
        w.s.post(
            "/api/v1/admin/accounts",
            &w.admin_a,
            json!({"name": "Gamma"}),
        )
        .await;
    assert_error(st, &body, 404, "not_found", "admin creates an account");

    let (st, body) = w.s.get("/api/v1/admin/accounts", &w.owner).await;
    assert_eq!(st, 200, "{body}");
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme", "Beta", "Ops"]);
    assert_eq!(body["items"][0]["id"], w.acme);
    assert!(body["items"][0]["created_at"].is_string(), "{body}");
    assert_eq!(body["next_cursor"], Value::Null);

    let (st, gamma) =
        w.s.post("/api/v1/admin/accounts", &w.owner, json!({"name": "Gamma"}))
            .await;
    assert_eq!(st, 201, "{gamma}");
    assert_eq!(gamma["name"], "Gamma");
    assert!(
        gamma["id"].as_i64().is_some() && gamma["created_at"].is_string(),
        "{gamma}"
    );
    let (st, body) =
        w.s.post("/api/v1/admin/accounts", &w.owner, json!({"name": "Gamma"}))
            .await;
    assert_error(st, &body, 409, "account_taken", "duplicate account");
    assert_eq!(
        w.s.sql_i64("SELECT count(*) FROM accounts WHERE name = 'Gamma'"),
        1
    );

    // The new account takes users.
    let new = json!({"email": "g@gamma.test", "name": "G", "role": "admin",
        "password": PASSWORD, "account_id": gamma["id"]});
    let (st, body) = w.s.post("/api/v1/admin/users", &w.owner, new).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["account"], json!({"id": gamma["id"], "name": "Gamma"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_answer_400_json() {
    let w = world().await;
    let ok = json!({"email": "z@acme.test", "name": "Z", "role": "user", "password": PASSWORD});
    let with = |key: &str, value: Value| {
        let mut b = ok.clone();
        b[key] = value;
        b
    };
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "invalid email",
            with("email", json!("not-an-email")),
            Some("invalid_email"),
        ),
        (
            "email with spaces",
            with("email", json!("a b@acme.test")),
            Some("invalid_email"),
        ),
        (
            "empty name",
            with("name", json!("  ")),
            Some("invalid_name"),
        ),
        (
            "long name",
            with("name", json!("n".repeat(200))),
            Some("invalid_name"),
        ),
        (
            "weak password",
            with("password", json!("short")),
            Some("weak_password"),
        ),
        ("unknown role", with("role", json!("god")), None),
        ("role as number", with("role", json!(3)), None),
        ("missing email", json!({"name": "Z", "role": "user"}), None),
        ("unknown field", with("admin", json!(true)), None),
        (
            "account_id as text",
            with("account_id", json!("Acme")),
            None,
        ),
        ("not an object", json!(["z@acme.test"]), None),
    ];
    for (what, body, code) in cases {
        let (st, resp) = w.s.post("/api/v1/admin/users", &w.admin_a, body).await;
        assert_eq!(st, 400, "{what}: {resp}");
        assert!(
            resp["error"].as_str().is_some_and(|e| !e.is_empty())
                && resp["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: not a JSON error: {resp}"
        );
        if let Some(code) = code {
            assert_eq!(resp["error"], code, "{what}: {resp}");
        }
    }
    assert_eq!(
        w.s.sql_i64("SELECT count(*) FROM users WHERE email_lower LIKE 'z@%'"),
        0
    );

    let raw = client()
        .post(w.s.url("/api/v1/admin/users"))
        .bearer_auth(&w.admin_a)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    let (st, resp) = status_json(raw).await;
    assert_eq!(st, 400, "truncated JSON: {resp}");
    assert!(
        resp["error"].is_string() && resp["message"].is_string(),
        "{resp}"
    );

    let ann = format!("/api/v1/admin/users/{}", w.user_a_id);
    for (what, body) in [
        ("unknown status", json!({"status": "banned"})),
        ("unknown role", json!({"role": "root"})),
        ("empty name", json!({"name": ""})),
        ("unknown field", json!({"roles": "admin"})),
    ] {
        let (st, resp) = w.s.patch(&ann, &w.admin_a, body).await;
        assert_eq!(st, 400, "PATCH {what}: {resp}");
        assert!(
            resp["error"].is_string() && resp["message"].is_string(),
            "{resp}"
        );
    }
    let (st, resp) =
        w.s.patch("/api/v1/admin/users/abc", &w.admin_a, json!({"name": "X"}))
            .await;
    assert_eq!(st, 400, "non-numeric id: {resp}");
    assert!(resp["error"].is_string(), "{resp}");
    assert_eq!(w.s.sql_i64("SELECT count(*) FROM users WHERE email = 'ann@acme.test' AND role = 'user' AND name = 'ann'"), 1);

    for (what, body) in [
        ("empty name", json!({"name": ""})),
        ("missing name", json!({})),
        ("control character", json!({"name": "a\u{7}b"})),
    ] {
        let (st, resp) = w.s.post("/api/v1/admin/accounts", &w.owner, body).await;
        assert_eq!(st, 400, "account {what}: {resp}");
        assert!(
            resp["error"].is_string() && resp["message"].is_string(),
            "{resp}"
        );
    }
    let (st, resp) =
        w.s.get("/api/v1/admin/users?account_id=abc", &w.owner)
            .await;
    assert_eq!(st, 400, "non-numeric account_id: {resp}");
    assert!(resp["error"].is_string(), "{resp}");
}
