//! Second factors through the API (SPEC §12): TOTP enrolment and sign-in with codes
//! computed here from the key the server showed, replay and clock skew, recovery codes,
//! the two-step flow, step-up, policy, the admin reset, and the emails.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::time::Duration;

use common::factors::{code, enrol, login_with_code, password_step, second_step, settle, stale};
use common::smtp::SmtpServer;
use common::*;
use doorman::config::{Application, Cidr};
use doorman::model::Role;
use serde_json::json;

#[tokio::test]
async fn totp_enrol_then_sign_in_in_two_steps_with_replay_and_skew() {
    let s = start().await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    let (id, key, codes) = enrol(&s, &token).await;
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.len() == 9 && &c[4..5] == "-"));

    let (status, list) = s.get("/api/v1/me/second-factors", &token).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["kind"], "totp");
    assert_eq!(list["items"][0]["active"], true);
    assert_eq!(list["recovery_codes_remaining"], 10);

    // The password alone no longer signs in: a challenge, and no session row yet.
    let sessions_before = s.sql_i64(&format!(
        "SELECT count(*) FROM sessions WHERE user_id = {}",
        ann.id
    ));
    let (status, first) = password_step(&s, "ann@acme.test").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["second_factor_required"], true);
    assert_eq!(first["methods"], json!(["totp", "recovery_code"]));
    assert!(first.get("token").is_none());
    let sessions_after = s.sql_i64(&format!(
        "SELECT count(*) FROM sessions WHERE user_id = {}",
        ann.id
    ));
    assert_eq!(
        sessions_before, sessions_after,
        "no session before the second step"
    );

    // The next step's code (a phone clock a little ahead) signs in.
    settle().await;
    let challenge = first["challenge"].as_str().unwrap();
    let next = code(&key, 1);
    let (status, done) = second_step(&s, challenge, &next).await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["session"]["auth_methods"], json!(["password", "totp"]));
    let t2 = done["token"].as_str().unwrap();
    assert!(alive(&s, t2).await);
    // The challenge is used up.
    let (status, _) = second_step(&s, challenge, &code(&key, 1)).await;
    assert_eq!(status, 401);

    // The same code again, in a new sign-in: refused as used. So is an older step.
    let (_, again) = password_step(&s, "ann@acme.test").await;
    let challenge = again["challenge"].as_str().unwrap();
    let (status, body) = second_step(&s, challenge, &next).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_code");
    let (status, _) = second_step(&s, challenge, &code(&key, 0)).await;
    assert_eq!(
        status, 401,
        "a step before the last accepted one is refused"
    );
    // Two steps away is outside the skew.
    let (status, _) = second_step(&s, challenge, &code(&key, 3)).await;
    assert_eq!(status, 401);

    // The listings show how each session was signed in.
    let (_, mine) = s.get("/api/v1/sessions", t2).await;
    let methods: Vec<String> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["auth_methods"].to_string())
        .collect();
    assert!(methods.contains(&r#"["password","totp"]"#.to_string()));
    assert!(methods.contains(&r#"["password"]"#.to_string()));

    // The data export lists the factor, never its key.
    let (status, export) = s.get("/api/v1/me/export", t2).await;
    assert_eq!(status, 200);
    assert_eq!(export["second_factors"][0]["kind"], "totp");
    assert_eq!(export["second_factors"][0]["name"], "Phone");
    let text = export.to_string();
    assert!(!text.contains("secret") && !text.contains("otpauth"));
    assert!(text.contains(r#""auth_methods":["password","totp"]"#));
}

#[tokio::test]
async fn wrong_codes_count_toward_the_sign_in_limits() {
    let s = start_with(|c| c.security.login_rate_limit.failures = 3).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    let (_, key, _) = enrol(&s, &token).await;
    let (_, first) = password_step(&s, "ann@acme.test").await;
    let challenge = first["challenge"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let (status, body) = second_step(&s, &challenge, "000000").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_code");
    }
    // Even the right code is refused now: the limit is the email's and the address's.
    let (status, body) = second_step(&s, &challenge, &code(&key, 0)).await;
    assert_eq!(status, 429, "{body}");
    let recorded = s.sql_i64("SELECT count(*) FROM login_records WHERE reason = 'wrong_code'");
    assert_eq!(recorded, 3);
    // An unknown or expired challenge is the same refusal as a wrong code.
    let (status, body) = second_step(&s, "not-a-challenge", "123456").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_code"))
    );
}

#[tokio::test]
async fn an_expired_challenge_is_refused() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    let (_, key, _) = enrol(&s, &token).await;
    let (_, first) = password_step(&s, "ann@acme.test").await;
    let expires = s.sql_i64("SELECT expires_at - created_at FROM login_challenges");
    assert_eq!(expires, 300, "five minutes");
    s.sql_exec("UPDATE login_challenges SET expires_at = created_at - 1");
    let (status, body) =
        second_step(&s, first["challenge"].as_str().unwrap(), &code(&key, 0)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_code"))
    );
}

#[tokio::test]
async fn recovery_codes_sign_in_once_and_are_emailed_about() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let s = start_with(move |c| c.mail.smtp_url = url).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    let (_, _, codes) = enrol(&s, &token).await;
    let added = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        added[0].contains("A second factor was added"),
        "{}",
        added[0]
    );

    let (_, first) = password_step(&s, "ann@acme.test").await;
    let upper = codes[0].to_uppercase();
    let (status, done) = second_step(&s, first["challenge"].as_str().unwrap(), &upper).await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(
        done["session"]["auth_methods"],
        json!(["password", "recovery_code"])
    );
    let (_, first) = password_step(&s, "ann@acme.test").await;
    let (status, _) = second_step(&s, first["challenge"].as_str().unwrap(), &codes[0]).await;
    assert_eq!(status, 401, "a recovery code works once");
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert!(mails.iter().any(|m| m.contains("A recovery code was used")));
    let (_, list) = s.get("/api/v1/me/second-factors", &token).await;
    assert_eq!(list["recovery_codes_remaining"], 9);

    // New codes replace the old ones.
    let (status, fresh) = s.post("/api/v1/me/recovery-codes", &token, json!({})).await;
    assert_eq!(status, 200, "{fresh}");
    let (_, first) = password_step(&s, "ann@acme.test").await;
    let (status, _) = second_step(&s, first["challenge"].as_str().unwrap(), &codes[1]).await;
    assert_eq!(status, 401, "old codes die on regeneration");
    let new_code = fresh["recovery_codes"][0].as_str().unwrap();
    login_with_code(&s, "ann@acme.test", new_code).await;
}

#[tokio::test]
async fn step_up_is_required_granted_and_expires_for_each_action() {
    let s = start().await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    s.user("Acme", "bob@acme.test", Role::User).await;
    login(&s, "bob@acme.test", FIREFOX_WIN).await;
    // The sign-in counts: a fresh session needs nothing more.
    let ada = s.token("ada@acme.test").await;
    let other = s.token("ada@acme.test").await;
    let (status, _) = s.delete("/api/v1/sessions", &ada).await;
    assert_eq!(status, 200, "the sign-in itself counts");
    assert!(!alive(&s, &other).await);

    // After the window: refused with step_up_required, everywhere it applies.
    let (_, key, _) = enrol(&s, &ada).await;
    stale(&s);
    let (status, body) = s.delete("/api/v1/sessions", &ada).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("step_up_required"))
    );
    let (status, body) = s.delete("/api/v1/admin/sessions?q=bob", &ada).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("step_up_required"))
    );
    let (status, body) = s
        .post(
            "/api/v1/me/second-factors/totp",
            &ada,
            json!({"name": "Tablet"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("step_up_required"))
    );
    let (status, body) = s.post("/api/v1/me/recovery-codes", &ada, json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("step_up_required"))
    );
    let (_, list) = s.get("/api/v1/me/second-factors", &ada).await;
    let id = list["items"][0]["id"].as_i64().unwrap();
    let (status, body) = s
        .delete(&format!("/api/v1/me/second-factors/{id}"), &ada)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("step_up_required"))
    );

    // `current_password` in the request counts.
    let (status, _) = s
        .post(
            "/api/v1/me/recovery-codes",
            &ada,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200);
    stale(&s);
    let (status, _) = s
        .post(
            "/api/v1/me/second-factors/totp",
            &ada,
            json!({"current_password": "wrong password!"}),
        )
        .await;
    assert_eq!(status, 400, "a wrong password is refused");

    // POST /me/step-up with a wrong code, then the password: granted.
    let (status, body) = s
        .post("/api/v1/me/step-up", &ada, json!({"code": "000000"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_code"))
    );
    let (status, _) = s
        .post("/api/v1/me/step-up", &ada, json!({"password": PASSWORD}))
        .await;
    assert_eq!(status, 204);
    let (status, body) = s.delete("/api/v1/admin/sessions?q=bob", &ada).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended"], 1);

    // A code works as proof too; then the factor can be removed.
    stale(&s);
    settle().await;
    let (status, _) = s
        .post("/api/v1/me/step-up", &ada, json!({"code": code(&key, 0)}))
        .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .delete(&format!("/api/v1/me/second-factors/{id}"), &ada)
        .await;
    assert_eq!(status, 204);
    let (_, list) = s.get("/api/v1/me/second-factors", &ada).await;
    assert_eq!(list["items"], json!([]));
    assert_eq!(list["recovery_codes_remaining"], 0);
}

#[tokio::test]
async fn a_step_up_expires_after_the_window() {
    let s = start_with(|c| c.security.step_up_window = Duration::from_secs(2)).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ann = s.token("ann@acme.test").await;
    // Time is the subject: the step-up window passes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = s.delete("/api/v1/sessions", &ann).await;
    assert_eq!(status, 403);
    let (status, _) = s
        .post("/api/v1/me/step-up", &ann, json!({"password": PASSWORD}))
        .await;
    assert_eq!(status, 204);
    let (status, _) = s.delete("/api/v1/sessions", &ann).await;
    assert_eq!(status, 200);
    // Time is the subject: the step-up window passes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = s.delete("/api/v1/sessions", &ann).await;
    assert_eq!(status, 403, "expired again after the window");
}

#[tokio::test]
async fn policy_forces_enrolment_at_the_api_login() {
    let s = start_with(|c| c.security.require_second_factor = true).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let (status, body) = password_step(&s, "ann@acme.test").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "second_factor_enrolment_required");
    assert_eq!(s.sql_i64("SELECT count(*) FROM sessions"), 0);
}

