//! A real relying party signs in with Doorman's OpenID Connect provider (SPEC §20): npm's
//! `express-openid-connect` with `openid-client` (tests/oidc-rp), driven by a real headless
//! Chromium. The authorization code flow with PKCE, a refresh that rotates the refresh
//! token, userinfo, and the id token verified by the independent `jose` library against
//! `/oidc/jwks`; once the Doorman session ends, the application's tokens stop working.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::node_rp::{NodeRp, RpClient};
use common::webdriver::{Browser, Driver};
use common::*;
use doorman::config::{Application, OidcClient, SigningAlg};
use doorman::model::Role;
use serde_json::Value;

/// Doorman on `http://localhost:<port>` (the browser's cookies for it stay apart from the
/// application's on 127.0.0.1) with the Node application registered as a client.
async fn setup(
    client_id: &str,
    client_auth: &str,
    alg: SigningAlg,
) -> (TestServer, NodeRp, String) {
    setup_with(client_id, client_auth, alg, false).await
}

/// [`setup`], with the application's back-channel logout endpoint registered or not.
async fn setup_with(
    client_id: &str,
    client_auth: &str,
    alg: SigningAlg,
    backchannel: bool,
) -> (TestServer, NodeRp, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let (secret, hash) = oidc_secret();
    let rp = NodeRp::start(&RpClient {
        issuer: &issuer,
        client_id,
        client_secret: &secret,
        client_auth,
        id_token_alg: alg.as_str(),
    })
    .await;
    let oidc = OidcClient {
        client_id: client_id.into(),
        client_secret_hash: hash,
        redirect_uris: vec![rp.redirect_uri()],
        post_logout_redirect_uris: vec![rp.post_logout_redirect_uri()],
        id_token_signed_response_alg: alg,
        backchannel_logout_uri: if backchannel {
            rp.backchannel_logout_uri()
        } else {
            String::new()
        },
        ..Default::default()
    };
    let url = rp.base.clone();
    let iss = issuer.clone();
    let server = start_on(listener, move |c| {
        c.server.public_url = iss;
        c.applications = vec![Application {
            name: "Notes".into(),
            url,
            oidc: Some(oidc),
            ..Default::default()
        }];
    })
    .await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    (server, rp, issuer)
}

/// Opens `url` and reads the JSON the application answers.
async fn json_at(b: &Browser, url: &str) -> Value {
    b.goto(url).await;
    let text = b.text("pre").await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url} answered no JSON ({e}): {text}"))
}

