//! Doorman as an OpenID Provider in the tests: a server with five clients, and the
//! requests an application makes (authorize, token, userinfo), id tokens checked
//! against `/oidc/jwks` with compact_jwt.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use compact_jwt::crypto::JwsRs256Verifier;
use compact_jwt::{Jwk, JwsCompact, JwsEs256Verifier, JwsVerifier};
use doorman::config::{Application, OidcClient, SigningAlg};
use serde_json::Value;

use super::*;

pub const GRAFANA_CB: &str = "https://grafana.example.test/login/generic_oauth";

pub const WIKI_CB: &str = "http://127.0.0.1:9/callback";

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub fn app(name: &str, client: OidcClient) -> Application {
    Application {
        name: name.into(),
        url: format!("https://{}.example.test", name.to_lowercase()),
        oidc: Some(client),
        ..Default::default()
    }
}

pub fn confidential(id: &str, secret_hash: &str, redirect: &str) -> OidcClient {
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

/// The header and claims of a signed token (an id token, a logout token), its signature
/// checked against `/oidc/jwks` by compact_jwt.
pub async fn verified(s: &TestServer, id_token: &str) -> (Value, Value) {
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
    (header, jws.from_json().unwrap())
}

/// The id token's claims, its signature checked against `/oidc/jwks`.
pub async fn verified_claims(s: &TestServer, id_token: &str) -> Value {
    verified(s, id_token).await.1
}

/// Every hidden input of a page, as form pairs.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
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
