#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Device and location of a sign-in (SPEC §4), through the real server: User-Agent
//! parsing, the trusted-proxy rule for `X-Forwarded-For`, GeoIP, and hostile headers.
mod common;

use common::*;
use doorman::config::Cidr;
use doorman::model::Role;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

const UK_IP: &str = "81.2.69.142";

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|c| Cidr(c.parse().unwrap())).collect()
}

/// Signs in through the API with extra headers; returns (status, body).
async fn login_with_headers(s: &TestServer, headers: &[(&str, HeaderValue)]) -> (u16, Value) {
    let mut req = client()
        .post(s.url("/api/v1/login"))
        .json(&json!({"email": "ann@acme.test", "password": PASSWORD}));
    for (name, value) in headers {
        req = req.header(*name, value.clone());
    }
    match req.send().await {
        Ok(resp) => status_json(resp).await,
        // A server may close the connection on a header it will not read; that is not a
        // 5xx, but it must still be alive afterwards (checked by the callers).
        Err(err) => (0, Value::String(err.to_string())),
    }
}

async fn login_from(s: &TestServer, xff: &str) -> Value {
    let (status, body) = login_with_headers(
        s,
        &[("x-forwarded-for", HeaderValue::from_str(xff).unwrap())],
    )
    .await;
    assert_eq!(status, 201, "{xff}: {body}");
    body["session"].clone()
}

