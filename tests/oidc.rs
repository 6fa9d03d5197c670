#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Doorman as an OpenID Provider (SPEC §20), through the real server: discovery, JWKS,
//! the code exchange (PKCE, both client authentication methods), id tokens verified
//! against `/oidc/jwks` with the JOSE library, userinfo, refresh rotation and reuse,
//! ending the session, revocation, code reuse, key rotation. The pages of the
//! authorization are in `oidc_pages.rs`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::oidc::*;
use common::*;
use doorman::model::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn discovery_and_jwks_describe_the_provider() {
    let o = op().await;
    let s = &o.s;
    let (status, d) = status_json(
        client()
            .get(s.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let iss = s.base.trim_end_matches('/');
    assert_eq!(d["issuer"], iss);
    assert_eq!(d["authorization_endpoint"], format!("{iss}/oidc/authorize"));
    assert_eq!(d["token_endpoint"], format!("{iss}/oidc/token"));
    assert_eq!(d["jwks_uri"], format!("{iss}/oidc/jwks"));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    let (status, jwks) = status_json(client().get(s.url("/oidc/jwks")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let keys = jwks["keys"].as_array().unwrap();
    assert!(
        keys.iter().any(|k| k["kty"] == "EC" && k["alg"] == "ES256"),
        "{jwks}"
    );
    assert!(
        keys.iter().any(|k| k["kty"] == "RSA"),
        "a client asks for RS256: {jwks}"
    );
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "no private parts"
    );
    let stored = s.sql_i64("SELECT count(*) FROM oidc_keys");
    assert_eq!(
        stored, 2,
        "keys are created at first start and kept in the database"
    );
}

#[tokio::test]
async fn code_flow_gives_verified_tokens_and_the_session_lists_the_app() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let sess = login(s, "ann@acme.test", CHROME_MAC).await;
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (status, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 600);
    assert!(
        t["refresh_token"].is_string(),
        "a confidential client gets one"
    );
    let claims = verified_claims(s, t["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["iss"], s.base.trim_end_matches('/'));
    assert_eq!(claims["aud"], "grafana");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(
        claims["sid"], sess.id,
        "sid is the Doorman session's public id"
    );
    assert_eq!(claims["email"], "ann@acme.test");
    assert_eq!(claims["groups"], json!(["user", "Acme"]));
    assert_eq!(claims["amr"], json!(["pwd"]));
    let sub = claims["sub"].as_str().unwrap();
    assert!(!sub.contains('@') && sub.len() >= 20, "opaque sub: {sub}");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    assert!(claims["auth_time"].is_i64());

    let (status, info) = userinfo(s, t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], sub, "the same sub in userinfo");
    assert_eq!(info["email"], "ann@acme.test");
    assert!(info["email_verified"].is_boolean());

    // The same person through another client: the same sub.
    let code = code_for(s, &sess.token, "wiki", WIKI_CB).await;
    let (status, w) = token_request(
        s,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WIKI_CB),
            ("code_verifier", VERIFIER),
            ("client_id", "wiki"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{w}");
    assert!(
        w.get("refresh_token").is_none(),
        "a public client without offline_access"
    );
    let wc = verified_claims(s, w["id_token"].as_str().unwrap()).await;
    assert_eq!(wc["sub"], sub);
    assert_eq!(wc["aud"], "wiki");

    // The Session JSON and My Sessions show the apps.
    let (status, list) = s.get("/api/v1/sessions", &sess.token).await;
    assert_eq!(status, 200, "{list}");
    let me = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == sess.id)
        .cloned()
        .unwrap();
    let names: Vec<&str> = me["signed_in_to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Grafana") && names.contains(&"Wiki"),
        "{me}"
    );
    // `/api/v1/me` reads the session in the check's own lookup: it shows the same.
    let (status, whoami) = s.get("/api/v1/me", &sess.token).await;
    assert_eq!(status, 200, "{whoami}");
    assert_eq!(whoami["session"], me, "/api/v1/me and My Sessions agree");
    let page = read(
        with_cookie(&sess.token)
            .get(s.url("/settings/security/sessions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(page.body.contains("Signed in to "), "{}", page.body);
    assert!(page.body.contains("Grafana"));
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM events WHERE type = 'app.signed_in'"),
        2
    );
    let metrics = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("doorman_oidc_authorizations_total{outcome=\"code\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "doorman_oidc_token_requests_total{grant_type=\"authorization_code\",outcome=\"issued\"} 2"
    ));
}

#[tokio::test]
async fn client_secret_post_works_and_a_wrong_secret_is_refused() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "bob@acme.test", Role::User).await;
    let sess = login(s, "bob@acme.test", CHROME_MAC).await;
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (status, body) = token_request(
        s,
        Some(("grafana", "not-the-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", GRAFANA_CB),
        ],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = token_request(
        s,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", GRAFANA_CB),
            ("code_verifier", VERIFIER),
            ("client_id", "grafana"),
            ("client_secret", &o.secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = token_request(s, None, &[("grant_type", "password")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = token_request(
        s,
        Some(("grafana", &o.secret)),
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn a_code_used_twice_revokes_what_it_gave() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "fay@acme.test", Role::User).await;
    let sess = login(s, "fay@acme.test", CHROME_MAC).await;
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (status, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    assert_eq!(status, 200);
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(s, access).await.0, 200);
    let (status, again) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo(s, access).await.0,
        401,
        "the first use's tokens are revoked"
    );
    let (status, r) = refresh(&o, "grafana", t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, r["error"].as_str()), (400, Some("invalid_grant")));
    assert!(s.sql_i64("SELECT count(*) FROM events WHERE type = 'app.token_refused'") >= 1);

    // PKCE mismatch and a wrong redirect URI.
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (status, body) = token_request(
        s,
        Some(("grafana", &o.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", GRAFANA_CB),
            ("code_verifier", &"x".repeat(43)),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (status, body) = exchange(&o, "grafana", &code, "https://grafana.example.test/other").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // An expired code.
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    s.sql_exec("UPDATE oidc_codes SET expires_at = expires_at - 120 WHERE used_at IS NULL");
    let (status, body) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let hashed = s.sql_i64(&format!(
        "SELECT count(*) FROM oidc_codes WHERE code_hash = X'{}'",
        Sha256::digest(code.as_bytes())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    ));
    assert_eq!(hashed, 1, "codes are stored as their SHA-256 hash");
    s.sql_exec("UPDATE oidc_codes SET expires_at = 0");
    doorman::domain::ops::sweeper::sweep_once(&s.state).await;
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM oidc_codes"),
        0,
        "the sweeper forgets old codes"
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_revokes_the_grant() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "gus@acme.test", Role::User).await;
    let sess = login(s, "gus@acme.test", CHROME_MAC).await;
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (_, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    let first = t["refresh_token"].as_str().unwrap().to_string();
    let (status, r1) = refresh(&o, "grafana", &first).await;
    assert_eq!(status, 200, "{r1}");
    let second = r1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second, "rotated");
    let claims = verified_claims(s, r1["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sid"], sess.id);
    assert_eq!(
        userinfo(s, r1["access_token"].as_str().unwrap()).await.0,
        200
    );
    let (status, reused) = refresh(&o, "grafana", &first).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&o, "grafana", &second).await;
    assert_eq!(status, 400, "the whole grant is revoked");
    assert_eq!(
        userinfo(s, r1["access_token"].as_str().unwrap()).await.0,
        401
    );
    // Another client cannot use it either.
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (_, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    let (status, body) = refresh(&o, "vault", t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn ending_the_session_kills_its_tokens_at_once() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "hal@acme.test", Role::User).await;
    let sess = login(s, "hal@acme.test", CHROME_MAC).await;
    let other = login(s, "hal@acme.test", FIREFOX_WIN).await;
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (_, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(s, access).await.0, 200);
    let (status, _) = s
        .delete(&format!("/api/v1/sessions/{}", sess.id), &other.token)
        .await;
    assert!(status == 204 || status == 200, "{status}");
    let (status, body) = userinfo(s, access).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    let (status, r) = refresh(&o, "grafana", t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, r["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM oidc_grants WHERE ended_at IS NOT NULL AND end_reason = 'session_ended'"),
        1,
        "the grant ended with the session"
    );
    assert_eq!(s.sql_i64("SELECT count(*) FROM oidc_tokens"), 0);

    // A person disabled behind Doorman's back loses the apps too.
    let code = code_for(s, &other.token, "grafana", GRAFANA_CB).await;
    let (_, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    s.sql_exec("UPDATE users SET status = 'disabled' WHERE email = 'hal@acme.test'");
    assert_eq!(
        userinfo(s, t["access_token"].as_str().unwrap()).await.0,
        401
    );
    let (status, r) = refresh(&o, "grafana", t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, r["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn revocation_ends_tokens() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "ida@acme.test", Role::User).await;
    let sess = login(s, "ida@acme.test", CHROME_MAC).await;
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (_, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    let revoke = |token: String| {
        let s = &o.s;
        let secret = o.secret.clone();
        async move {
            let resp = client()
                .post(s.url("/oidc/revoke"))
                .basic_auth("grafana", Some(secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        }
    };
    assert_eq!(
        revoke(t["access_token"].as_str().unwrap().into()).await,
        200
    );
    assert_eq!(
        userinfo(s, t["access_token"].as_str().unwrap()).await.0,
        401
    );
    let (status, r) = refresh(&o, "grafana", t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        status, 200,
        "revoking an access token leaves the grant: {r}"
    );
    assert_eq!(
        revoke(r["refresh_token"].as_str().unwrap().into()).await,
        200
    );
    assert_eq!(
        userinfo(s, r["access_token"].as_str().unwrap()).await.0,
        401
    );
    assert_eq!(revoke("no-such-token".into()).await, 200);
}

#[tokio::test]
async fn rotated_keys_are_published_before_they_sign() {
    let o = op().await;
    let s = &o.s;
    s.user("Acme", "mo@acme.test", Role::User).await;
    let sess = login(s, "mo@acme.test", CHROME_MAC).await;
    let before: Vec<String> = {
        let (_, jwks) = status_json(client().get(s.url("/oidc/jwks")).send().await.unwrap()).await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let made = doorman::domain::oidc::keys::rotate(&s.state).await.unwrap();
    assert_eq!(made.len(), 2, "one per algorithm in use");
    let (_, jwks) = status_json(client().get(s.url("/oidc/jwks")).send().await.unwrap()).await;
    let after: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(after.len(), 4, "old and new keys are published: {jwks}");
    let code = code_for(s, &sess.token, "grafana", GRAFANA_CB).await;
    let (_, t) = exchange(&o, "grafana", &code, GRAFANA_CB).await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(t["id_token"].as_str().unwrap().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        before.iter().any(|k| header["kid"] == k.as_str()),
        "the old key signs until the new one's time comes"
    );
    verified_claims(s, t["id_token"].as_str().unwrap()).await;
}