/// The application sends the browser to Doorman, which asks for a sign-in and sends it
/// back with a code; the application lands on its page with the id token's claims.
async fn sign_in_through_app(b: &Browser, rp: &NodeRp, issuer: &str) -> Value {
    b.goto(&rp.url("/")).await;
    let at = b.wait_for_url("/login").await;
    assert!(
        at.starts_with(issuer),
        "the application sent the browser to Doorman's sign-in: {at}"
    );
    // The sign-in returns to the application's authorization request: code flow, PKCE S256.
    let rd = url::Url::parse(&at)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let request = url::Url::parse(issuer).unwrap().join(&rd).unwrap();
    let param = |name: &str| {
        request
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(param("response_type").as_deref(), Some("code"), "{rd}");
    assert_eq!(
        param("code_challenge_method").as_deref(),
        Some("S256"),
        "{rd}"
    );
    assert!(
        param("code_challenge").is_some_and(|c| c.len() >= 43),
        "{rd}"
    );
    b.type_into("input[name=email]", "ann@acme.test").await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_url(&rp.base).await;
    let page = json_at(b, &rp.url("/")).await;
    assert!(page["claims"].is_object(), "{page}\n{}", rp.log_text());
    page["claims"].clone()
}

/// The public id of ann's one browser session, read with an API session of her own.
async fn browser_session_id(s: &TestServer, api: &Sess) -> String {
    let (status, body) = s.get("/api/v1/sessions", &api.token).await;
    assert_eq!(status, 200, "{body}");
    let others: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .filter(|id| *id != api.id)
        .collect();
    assert_eq!(others.len(), 1, "one browser session: {body}");
    others[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_openid_connect_signs_in_refreshes_and_verifies_with_jose() {
    let (s, rp, issuer) = setup("notes", "client_secret_basic", SigningAlg::ES256).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;

    let claims = sign_in_through_app(&b, &rp, &issuer).await;
    assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], "notes", "{claims}");
    assert_eq!(claims["email"], "ann@acme.test", "{claims}");
    let sub = claims["sub"].as_str().unwrap().to_string();
    assert!(
        !sub.is_empty() && !sub.contains("ann") && !sub.contains('@'),
        "sub is opaque: {sub}"
    );
    assert!(
        claims["amr"]
            .as_array()
            .is_some_and(|a| a.contains(&Value::from("pwd"))),
        "{claims}"
    );
    assert!(claims["nonce"].is_string(), "the nonce came back: {claims}");
    let api = login(&s, "ann@acme.test", CHROME_MAC).await;
    let session = browser_session_id(&s, &api).await;
    assert_eq!(
        claims["sid"],
        session.as_str(),
        "sid is the Doorman session"
    );

    // The id token, checked by jose alone against the published keys.
    let verified = json_at(&b, &rp.url("/verify")).await;
    assert_eq!(verified["header"]["alg"], "ES256", "{verified}");
    assert_eq!(verified["claims"]["sub"], sub.as_str(), "{verified}");
    assert_eq!(verified["claims"]["iss"], issuer.as_str(), "{verified}");

    // userinfo with the access token.
    let info = json_at(&b, &rp.url("/userinfo")).await;
    assert_eq!(info["sub"], sub.as_str(), "{info}");
    assert_eq!(info["email"], "ann@acme.test", "{info}");

    // A refresh: new access and refresh tokens (rotation), the same person.
    let refreshed = json_at(&b, &rp.url("/tokens")).await;
    assert_eq!(refreshed["changed"]["access_token"], true, "{refreshed}");
    assert_eq!(refreshed["changed"]["refresh_token"], true, "{refreshed}");
    assert_eq!(refreshed["claims"]["sub"], sub.as_str(), "{refreshed}");
    let info = json_at(&b, &rp.url("/userinfo")).await;
    assert_eq!(
        info["sub"],
        sub.as_str(),
        "the new access token works: {info}"
    );

    // The Doorman session ends. This application has no back-channel URI, so it keeps its
    // own session; its access and refresh tokens die with Doorman's, so it loses the
    // person at its next check (the back-channel test below signs it out at once).
    let (status, body) = s
        .delete(&format!("/api/v1/sessions/{session}"), &api.token)
        .await;
    assert_eq!(status, 204, "{body}");
    let info = json_at(&b, &rp.url("/userinfo")).await;
    assert_eq!(
        info["error"], "invalid_token",
        "userinfo refused at once: {info}"
    );
    let refused = json_at(&b, &rp.url("/tokens")).await;
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    b.quit().await;
}

/// A client that asked for RS256 id tokens and authenticates with `client_secret_post`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_id_tokens_and_client_secret_post() {
    let (_s, rp, issuer) = setup("wiki", "client_secret_post", SigningAlg::RS256).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;

    let claims = sign_in_through_app(&b, &rp, &issuer).await;
    assert_eq!(claims["aud"], "wiki", "{claims}");
    let verified = json_at(&b, &rp.url("/verify")).await;
    assert_eq!(verified["header"]["alg"], "RS256", "{verified}");
    assert_eq!(verified["claims"]["sub"], claims["sub"], "{verified}");
    let info = json_at(&b, &rp.url("/userinfo")).await;
    assert_eq!(info["email"], "ann@acme.test", "{info}");
    b.quit().await;
}

/// Back-channel logout (SPEC §21): a Terminate in Doorman signs the person out of the
/// application, whose next request goes back to sign-in within five seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_in_doorman_signs_out_of_the_app_through_its_back_channel() {
    let (s, rp, issuer) = setup_with("notes", "client_secret_basic", SigningAlg::ES256, true).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;
    sign_in_through_app(&b, &rp, &issuer).await;
    let api = login(&s, "ann@acme.test", CHROME_MAC).await;
    let session = browser_session_id(&s, &api).await;
    // Still signed in to the application before the end.
    let page = json_at(&b, &rp.url("/")).await;
    assert!(page["claims"].is_object(), "{page}");

    let (status, body) = s
        .delete(&format!("/api/v1/sessions/{session}"), &api.token)
        .await;
    assert_eq!(status, 204, "{body}");
    let ended = std::time::Instant::now();
    let sent_back = eventually(std::time::Duration::from_secs(5), || async {
        b.goto(&rp.url("/")).await;
        let at = b.current_url().await;
        at.starts_with(&issuer) && at.contains("/login")
    })
    .await;
    assert!(
        sent_back,
        "the application still answers {:?} after the Terminate (logout: {:?})\n{}",
        b.current_url().await,
        s.sql_text("SELECT status || ' ' || coalesce(last_error, '') FROM oidc_logouts"),
        rp.log_text()
    );
    assert!(ended.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        s.sql_i64(
            "SELECT count(*) FROM oidc_logouts WHERE status = 'delivered' AND client_id = 'notes'"
        ),
        1
    );
    assert_eq!(
        s.sql_i64("SELECT count(*) FROM events WHERE type = 'app.signed_out'"),
        1
    );
    b.quit().await;
}
