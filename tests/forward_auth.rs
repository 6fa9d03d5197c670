#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Drop-in forward auth (SPEC §16) against the real server: the paths and status codes
//! of Authelia and oauth2-proxy, the original request believed only from a trusted
//! proxy, the identity header families, and the access rules per application. The real
//! nginx and Caddy run in tests/proxy_nginx.rs and tests/proxy_caddy.rs.
mod common;

use common::*;
use doorman::config::{Application, Cidr, HeaderFamily};
use doorman::model::Role;
use reqwest::header::HeaderMap;

/// How long a write made off the request path may take to show.
const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

const PUBLIC: &str = "https://doorman.example.com";

fn apps() -> Vec<Application> {
    vec![
        Application {
            name: "Grafana".into(),
            url: "https://grafana.example.com".into(),
            ..Default::default()
        },
        Application {
            name: "Admin".into(),
            url: "https://tools.example.com/admin".into(),
            allow_roles: vec!["admin".into()],
            ..Default::default()
        },
        Application {
            name: "Wiki".into(),
            url: "https://tools.example.com/wiki".into(),
            allow_accounts: vec!["Acme".into()],
            allow_emails: vec!["*@acme.test".into()],
            ..Default::default()
        },
        Application {
            name: "Vault".into(),
            url: "https://vault.example.com".into(),
            require_second_factor: true,
            ..Default::default()
        },
    ]
}

async fn server(trust_loopback: bool) -> TestServer {
    let b = TestServer::builder().with(|c| {
        c.server.public_url = PUBLIC.into();
        c.applications = apps();
    });
    if trust_loopback {
        b.trust_loopback()
    } else {
        b
    }
    .start()
    .await
}

