#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The door holds (SPEC §19), against the real server: an admin cannot mint an address
//! that passes another team's `allow_emails`; only proven addresses match there.
mod common;

use common::*;
use doorman::config::{Application, Cidr};
use doorman::model::Role;
use serde_json::{Value, json};

fn wiki() -> Application {
    Application {
        name: "Wiki".into(),
        url: "https://wiki.example.com".into(),
        allow_emails: vec!["*@acme.test".into()],
        ..Default::default()
    }
}

async fn server() -> TestServer {
    start_with(|c| {
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        c.applications = vec![wiki()];
    })
    .await
}

/// What `/auth/verify` answers for `token` asking about the Wiki.
async fn wiki_status(s: &TestServer, token: &str) -> u16 {
    client()
        .get(s.url("/auth/verify"))
        .bearer_auth(token)
        .header("x-original-url", "https://wiki.example.com/page")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn create(s: &TestServer, by: &str, email: &str, account: Option<i64>) -> (u16, Value) {
    let mut body = json!({
        "email": email, "name": "Mallory", "role": "user", "password": PASSWORD
    });
    if let Some(a) = account {
        body["account_id"] = json!(a);
    }
    s.post("/api/v1/admin/users", by, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_mint_an_address_outside_their_accounts_domains() {
    let s = server().await;
    s.user("Acme", "owner@acme.test", Role::Owner).await;
    let hooli = s.user("Hooli", "gavin@hooli.test", Role::Admin).await;
    let owner = s.token("owner@acme.test").await;
    let gavin = s.token("gavin@hooli.test").await;

    // The owner limits Hooli to its own domain (API).
    let (status, account) = s
        .patch(
            &format!("/api/v1/admin/accounts/{}", hooli.account_id.0),
            &owner,
            json!({"email_domains": ["Hooli.test", "@hooli.test"]}),
        )
        .await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["email_domains"], json!(["hooli.test"]));
    assert_eq!(account["name"], "Hooli", "the name stays");

    // Hooli's admin can no longer create or invite an @acme.test address.
    let (status, body) = create(&s, &gavin, "mallory@acme.test", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "email_domain_not_allowed");
    let (status, body) = s
        .post(
            "/api/v1/admin/users",
            &gavin,
            json!({"email": "mallory@acme.test", "name": "M", "role": "user", "invite": true}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM users WHERE email_lower LIKE 'mallory%'"),
        0,
        "nothing half-written"
    );
    // Their own domain is fine; the owner is not limited.
    let (status, _) = create(&s, &gavin, "dinesh@hooli.test", None).await;
    assert_eq!(status, 201);
    let (status, _) = create(&s, &owner, "erlich@acme.test", Some(hooli.account_id.0)).await;
    assert_eq!(status, 201);

    // Bad domains are refused with a clear error.
    let (status, body) = s
        .patch(
            &format!("/api/v1/admin/accounts/{}", hooli.account_id.0),
            &owner,
            json!({"email_domains": ["not a domain"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_email_domain");
    // Account names cannot carry a comma (it would forge a group in Remote-Groups).
    let (status, body) = s
        .post(
            "/api/v1/admin/accounts",
            &owner,
            json!({"name": "Acme,admin", "email_domains": []}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = s
        .post(
            "/api/v1/admin/accounts",
            &owner,
            json!({"name": "  Initech  ", "email_domains": ["initech.test"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "Initech", "trimmed");
    assert_eq!(body["email_domains"], json!(["initech.test"]));

    // The command line sets them too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args([
            "account",
            "domains",
            "--account",
            "Hooli",
            "hooli.test",
            "piedpiper.test",
        ])
        .envs(process::base_env(&s.db_path))
        .env_remove("DOORMAN_SERVER__LISTEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hooli.test, piedpiper.test"));
    let (_, accounts) = s.get("/api/v1/admin/accounts", &owner).await;
    let hooli_now = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Hooli")
        .unwrap()
        .clone();
    assert_eq!(
        hooli_now["email_domains"],
        json!(["hooli.test", "piedpiper.test"])
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["account", "domains", "--account", "Nope"])
        .envs(process::base_env(&s.db_path))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account named Nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_an_admin_typed_matches_no_allow_emails_until_proven() {
    let s = server().await;
    s.user("Acme", "owner@acme.test", Role::Owner).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Hooli", "gavin@hooli.test", Role::Admin).await;
    let owner = s.token("owner@acme.test").await;
    let gavin = s.token("gavin@hooli.test").await;

    // Hooli names no domains, so its admin may type any address…
    let (status, mallory) = create(&s, &gavin, "mallory@acme.test", None).await;
    assert_eq!(status, 201, "{mallory}");
    assert_eq!(mallory["email_verified"], false);
    let token = s.token("mallory@acme.test").await;
    // …but it proves nothing: the Wiki's `*@acme.test` does not let it in.
    assert_eq!(wiki_status(&s, &token).await, 403);
    // A person the operator added is taken as proven.
    let ann = s.token("ann@acme.test").await;
    assert_eq!(wiki_status(&s, &ann).await, 200);

    // Only the owner can vouch for it.
    let id = mallory["id"].as_i64().unwrap();
    let (status, _) = s
        .patch(
            &format!("/api/v1/admin/users/{id}"),
            &gavin,
            json!({"email_verified": true}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(wiki_status(&s, &token).await, 403);
    let (status, body) = s
        .patch(
            &format!("/api/v1/admin/users/{id}"),
            &owner,
            json!({"email_verified": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email_verified"], true);
    assert_eq!(
        wiki_status(&s, &token).await,
        200,
        "checked on the next request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_proves_the_address_only_where_the_account_limits_its_domains() {
    let s = server().await;
    s.user("Acme", "owner@acme.test", Role::Owner).await;
    let ada = s.user("Acme", "ada@acme.test", Role::Admin).await;
    let owner = s.token("owner@acme.test").await;
    let admin = s.token("ada@acme.test").await;
    let invite_and_accept = |email: &'static str| {
        let (s, admin) = (&s, admin.clone());
        async move {
            let (status, body) = s
                .post(
                    "/api/v1/admin/users",
                    &admin,
                    json!({"email": email, "name": "New", "role": "user", "invite": true}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            let url = body["invite_url"].as_str().unwrap();
            let token = url.split("token=").nth(1).unwrap();
            let b = browser();
            let page = read(
                b.get(s.url(&format!("/invite?token={token}")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            let csrf = form_value(&page.body, "csrf").unwrap();
            let answer = post_form(
                &b,
                s,
                "/invite",
                &[
                    ("csrf", &csrf),
                    ("token", token),
                    ("name", "New Person"),
                    ("password", PASSWORD),
                ],
            )
            .await;
            assert!(answer.status < 400, "{}", answer.body);
            body["id"].as_i64().unwrap()
        }
    };
    // Acme names no domains: the admin saw the link, so accepting proves nothing.
    let first = invite_and_accept("nora@acme.test").await;
    let verified =
        |id: i64| s.sql_i64(&format!("SELECT email_verified FROM users WHERE id = {id}"));
    assert_eq!(verified(first), 0);
    // Once the owner limits Acme to acme.test, an invitation there proves it.
    let (status, _) = s
        .patch(
            &format!("/api/v1/admin/accounts/{}", ada.account_id.0),
            &owner,
            json!({"email_domains": ["acme.test"]}),
        )
        .await;
    assert_eq!(status, 200);
    let second = invite_and_accept("omar@acme.test").await;
    assert_eq!(verified(second), 1);
    let omar = s.token("omar@acme.test").await;
    assert_eq!(wiki_status(&s, &omar).await, 200);
}

/// `PUT` an account's second-factor policy; the status.
async fn set_policy(s: &TestServer, token: &str, account: i64, required: bool) -> u16 {
    client()
        .put(s.url(&format!(
            "/api/v1/admin/accounts/{account}/second-factor-policy"
        )))
        .bearer_auth(token)
        .json(&json!({ "required": required }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_second_factor_policy_holds_live_sessions_at_enrolment() {
    let s = server().await;
    let ada = s.user("Acme", "ada@acme.test", Role::Admin).await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Ops", "root@ops.test", Role::Owner).await;
    let root = s.token("root@ops.test").await;
    let admin = s.token("ada@acme.test").await;
    let token = s.token("ann@acme.test").await;
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    let verify = |t: String| {
        let req = client().get(s.url("/auth/verify")).bearer_auth(t);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(verify(token.clone()).await, 200);

    // The admin requires a second factor of everyone in Acme.
    assert_eq!(set_policy(&s, &admin, ada.account_id.0, true).await, 204);
    let changed = format!(
        "SELECT count(*) FROM events WHERE type = 'policy.changed' AND actor_id = {} \
         AND account_id = {} AND details LIKE '%\"on\":true%'",
        ada.id.0, ada.account_id.0
    );
    assert_eq!(
        s.sql_i64(&changed),
        1,
        "the change is an event naming who made it"
    );

    // Ann's live sessions, signed in with a password only, are held at enrolment.
    let (status, body) = s.get("/api/v1/me", &token).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "second_factor_enrolment_required");
    let (status, _) = s.get("/api/v1/sessions", &token).await;
    assert_eq!(status, 403);
    assert_eq!(
        verify(token.clone()).await,
        401,
        "a proxy sends them to sign in"
    );
    let page = b
        .get(s.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    let to = page.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/settings/security/second-factors"), "{to}");
    let page = b.get(s.url(&to)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("A second factor is now required")
    );
    // The admin is in Acme too, signed in with a password only: held as well.
    let (status, _) = s.get("/api/v1/me", &admin).await;
    assert_eq!(status, 403);

    // Adding a factor from the held session lets it through, carrying the new method.
    let (status, _) = s.get("/api/v1/me/second-factors", &token).await;
    assert_eq!(status, 200);
    common::factors::enrol(&s, &token).await;
    let (status, me) = s.get("/api/v1/me", &token).await;
    assert_eq!(status, 200, "{me}");
    let methods = me["session"]["auth_methods"].as_array().unwrap().clone();
    assert!(methods.contains(&json!("totp")), "{methods:?}");
    assert_eq!(verify(token.clone()).await, 200);
    // Her browser session is still held: it signed in without one.
    let page = b
        .get(s.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);

    // Turning the policy off (the owner, of another account) lets password-only
    // sessions through again.
    assert_eq!(set_policy(&s, &root, ann.account_id.0, false).await, 204);
    let page = b
        .get(s.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM events WHERE type = 'policy.changed'"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_ends_a_session_whose_id_starts_with_a_hyphen() {
    // Public ids are URL-safe base64: about one in 64 starts with `-`.
    let s = server().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    s.sql_exec("UPDATE sessions SET public_id = '-yAbcHyphenFirst'");
    let end = |id: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["sessions", "end", id])
            .envs(process::base_env(&s.db_path))
            .output()
            .unwrap()
    };
    let out = end("-nothing-like-it");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no active session with id -nothing-like-it"),
        "{out:?}"
    );
    let out = end("-yAbcHyphenFirst");
    assert!(out.status.success(), "{out:?}");
    assert!(!alive(&s, &token).await, "ended");
}