async fn assert_alive(s: &TestServer) {
    let (status, _) = status_json(client().get(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

fn max_stored_user_agent(s: &TestServer) -> i64 {
    s.sql_i64(
        "SELECT max(m) FROM (
           SELECT max(length(CAST(user_agent AS BLOB))) AS m FROM sessions
           UNION ALL SELECT max(length(CAST(user_agent AS BLOB))) FROM login_records)",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_user_agents_are_parsed() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let cases = [
        (
            CHROME_MAC,
            ["Desktop", "Chrome", "120", "macOS", "10.15"],
            "Chrome 120 · macOS 10.15 · Desktop",
        ),
        (
            FIREFOX_WIN,
            ["Desktop", "Firefox", "121", "Windows", ""],
            "Firefox 121 · Windows 10 · Desktop",
        ),
        (
            SAFARI_IPHONE,
            ["Smartphone", "Safari", "17", "iPhone", "17.1"],
            "Safari 17 · iPhone 17.1 · Smartphone",
        ),
    ];
    for (ua, [category, browser, version, os, os_version], label) in cases {
        let body = s.api_login("ann@acme.test", ua).await;
        let d = &body["session"]["device"];
        assert_eq!(d["category"], category, "{ua}: {d}");
        assert_eq!(d["browser"], browser, "{ua}: {d}");
        assert!(
            d["browser_version"].as_str().unwrap().starts_with(version),
            "{ua}: {d}"
        );
        assert!(d["os"].as_str().unwrap().starts_with(os), "{ua}: {d}");
        assert!(
            d["os_version"].as_str().unwrap().starts_with(os_version),
            "{ua}: {d}"
        );
        assert_eq!(d["label"], label, "{ua}: {d}");

        // The raw User-Agent is kept as sent.
        let c = rusqlite::Connection::open(&s.db_path).unwrap();
        let stored: String = c
            .query_row(
                "SELECT user_agent FROM sessions WHERE public_id = ?1",
                [body["session"]["id"].as_str().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, ua);
    }

    // No User-Agent at all, or a made-up one.
    for ua in ["", "curl/8.5.0", "\u{1F600}"] {
        let body = s.api_login("ann@acme.test", ua).await;
        let d = &body["session"]["device"];
        assert!(d["label"].as_str().is_some_and(|l| !l.is_empty()), "{d}");
    }

    // The sessions page shows the same label.
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    let page = b
        .get(s.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Chrome 120 · macOS 10.15 · Desktop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_a_trusted_proxy_gives_ip_and_country() {
    let s = start_with(|c| c.server.trusted_proxies = cidrs(&["127.0.0.1/32"])).await;
    s.user("Acme", "ann@acme.test", Role::User).await;

    let sess = login_from(&s, UK_IP).await;
    assert_eq!(sess["ip"], UK_IP);
    assert_eq!(sess["location"]["country_code"], "GB", "{sess}");
    assert_eq!(sess["location"]["country"], "United Kingdom", "{sess}");

    // The right-most address that is not a trusted proxy: the left one is client-made.
    let sess = login_from(&s, &format!("6.6.6.6, {UK_IP}")).await;
    assert_eq!(sess["ip"], UK_IP);
    assert_eq!(sess["location"]["country_code"], "GB");

    // Trusted hops on the right are skipped.
    let sess = login_from(&s, &format!("6.6.6.6, {UK_IP}, 127.0.0.1")).await;
    assert_eq!(sess["ip"], UK_IP);

    // A private address is a real client too, with no location.
    let sess = login_from(&s, "192.168.1.20").await;
    assert_eq!(sess["ip"], "192.168.1.20");
    assert_eq!(
        sess["location"],
        json!({"country_code": null, "country": null, "city": null, "network": null})
    );

    // Garbage: we believe no further than the proxy itself.
    let sess = login_from(&s, "not-an-ip").await;
    assert_eq!(sess["ip"], "127.0.0.1");

    // What was shown is what was stored, for the history too.
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM sessions WHERE ip = '{UK_IP}' AND country_code = 'GB'"
        )),
        3
    );
    assert_eq!(
        s.sql_i64(&format!(
            "SELECT count(*) FROM login_records WHERE ip = '{UK_IP}' AND country_code = 'GB'"
        )),
        3
    );

    // The page shows the location.
    let b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_static(UK_IP),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    browser_login(&s, &b, "ann@acme.test").await;
    let page = b
        .get(s.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(UK_IP) && page.contains("United Kingdom"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_without_trusted_proxies() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    for xff in [UK_IP, "6.6.6.6, 81.2.69.142"] {
        let sess = login_from(&s, xff).await;
        assert_eq!(sess["ip"], "127.0.0.1", "{xff}");
        assert_eq!(
            sess["location"],
            json!({"country_code": null, "country": null, "city": null, "network": null})
        );
    }
    // A proxy that is not ours is not believed either.
    let other = start_with(|c| c.server.trusted_proxies = cidrs(&["10.0.0.0/8"])).await;
    other.user("Acme", "ann@acme.test", Role::User).await;
    let sess = login_from(&other, UK_IP).await;
    assert_eq!(sess["ip"], "127.0.0.1");
    assert_eq!(
        other.sql_i64("SELECT count(*) FROM sessions WHERE country_code IS NOT NULL"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_user_agents_never_break_sign_in() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;

    // Not UTF-8: accepted, stored as text.
    let bytes = HeaderValue::from_bytes(b"Mozilla/5.0 \xff\xfe (X11; \xc3\x28 Linux)").unwrap();
    let (status, body) = login_with_headers(&s, &[("user-agent", bytes)]).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["session"]["device"]["label"].is_string());

    // 20 KB: accepted and cut, or refused by the HTTP layer; never a 5xx.
    let big = HeaderValue::from_str(&format!("Mozilla/5.0 {}", "A".repeat(20 * 1024))).unwrap();
    let (status, body) = login_with_headers(&s, &[("user-agent", big.clone())]).await;
    assert!(
        status == 201 || (400..500).contains(&status),
        "{status}: {body}"
    );
    if status == 201 {
        // Cut to the bound, not dropped.
        let c = rusqlite::Connection::open(&s.db_path).unwrap();
        let kept: String = c
            .query_row(
                "SELECT user_agent FROM sessions WHERE public_id = ?1",
                [body["session"]["id"].as_str().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept.len(), 512);
        assert!(kept.starts_with("Mozilla/5.0 AAAA"));
    }
    // Multi-byte text is cut on a character boundary.
    let wide = HeaderValue::from_bytes("é".repeat(5000).as_bytes()).unwrap();
    let (status, body) = login_with_headers(&s, &[("user-agent", wide)]).await;
    assert!(
        status == 201 || (400..500).contains(&status),
        "{status}: {body}"
    );
    // A failed attempt is recorded with the same bound.
    let resp = client()
        .post(s.url("/api/v1/login"))
        .header("user-agent", big)
        .json(&json!({"email": "ann@acme.test", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert!(status == 401 || status == 431, "{status}");
    assert_alive(&s).await;

    let stored = max_stored_user_agent(&s);
    assert!(
        (1..=512).contains(&stored),
        "stored User-Agent of {stored} bytes"
    );
    // Everything stored is valid text.
    let c = rusqlite::Connection::open(&s.db_path).unwrap();
    let mut stmt = c
        .prepare("SELECT user_agent FROM sessions UNION ALL SELECT user_agent FROM login_records")
        .unwrap();
    let all: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(all.len() >= 3, "{}", all.len());
    assert!(
        all.iter()
            .all(|ua| !ua.chars().any(char::is_control) && ua.len() <= 512)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_forwarded_for_never_breaks_sign_in() {
    let plain = start().await;
    let proxied = start_with(|c| c.server.trusted_proxies = cidrs(&["127.0.0.1/32"])).await;
    let many_untrusted = (0..5000)
        .map(|i| format!("1.2.{}.{}", i / 250, i % 250))
        .collect::<Vec<_>>()
        .join(", ");
    let many_trusted = vec!["127.0.0.1"; 5000].join(",");
    let junk = "x,".repeat(30_000);
    for s in [&plain, &proxied] {
        s.user("Acme", "ann@acme.test", Role::User).await;
        for xff in [
            HeaderValue::from_str(&many_untrusted).unwrap(),
            HeaderValue::from_str(&many_trusted).unwrap(),
            HeaderValue::from_str(&junk).unwrap(),
            HeaderValue::from_bytes(b"\xff\xfe, 81.2.69.142\xff").unwrap(),
        ] {
            let (status, body) = login_with_headers(s, &[("x-forwarded-for", xff)]).await;
            assert!(
                status == 201 || (400..500).contains(&status),
                "{status}: {body}"
            );
            if status == 201 {
                let ip = body["session"]["ip"].as_str().unwrap();
                assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{ip}");
            }
        }
        assert_alive(s).await;
    }
    // Through the proxy the right-most untrusted entry wins, even in a long header.
    assert_eq!(
        proxied.sql_i64("SELECT count(*) FROM sessions WHERE ip = '1.2.19.249'"),
        1
    );
    assert_eq!(
        plain.sql_i64("SELECT count(*) FROM sessions WHERE ip <> '127.0.0.1'"),
        0
    );
}