/// A request a proxy would make for `original` (both header families, as each path
/// reads its own), with `token`.
async fn ask(
    s: &TestServer,
    path: &str,
    token: Option<&str>,
    original: Option<&str>,
    html: bool,
) -> (u16, HeaderMap, String) {
    let mut req = client().get(s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(url) = original {
        let u = url::Url::parse(url).unwrap();
        req = req
            .header("x-forwarded-proto", u.scheme())
            .header("x-forwarded-host", u.host_str().unwrap())
            .header("x-forwarded-uri", &url[url.find(u.path()).unwrap()..])
            .header("x-forwarded-method", "GET")
            .header("x-original-url", url)
            .header("x-original-method", "GET");
    }
    if html {
        req = req.header("accept", "text/html,application/xhtml+xml");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

fn location(h: &HeaderMap) -> String {
    h.get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Asserts that `to` is Doorman's absolute sign-in URL returning to `original`.
fn is_sign_in_for(to: &str, original: &str) {
    let u = url::Url::parse(to).unwrap_or_else(|e| panic!("{to}: {e}"));
    assert_eq!(u.origin().ascii_serialization(), PUBLIC, "{to}");
    assert_eq!(u.path(), "/login", "{to}");
    let rd = u
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned());
    assert_eq!(rd.as_deref(), Some(original), "{to}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_path_answers_as_the_tool_it_stands_in_for() {
    let s = server(true).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let t = s.token("ann@acme.test").await;
    let original = "https://grafana.example.com/d/1?orgId=2";

    for (path, ok) in [
        ("/auth/verify", 200),
        ("/api/authz/auth-request", 200),
        ("/api/authz/forward-auth", 200),
        ("/api/verify", 200),
        ("/oauth2/auth", 202),
    ] {
        let (status, h, _) = ask(&s, path, Some(&t), Some(original), true).await;
        assert_eq!(status, ok, "{path} signed in");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["remote-user"], "ann@acme.test", "{path}");
        // Only the proxy reads a "yes": no browser headers on it.
        for browser_only in [
            "content-security-policy",
            "x-frame-options",
            "x-content-type-options",
            "referrer-policy",
        ] {
            assert!(h.get(browser_only).is_none(), "{path}: {browser_only}");
        }
    }

    // Not signed in: these answers may reach the browser, with its headers.
    let has_browser_headers = |h: &HeaderMap, what: &str| {
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{what}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
    };
    let (status, h, body) = ask(&s, "/auth/verify", None, Some(original), true).await;
    assert_eq!(status, 401, "{body}");
    assert!(h.get("location").is_none());
    has_browser_headers(&h, "verify 401");
    let (status, h, _) = ask(&s, "/api/authz/auth-request", None, Some(original), true).await;
    assert_eq!(status, 401);
    is_sign_in_for(&location(&h), original);
    let (status, h, _) = ask(&s, "/api/authz/forward-auth", None, Some(original), true).await;
    assert_eq!(status, 302, "a browser is sent to sign in");
    is_sign_in_for(&location(&h), original);
    has_browser_headers(&h, "forward-auth 302");
    let (status, _, _) = ask(&s, "/api/authz/forward-auth", None, Some(original), false).await;
    assert_eq!(status, 401, "a script is told 401");
    let (status, _, _) = ask(&s, "/api/verify", None, Some(original), true).await;
    assert_eq!(status, 401);
    let rd = format!("/api/verify?rd={PUBLIC}/login");
    let (status, h, _) = ask(&s, &rd, None, Some(original), true).await;
    assert_eq!(status, 302);
    is_sign_in_for(&location(&h), original);
    let (status, h, _) = ask(
        &s,
        "/api/verify?rd=https://evil.test/x",
        None,
        Some(original),
        true,
    )
    .await;
    assert_eq!(status, 401, "an rd elsewhere is not followed");
    assert!(h.get("location").is_none());
    let (status, _, _) = ask(&s, "/oauth2/auth", None, Some(original), true).await;
    assert_eq!(status, 401);

    for start in ["/oauth2/start", "/oauth2/sign_in"] {
        let (status, h, _) = ask(
            &s,
            &format!("{start}?rd=https://grafana.example.com/x"),
            None,
            None,
            true,
        )
        .await;
        assert_eq!(status, 303, "{start}");
        assert_eq!(location(&h), "/login?rd=https%3A//grafana.example.com/x");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_come_in_the_configured_families() {
    let s = start_with(|c| {
        c.server.forward_auth_headers = vec![HeaderFamily::Oauth2Proxy];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::Admin).await;
    let t = s.token("ann@acme.test").await;
    let (status, h, _) = ask(&s, "/auth/verify", Some(&t), None, false).await;
    assert_eq!(status, 200);
    assert_eq!(h["x-auth-request-user"], "ann@acme.test");
    assert_eq!(h["x-auth-request-email"], "ann@acme.test");
    assert_eq!(h["x-auth-request-groups"], "admin,Acme");
    for absent in ["x-doorman-user", "remote-user", "remote-groups"] {
        assert!(h.get(absent).is_none(), "{absent} is not configured");
    }

    let all = server(true).await;
    all.user("Acme", "bob@acme.test", Role::User).await;
    let t = all.token("bob@acme.test").await;
    let (_, h, _) = ask(&all, "/auth/verify", Some(&t), None, false).await;
    assert_eq!(h["x-doorman-email"], "bob@acme.test");
    assert_eq!(h["remote-user"], "bob@acme.test");
    assert_eq!(h["remote-email"], "bob@acme.test");
    assert_eq!(h["remote-name"], "bob");
    assert_eq!(h["remote-groups"], "user,Acme");
    assert_eq!(h["x-auth-request-user"], "bob@acme.test");
    assert!(h.get("x-doorman-session").is_some());
}

/// A value a header cannot carry (a name with a line break, written past the profile
/// page's checks) fails closed: no "yes" without the identity the application expects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_no_header_can_carry_is_refused_not_sent_in_part() {
    let s = server(true).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let t = s.token("ann@acme.test").await;
    let (status, _, _) = ask(&s, "/auth/verify", Some(&t), None, false).await;
    assert_eq!(status, 200);
    let changed = s.sql_exec(
        "UPDATE users SET name = 'Ann' || char(10) || 'Smuggled: 1' WHERE email = 'ann@acme.test'",
    );
    assert_eq!(changed, 1);
    for path in ["/auth/verify", "/api/authz/forward-auth", "/oauth2/auth"] {
        let (status, h, body) = ask(&s, path, Some(&t), None, false).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("cannot be passed on"), "{path}: {body}");
        for leaked in [
            "remote-user",
            "remote-name",
            "x-doorman-email",
            "x-auth-request-user",
        ] {
            assert!(
                h.get(leaked).is_none(),
                "{path} sent {leaked} with a refusal"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_of_each_application_decide_and_refusals_are_403_everywhere() {
    let s = server(true).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "adam@acme.test", Role::Admin).await;
    s.user("Hooli", "gavin@hooli.test", Role::Owner).await;
    let ann = s.token("ann@acme.test").await;
    let adam = s.token("adam@acme.test").await;
    let gavin = s.token("gavin@hooli.test").await;
    let cases = [
        (&ann, "https://tools.example.com/admin/users", 403),
        (&adam, "https://tools.example.com/admin/users", 200),
        (&gavin, "https://tools.example.com/admin", 200),
        // Segment boundary: /administrator is not /admin, so no rule applies.
        (&ann, "https://tools.example.com/administrator", 200),
        (&ann, "https://tools.example.com/wiki/page", 200),
        (&gavin, "https://tools.example.com/wiki/page", 403),
        // Normalised before matching.
        (&ann, "https://tools.example.com/wiki/../admin/x", 403),
        (&adam, "https://vault.example.com/", 403),
        (&gavin, "https://vault.example.com/secret", 403),
        (&ann, "https://unknown.example.com/", 200),
    ];
    for (token, url, expected) in cases {
        for path in [
            "/auth/verify",
            "/api/authz/auth-request",
            "/api/authz/forward-auth",
            "/api/verify",
        ] {
            let (status, h, body) = ask(&s, path, Some(token), Some(url), false).await;
            assert_eq!(status, expected, "{path} for {url}: {body}");
            if expected == 403 {
                assert!(h.get("remote-user").is_none(), "no identity with a refusal");
                assert!(body.contains("access_denied"), "{body}");
            }
        }
        let (status, _, _) = ask(&s, "/oauth2/auth", Some(token), Some(url), false).await;
        assert_eq!(
            status,
            if expected == 403 { 403 } else { 202 },
            "oauth2 for {url}"
        );
    }
    // A browser refused gets the page that says so.
    let (status, _, body) = ask(
        &s,
        "/api/authz/forward-auth",
        Some(&ann),
        Some("https://tools.example.com/admin"),
        true,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body.contains("You don't have access to <strong>Admin</strong>"),
        "{body}"
    );
    let page = client()
        .get(s.url("/denied?app=Admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<strong>Admin</strong>")
    );
    let page = client()
        .get(s.url("/denied?app=%3Cscript%3Ealert(1)%3C/script%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("this application"),
        "unknown names are not repeated"
    );
    assert!(!text.contains("alert(1)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_from_an_untrusted_peer_are_refused_when_rules_exist() {
    // SPEC §19: from a peer outside `trusted_proxies`, a request that names an original
    // address is ambiguous, and refused whenever any application has rules.
    let s = server(false).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ann = s.token("ann@acme.test").await;
    let (status, _, _) = ask(
        &s,
        "/auth/verify",
        Some(&ann),
        Some("https://grafana.example.com/"),
        false,
    )
    .await;
    assert_eq!(status, 403, "X-Forwarded-* from an untrusted peer");
    let resp = client()
        .get(s.url("/auth/verify"))
        .bearer_auth(&ann)
        .header("x-original-url", "https://grafana.example.com/")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "X-Original-URL from an untrusted peer");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    // Without forwarding headers the plain check still answers.
    let (status, _, _) = ask(&s, "/auth/verify", Some(&ann), None, false).await;
    assert_eq!(status, 200);
    // And the sign-in redirect carries no address taken from them.
    let (status, h, _) = ask(
        &s,
        "/api/authz/forward-auth",
        None,
        Some("https://evil.test/x"),
        true,
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(location(&h), format!("{PUBLIC}/login"));

    // With no rules anywhere there is nothing to protect: the headers are ignored.
    let open = start_with(|c| {
        c.server.public_url = PUBLIC.into();
        c.applications = vec![Application {
            name: "Grafana".into(),
            url: "https://grafana.example.com".into(),
            ..Default::default()
        }];
    })
    .await;
    open.user("Acme", "ann@acme.test", Role::User).await;
    let ann = open.token("ann@acme.test").await;
    let resp = client()
        .get(open.url("/auth/verify"))
        .bearer_auth(&ann)
        .header("x-original-url", "https://tools.example.com/admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The same headers from a trusted proxy are believed (X-Original-URL form too).
    let trusted = server(true).await;
    trusted.user("Acme", "ann@acme.test", Role::User).await;
    let ann = trusted.token("ann@acme.test").await;
    let resp = client()
        .get(trusted.url("/auth/verify"))
        .bearer_auth(&ann)
        .header("x-original-url", "https://tools.example.com/admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

/// A verify request from a trusted proxy with both header families set.
async fn ask_both(s: &TestServer, path: &str, token: &str, forwarded: &str, original: &str) -> u16 {
    let u = url::Url::parse(forwarded).unwrap();
    client()
        .get(s.url(path))
        .bearer_auth(token)
        .header("x-forwarded-proto", u.scheme())
        .header("x-forwarded-host", u.host_str().unwrap())
        .header("x-forwarded-uri", u.path())
        .header("x-original-url", original)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_endpoint_reads_its_own_header_family_only() {
    // SPEC §19 (finding: a client chooses the application). Caddy and Traefik pass the
    // client's own X-Original-URL to the auth server beside their X-Forwarded-*: it must
    // not choose the application.
    let s = server(true).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ann = s.token("ann@acme.test").await;
    let admin = "https://tools.example.com/admin/users";
    let open = "https://grafana.example.com/";
    // Reads X-Forwarded-* only.
    assert_eq!(
        ask_both(&s, "/api/authz/forward-auth", &ann, admin, open).await,
        403
    );
    assert_eq!(
        ask_both(&s, "/api/authz/forward-auth", &ann, open, admin).await,
        200
    );
    // Read X-Original-URL only.
    for path in ["/api/authz/auth-request", "/api/verify"] {
        assert_eq!(ask_both(&s, path, &ann, open, admin).await, 403, "{path}");
        assert_eq!(ask_both(&s, path, &ann, admin, open).await, 200, "{path}");
    }
    // X-Forwarded-* when X-Forwarded-Host is present.
    for path in ["/auth/verify", "/oauth2/auth"] {
        assert_eq!(ask_both(&s, path, &ann, admin, open).await, 403, "{path}");
        let ok = if path == "/oauth2/auth" { 202 } else { 200 };
        assert_eq!(ask_both(&s, path, &ann, open, admin).await, ok, "{path}");
        let resp = client()
            .get(s.url(path))
            .bearer_auth(&ann)
            .header("x-original-url", admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}: X-Original-URL alone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_a_protected_path_is_refused() {
    // SPEC §19 (finding: the rules fail open). Each of these reached the app as its
    // `/admin` (or cannot be told apart from it) and was let through.
    let s = server(true).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    let ann = s.token("ann@acme.test").await;
    let ada = s.token("ada@acme.test").await;
    let ask_url = |url: &'static str, token: String| {
        let req = client()
            .get(s.url("/api/authz/auth-request"))
            .bearer_auth(token)
            .header("x-original-url", url);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    for url in [
        "https://tools.example.com/admin/x",
        "https://tools.example.com/%61dmin/x",
        "https://tools.example.com//admin/x",
        "https://tools.example.com/admin;x/s",
        "https://tools.example.com/admin%5Cx",
        "https://tools.example.com/api%2Fadmin/users",
        "https://tools.example.com/x/..//admin",
        "https://tools.example.com/x/%2e%2e/admin",
        "https://tools.example.com./admin/x",
        "https://TOOLS.example.com/admin",
        "http://tools.example.com/admin/x",
        "https://tools.example.com:8443/admin/x",
        "https://tools.example.com/admin%00",
        "https://tools.example.com/%zz",
        "https://tools.example.com/../admin",
    ] {
        assert_eq!(ask_url(url, ann.clone()).await, 403, "{url}");
    }
    // What lies outside the rules still passes, and the admin passes the plain path.
    for url in [
        "https://tools.example.com/administrator",
        "https://grafana.example.com/d/1",
        "https://tools.example.com/adminx/y",
    ] {
        assert_eq!(ask_url(url, ann.clone()).await, 200, "{url}");
    }
    assert_eq!(
        ask_url("https://tools.example.com/%61dmin/x", ada.clone()).await,
        200
    );
    // An address that cannot be matched is refused even to the admin, and recorded.
    assert_eq!(
        ask_url("https://tools.example.com/api%2Fadmin/users", ada.clone()).await,
        403
    );
    let recorded = "SELECT count(*) FROM events WHERE type = 'access.denied' \
                    AND details LIKE '%ambiguous_url%'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.sql_i64(recorded) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no access.denied event"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_may_match_its_path_without_case() {
    let s = start_with(|c| {
        c.server.public_url = PUBLIC.into();
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        c.applications = vec![
            Application {
                name: "Admin".into(),
                url: "https://tools.example.com/admin".into(),
                allow_roles: vec!["admin".into()],
                ..Default::default()
            },
            Application {
                name: "Files".into(),
                url: "https://files.example.com/private".into(),
                allow_roles: vec!["admin".into()],
                path_case_insensitive: true,
                ..Default::default()
            },
        ];
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let ann = s.token("ann@acme.test").await;
    for (url, want) in [
        ("https://tools.example.com/ADMIN", 200),
        ("https://files.example.com/PRIVATE/x", 403),
        ("https://files.example.com/Private", 403),
    ] {
        let resp = client()
            .get(s.url("/auth/verify"))
            .bearer_auth(&ann)
            .header("x-original-url", url)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_are_refused_at_start_with_the_key_named() {
    let c = doorman::Config {
        applications: vec![Application {
            name: "X".into(),
            url: "https://x.example.com".into(),
            allow_roles: vec!["superuser".into()],
            allow_emails: vec![" ".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("applications[0].allow_roles"), "{err}");
    assert!(err.contains("superuser"), "{err}");
    assert!(err.contains("applications[0].allow_emails"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_session_keeps_the_applications_it_is_used_with() {
    let s = server(true).await;
    s.user("Acme", "ann@acme.test", Role::Admin).await;
    let ann = login(&s, "ann@acme.test", CHROME_MAC).await;
    let admin = s.token("ann@acme.test").await;
    for url in [
        "https://grafana.example.com/d/1",
        "https://tools.example.com/wiki/x",
        "https://grafana.example.com/d/2",
    ] {
        let (status, _, _) = ask(&s, "/auth/verify", Some(&ann.token), Some(url), false).await;
        assert_eq!(status, 200);
    }
    // Recorded off the request path: wait for it.
    let used_now = || async {
        let (_, me) = s.get("/api/v1/me", &ann.token).await;
        me["session"]["applications_used"].clone()
    };
    eventually(WAIT, || async {
        used_now().await.as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    let used = used_now().await;
    let names: Vec<&str> = used
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["Grafana", "Wiki"], "{used}");
    assert!(used[0]["last_used_at"].as_str().unwrap().ends_with('Z'));
    // Written at most once per touch interval (60 s) per application.
    let now = doorman::clock::now();
    let stamp = |ago: i64| {
        s.sql_exec(&format!(
            "UPDATE sessions SET applications_used = json_array(json_object('name', 'Grafana', 'last_used_at', {})) WHERE public_id = '{}'",
            now - ago,
            ann.id
        ));
    };
    let grafana_at = || {
        s.sql_i64(&format!(
            "SELECT json_extract(value, '$.last_used_at') FROM sessions, json_each(applications_used)
             WHERE public_id = '{}' AND json_extract(value, '$.name') = 'Grafana'",
            ann.id
        ))
    };
    stamp(30);
    ask(
        &s,
        "/auth/verify",
        Some(&ann.token),
        Some("https://grafana.example.com/"),
        false,
    )
    .await;
    // A window that must pass: a write is recorded off the request path, so "none" is
    // none within a while.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(grafana_at(), now - 30, "used 30 s ago: not written again");
    stamp(120);
    ask(
        &s,
        "/auth/verify",
        Some(&ann.token),
        Some("https://grafana.example.com/"),
        false,
    )
    .await;
    eventually(WAIT, || async { grafana_at() >= now }).await;
    let at = grafana_at();
    assert!(
        at >= now,
        "used 2 minutes ago: written again ({at} < {now})"
    );
    ask(
        &s,
        "/auth/verify",
        Some(&ann.token),
        Some("https://tools.example.com/wiki/x"),
        false,
    )
    .await;
    let wiki_recorded = || async {
        s.sql_text(&format!(
            "SELECT applications_used FROM sessions WHERE public_id = '{}'",
            ann.id
        ))
        .unwrap_or_default()
        .contains("Wiki")
    };
    assert!(
        eventually(WAIT, wiki_recorded).await,
        "the use with Wiki is recorded"
    );

    // The admin `application` filter matches use, not only the sign-in's application.
    let (status, list) = s
        .get("/api/v1/admin/sessions?application=Wiki", &admin)
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ann.id.as_str()], "{list}");
    assert_eq!(list["items"][0]["application"], "api");

    // Both listings show it.
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    for page in [
        "/settings/security/sessions",
        "/settings/security/sessions/users",
    ] {
        let html = b
            .get(s.url(page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("Used with Grafana, Wiki") || html.contains("Used with Wiki, Grafana"),
            "{page}: {html}"
        );
    }
}
