#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The OpenID authorization's pages and refusals (SPEC §20): unknown clients and
//! redirect URIs, signing in and back, access rules, "Confirm it's you" for
//! `prompt=login` and a required second factor, consent, end_session, and a bad client
//! configuration refusing start-up.

mod common;

use common::oidc::*;
use common::*;
use doorman::model::Role;
use serde_json::json;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn unknown_clients_and_redirects_are_shown_not_redirected() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "cy@acme.test", Role::User).await;
    let sess = login(s, "cy@acme.test", CHROME_MAC).await;
    let b = with_cookie(&sess.token);
    for (client_id, redirect, words) in [
        ("nobody", GRAFANA_CB, "not registered"),
        (
            "grafana",
            "https://evil.example.test/cb",
            "not one registered",
        ),
        (
            "grafana",
            "https://grafana.example.test/login/generic_oauth/x",
            "not one registered",
        ),
    ] {
        let page = read(
            b.get(authorize_url(s, client_id, redirect, &[]))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(page.status, 400, "{client_id} {redirect}");
        assert!(
            page.location.is_empty(),
            "never redirected: {}",
            page.location
        );
        assert!(page.body.contains(words), "{}", page.body);
    }
    let page = read(
        b.get(format!(
            "{}&client_id=grafana",
            authorize_url(s, "grafana", GRAFANA_CB, &[])
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(page.status, 400, "a repeated parameter is malformed");
    // Problems after the client and redirect are known go back to the client.
    for (extra, error) in [
        (
            vec![
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("max_age", "soon")], "invalid_request"),
    ] {
        let page = read(
            b.get(authorize_url(s, "grafana", GRAFANA_CB, &extra))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(page.status, 303, "{extra:?}: {}", page.body);
        let q = query_of(&page.location);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st-1");
        assert!(q.contains_key("iss"));
    }
    // A public client must use PKCE.
    let page = read(
        b.get(authorize_url(s, "wiki", WIKI_CB, &[]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(query_of(&page.location)["error"], "invalid_request");
}

#[tokio::test]
async fn not_signed_in_goes_to_sign_in_and_back_or_login_required() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "dee@acme.test", Role::User).await;
    let b = browser();
    let url = authorize_url(s, "grafana", GRAFANA_CB, &[("prompt", "none")]);
    let page = read(b.get(&url).send().await.unwrap()).await;
    assert_eq!(page.status, 303);
    assert_eq!(query_of(&page.location)["error"], "login_required");

    let url = authorize_url(s, "grafana", GRAFANA_CB, &[]);
    let page = read(b.get(&url).send().await.unwrap()).await;
    assert_eq!(page.status, 303);
    assert!(page.location.starts_with("/login?rd="), "{}", page.location);
    let form = b
        .get(s.url(&page.location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rd = form_value(&form, "rd").unwrap().replace("&amp;", "&");
    let csrf = form_value(&form, "csrf").unwrap();
    let signed = post_form(
        &b,
        s,
        "/login",
        &[
            ("email", "dee@acme.test"),
            ("password", PASSWORD),
            ("csrf", &csrf),
            ("rd", &rd),
        ],
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert!(
        signed.location.starts_with("/oidc/authorize?"),
        "{}",
        signed.location
    );
    let back = read(b.get(s.url(&signed.location)).send().await.unwrap()).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert!(
        query_of(&back.location).contains_key("code"),
        "{}",
        back.location
    );
}

#[tokio::test]
async fn access_rules_apply_at_authorization() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "eve@acme.test", Role::User).await;
    s.user("Acme", "boss@acme.test", Role::Admin).await;
    let eve = login(s, "eve@acme.test", CHROME_MAC).await;
    let b = with_cookie(&eve.token);
    let page = read(
        b.get(authorize_url(s, "admin", GRAFANA_CB, &[]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location, "/denied?app=Admin");
    let denied = read(b.get(s.url(&page.location)).send().await.unwrap()).await;
    assert_eq!(denied.status, 403);
    assert!(denied.body.contains("Admin"));
    let page = read(
        b.get(authorize_url(s, "admin", GRAFANA_CB, &[("prompt", "none")]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(query_of(&page.location)["error"], "access_denied");
    let boss = login(s, "boss@acme.test", CHROME_MAC).await;
    code_for(s, &boss.token, "admin", GRAFANA_CB).await;
}

#[tokio::test]
async fn end_session_asks_then_signs_out_and_returns() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "jo@acme.test", Role::User).await;
    let sess = login(s, "jo@acme.test", CHROME_MAC).await;
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (_, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    let b = with_cookie(&sess.token);
    let mut url = url::Url::parse(&s.url("/oidc/end_session")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", t["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", "https://evil.example.test/")
        .append_pair("state", "bye");
    let page = read(b.get(url.as_str()).send().await.unwrap()).await;
    assert_eq!(page.status, 400, "an unregistered address is not followed");
    assert!(page.location.is_empty());
    url.query_pairs_mut()
        .clear()
        .append_pair("id_token_hint", t["id_token"].as_str().unwrap())
        .append_pair(
            "post_logout_redirect_uri",
            "https://grafana.example.test/signed-out",
        )
        .append_pair("state", "bye");
    let page = read(b.get(url.as_str()).send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out of Doorman and every app?"));
    assert!(alive(s, &sess.token).await, "asking ends nothing");
    let csrf = form_value(&page.body, "csrf").unwrap();
    let form: Vec<(String, String)> = [
        "id_token_hint",
        "post_logout_redirect_uri",
        "state",
        "confirm",
    ]
    .iter()
    .map(|k| (k.to_string(), form_value(&page.body, k).unwrap()))
    .chain([("csrf".to_string(), csrf)])
    .collect();
    let done = read(
        b.post(s.url("/oidc/end_session"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location,
        "https://grafana.example.test/signed-out?state=bye"
    );
    assert!(!alive(s, &sess.token).await);
    assert_eq!(
        userinfo(s, t["access_token"].as_str().unwrap()).await.0,
        401
    );
}

#[tokio::test]
async fn prompt_login_and_a_required_second_factor_ask_to_confirm() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "kim@acme.test", Role::User).await;
    let sess = login(s, "kim@acme.test", CHROME_MAC).await;
    let b = with_cookie(&sess.token);
    // prompt=login: "Confirm it's you" with the password, then the code.
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let mut extra = pkce.to_vec();
    extra.push(("prompt", "login"));
    let page = read(
        b.get(authorize_url(s, "grafana", GRAFANA_CB, &extra))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.location);
    assert!(page.body.contains("Confirm it's you"));
    let mut form = hidden_fields(&page.body);
    form.push(("step_up_password".into(), "wrong password!".into()));
    let wrong = read(
        b.post(s.url("/oidc/authorize/confirm"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body.contains("not right"));
    form.pop();
    form.push(("step_up_password".into(), PASSWORD.into()));
    let done = read(
        b.post(s.url("/oidc/authorize/confirm"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(query_of(&done.location).contains_key("code"));
    // prompt=none with a max_age the sign-in is older than.
    s.sql_exec("UPDATE sessions SET verified_at = verified_at - 600");
    let mut extra = pkce.to_vec();
    extra.extend([("prompt", "none"), ("max_age", "60")]);
    let page = read(
        b.get(authorize_url(s, "grafana", GRAFANA_CB, &extra))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(query_of(&page.location)["error"], "login_required");

    // Vault requires a second factor the session did not use.
    let page = read(
        b.get(authorize_url(s, "vault", GRAFANA_CB, &[("prompt", "none")]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(query_of(&page.location)["error"], "interaction_required");
    let fresh = login(s, "kim@acme.test", CHROME_MAC).await;
    let (_, key, _) = common::factors::enrol(s, &fresh.token).await;
    let page = read(
        b.get(authorize_url(s, "vault", GRAFANA_CB, &pkce))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("asks for a second factor"),
        "{}",
        page.body
    );
    let mut form = hidden_fields(&page.body);
    form.push(("step_up_code".into(), common::factors::code(&key, 0)));
    let done = read(
        b.post(s.url("/oidc/authorize/confirm"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let code = query_of(&done.location)["code"].clone();
    let (status, t) = exchange(&o, "vault", &code, GRAFANA_CB).await;
    assert_eq!(status, 200, "{t}");
    let claims = verified_claims(s, t["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn consent_is_asked_once() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "lu@acme.test", Role::User).await;
    let sess = login(s, "lu@acme.test", CHROME_MAC).await;
    let b = with_cookie(&sess.token);
    let page = read(
        b.get(authorize_url(s, "notes", GRAFANA_CB, &[]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Notes wants to sign you in"),
        "{}",
        page.body
    );
    assert!(page.body.contains("your name, your email address"));
    let mut form = hidden_fields(&page.body);
    form.push(("answer".into(), "allow".into()));
    let done = read(
        b.post(s.url("/oidc/authorize/consent"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(query_of(&done.location).contains_key("code"));
    let again = read(
        b.get(authorize_url(s, "notes", GRAFANA_CB, &[]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, 303, "asked once");
    let page = read(
        b.get(authorize_url(
            s,
            "notes",
            GRAFANA_CB,
            &[("prompt", "consent")],
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    let mut form = hidden_fields(&page.body);
    form.push(("answer".into(), "deny".into()));
    let done = read(
        b.post(s.url("/oidc/authorize/consent"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(query_of(&done.location)["error"], "access_denied");
}

#[tokio::test]
async fn a_bad_client_configuration_refuses_start_up_naming_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("doorman.toml");
    std::fs::write(
        &config,
        r#"
[[applications]]
name = "Grafana"
url = "https://grafana.example.test"
[applications.oidc]
client_id = "grafana"
client_secret = "hunter2hunter2"
redirect_uris = ["http://grafana.example.test/cb"]

[[applications]]
name = "Other"
url = "https://other.example.test"
[applications.oidc]
client_id = "grafana"
client_secret_hash = "sha256:abc"
redirect_uris = []
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("DOORMAN_STORAGE__PATH", dir.path().join("db.sqlite3"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "applications[0].oidc.client_secret:",
        "applications[0].oidc.redirect_uris: `http://grafana.example.test/cb`",
        "applications[1].oidc.client_id: `grafana` is used twice",
        "applications[1].oidc.client_secret_hash:",
        "applications[1].oidc.redirect_uris: give at least one",
    ] {
        assert!(err.contains(key), "{key} in: {err}");
    }
    assert!(
        !err.contains("hunter2"),
        "the secret is not repeated: {err}"
    );
    assert!(
        !dir.path().join("db.sqlite3").exists(),
        "nothing was started"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["oidc", "secret"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let secret = text.lines().next().unwrap().rsplit(' ').next().unwrap();
    let hex: String = Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        text.contains(&format!("client_secret_hash = \"sha256:{hex}\"")),
        "{text}"
    );
    assert!(secret.len() >= 43);
}
