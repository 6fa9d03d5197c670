#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Doorman as an OpenID Provider (SPEC §20), through the real server: discovery, JWKS,
//! authorize, token (PKCE, both client authentication methods), id tokens verified
//! against `/oidc/jwks` with the JOSE library, userinfo, refresh rotation and reuse,
//! ending the session, revocation, end_session, code reuse.

mod common;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use compact_jwt::crypto::JwsRs256Verifier;
use compact_jwt::{Jwk, JwsCompact, JwsEs256Verifier, JwsVerifier};
use doorman::config::{Application, OidcClient, SigningAlg};
use doorman::domain::model::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const GRAFANA_CB: &str = "https://grafana.example.test/login/generic_oauth";
pub const WIKI_CB: &str = "http://127.0.0.1:9/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn app(name: &str, client: OidcClient) -> Application {
    Application {
        name: name.into(),
        url: format!("https://{}.example.test", name.to_lowercase()),
        oidc: Some(client),
        ..Default::default()
    }
}

fn confidential(id: &str, secret_hash: &str, redirect: &str) -> OidcClient {
    OidcClient {
        client_id: id.into(),
        client_secret_hash: secret_hash.into(),
        redirect_uris: vec![redirect.into()],
        post_logout_redirect_uris: vec![format!("https://{id}.example.test/signed-out")],
        ..Default::default()
    }
}

/// A server with five clients: Grafana (confidential, ES256), Wiki (public, RS256),
/// Admin (admins only), Vault (requires a second factor), Notes (asks consent).
pub struct Op {
    pub s: TestServer,
    pub secret: String,
}

pub async fn op() -> Op {
    let (secret, hash) = doorman::domain::oidc::new_client_secret();
    let h = hash.clone();
    let s = start_with_port(move |c, port| {
        c.server.public_url = format!("http://127.0.0.1:{port}");
        let mut wiki = OidcClient {
            client_id: "wiki".into(),
            redirect_uris: vec![WIKI_CB.into()],
            public: true,
            id_token_signed_response_alg: SigningAlg::RS256,
            ..Default::default()
        };
        wiki.post_logout_redirect_uris = vec!["http://127.0.0.1:9/bye".into()];
        let mut admin = app("Admin", confidential("admin", &h, GRAFANA_CB));
        admin.allow_roles = vec!["admin".into()];
        let mut vault = app("Vault", confidential("vault", &h, GRAFANA_CB));
        vault.require_second_factor = true;
        let mut notes = confidential("notes", &h, GRAFANA_CB);
        notes.consent = true;
        c.applications = vec![
            app("Grafana", confidential("grafana", &h, GRAFANA_CB)),
            app("Wiki", wiki),
            admin,
            vault,
            app("Notes", notes),
        ];
    })
    .await;
    Op { s, secret }
}

/// A client that presents the session `token` as the browser's cookie.
pub fn with_cookie(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "cookie",
        format!("doorman_session={token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .user_agent(CHROME_MAC)
        .build()
        .unwrap()
}

pub fn authorize_url(
    s: &TestServer,
    client_id: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&s.url("/oidc/authorize")).unwrap();
    let given = |k: &str| extra.iter().any(|(e, _)| *e == k);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect);
        for (k, v) in [
            ("response_type", "code"),
            ("scope", "openid email profile groups"),
            ("state", "st-1"),
            ("nonce", "n-1"),
        ] {
            if !given(k) {
                q.append_pair(k, v);
            }
        }
        q.extend_pairs(extra.iter().copied());
    }
    url.to_string()
}

pub fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Authorizes `client_id` for the session `token`; the code.
pub async fn code_for(s: &TestServer, token: &str, client_id: &str, redirect: &str) -> String {
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let page = read(
        with_cookie(token)
            .get(authorize_url(s, client_id, redirect, &pkce))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let q = query_of(&page.location);
    assert!(page.location.starts_with(redirect), "{}", page.location);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], s.base.trim_end_matches('/'), "RFC 9207 iss");
    q.get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code: {}", page.location))
}

/// POST /oidc/token with `form`, authenticated as Basic (`basic`) or not.
pub async fn token_request(
    s: &TestServer,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = client().post(s.url("/oidc/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    status_json(resp).await
}

pub async fn exchange(o: &Op, client_id: &str, code: &str, redirect: &str) -> (u16, Value) {
    token_request(
        &o.s,
        Some((client_id, &o.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub async fn userinfo(s: &TestServer, access: &str) -> (u16, Value) {
    let resp = client()
        .get(s.url("/oidc/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

pub async fn refresh(o: &Op, client_id: &str, refresh: &str) -> (u16, Value) {
    token_request(
        &o.s,
        Some((client_id, &o.secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await
}

/// The id token's claims, its signature checked against `/oidc/jwks` by compact_jwt.
pub async fn verified_claims(s: &TestServer, id_token: &str) -> Value {
    let (status, jwks) = status_json(client().get(s.url("/oidc/jwks")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let compact: JwsCompact = id_token.parse().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"));
    let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let jws = match header["alg"].as_str().unwrap() {
        "ES256" => JwsEs256Verifier::try_from(&jwk)
            .unwrap()
            .verify(&compact)
            .unwrap(),
        "RS256" => JwsRs256Verifier::try_from(&jwk)
            .unwrap()
            .verify(&compact)
            .unwrap(),
        other => panic!("alg {other}"),
    };
    jws.from_json().unwrap()
}

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

/// Every hidden input of a page, as form pairs.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let form_start = html.find("<form class=\"card\"").unwrap_or(0);
    let form_html = &html[form_start..];
    let form_html = &form_html[..form_html.find("</form>").unwrap_or(form_html.len())];
    for part in form_html.split("<input type=\"hidden\" ").skip(1) {
        let name = part
            .split("name=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let value = part
            .split("value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let value = value.replace("&amp;", "&").replace("&quot;", "\"");
        out.push((name.to_string(), value));
    }
    out
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