#[tokio::test]
async fn an_admin_requires_a_factor_for_the_account_and_resets_one() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let s = start_with(move |c| c.mail.smtp_url = url).await;
    let ada = s.user("Acme", "ada@acme.test", Role::Admin).await;
    let bob = s.user("Acme", "bob@acme.test", Role::User).await;
    s.user("Hooli", "hal@hooli.test", Role::User).await;
    // The admin has a factor and signs in with it: the policy she sets holds sessions
    // signed in without one (SPEC §19), hers included.
    let first = s.token("ada@acme.test").await;
    let (_, ada_key, _) = enrol(&s, &first).await;
    let admin = login_with_code(&s, "ada@acme.test", &code(&ada_key, 0)).await;

    // The account's policy: Bob must enrol, Hooli's Hal need not.
    let (status, _) = s
        .post(
            &format!(
                "/api/v1/admin/accounts/{}/second-factor-policy",
                ada.account_id
            ),
            &admin,
            json!({"required": true}),
        )
        .await;
    assert_eq!(status, 405, "PUT, not POST");
    let resp = client()
        .put(s.url(&format!(
            "/api/v1/admin/accounts/{}/second-factor-policy",
            ada.account_id
        )))
        .bearer_auth(&admin)
        .json(&json!({"required": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, body) = password_step(&s, "bob@acme.test").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("second_factor_enrolment_required"))
    );
    let (status, _) = password_step(&s, "hal@hooli.test").await;
    assert_eq!(status, 201);

    // Bob's existing session enrols; then the admin resets his factors.
    s.sql_exec("UPDATE accounts SET require_second_factor = 0");
    let bob_token = s.token("bob@acme.test").await;
    s.sql_exec("UPDATE accounts SET require_second_factor = 1");
    enrol(&s, &bob_token).await;
    // Ada's "factor added" and new-device mails, and Bob's "factor added".
    let before = smtp.wait_for(3, Duration::from_secs(10)).await.len();
    // A plain user cannot reset anyone.
    let (status, _) = s
        .delete(
            &format!("/api/v1/admin/users/{}/second-factors", ada.id),
            &bob_token,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = s
        .delete(
            &format!("/api/v1/admin/users/{}/second-factors", bob.id),
            &admin,
        )
        .await;
    assert_eq!(status, 204);
    assert!(!alive(&s, &bob_token).await, "his sessions ended");
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM second_factors WHERE user_id = {}",
            bob.id
        )),
        0
    );
    let mails = smtp.wait_for(before + 1, Duration::from_secs(10)).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("second factors were reset")),
        "{mails:?}"
    );
    // The policy still holds: he must enrol again.
    let (status, _) = password_step(&s, "bob@acme.test").await;
    assert_eq!(status, 403);
    // Out of scope: another account's user.
    let (status, _) = s
        .delete("/api/v1/admin/users/3/second-factors", &admin)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_application_that_requires_a_second_factor_reads_the_session() {
    let s = start_with(|c| {
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        c.applications = vec![Application {
            name: "Vault".into(),
            url: "https://vault.example.com".into(),
            require_second_factor: true,
            ..Default::default()
        }];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let password_only = s.token("ann@acme.test").await;
    let (_, key, _) = enrol(&s, &password_only).await;
    let with_code = login_with_code(&s, "ann@acme.test", &code(&key, 0)).await;
    let ask = |token: String| {
        let url = s.url("/auth/verify");
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .header("x-original-url", "https://vault.example.com/secrets")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(ask(password_only).await, 403);
    assert_eq!(ask(with_code).await, 200);
}

#[tokio::test]
async fn removing_the_last_factor_is_refused_while_one_is_required() {
    let s = start().await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    let (id, _, _) = enrol(&s, &token).await;
    s.sql_exec(&format!(
        "UPDATE users SET require_second_factor = 1 WHERE id = {}",
        ann.id
    ));
    let (status, body) = s
        .delete(&format!("/api/v1/me/second-factors/{id}"), &token)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("second_factor_required"))
    );
    let (status, _) = s
        .patch(
            &format!("/api/v1/me/second-factors/{id}"),
            &token,
            json!({"name": "Old phone"}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, list) = s.get("/api/v1/me/second-factors", &token).await;
    assert_eq!(list["items"][0]["name"], "Old phone");
}

#[tokio::test]
async fn enrolments_never_finished_cannot_pile_up() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let token = s.token("ann@acme.test").await;
    for _ in 0..25 {
        let (status, body) = s
            .post("/api/v1/me/second-factors/totp", &token, json!({}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let kept = s.sql_i64("SELECT count(*) FROM second_factors");
    assert!(kept <= 20, "{kept} factors kept");
    // The name defaults, and a bad one is refused.
    let (status, body) = s
        .post(
            "/api/v1/me/second-factors/totp",
            &token,
            json!({"name": "tab\tname"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_name"))
    );
}

#[tokio::test]
async fn erasing_a_user_removes_their_factors_and_recovery_codes() {
    let s = start().await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let bob = s.user("Acme", "bob@acme.test", Role::User).await;
    let admin = s.token("ada@acme.test").await;
    let bob_token = s.token("bob@acme.test").await;
    enrol(&s, &bob_token).await;
    // A sign-in waiting for its second step holds a challenge of his too.
    let (status, _) = password_step(&s, "bob@acme.test").await;
    assert_eq!(status, 200);
    let (status, body) = s
        .delete(&format!("/api/v1/admin/users/{}", bob.id), &admin)
        .await;
    assert_eq!(status, 204, "{body}");
    for table in ["second_factors", "recovery_codes", "login_challenges"] {
        assert_eq!(
            s.sql_i64(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
}
