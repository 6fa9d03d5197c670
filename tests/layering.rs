#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The layout's rules (see the map at the top of `src/lib.rs`), checked on the source
//! itself so that they stay true: a broken rule fails CI with the file and line.
//!
//! - `web/` (pages) and `api/` (JSON) are two skins: they never import each other;
//! - `oidc/` (the OpenID endpoints) is a third: it imports neither, nor `db/`;
//! - only `domain/` (and the wiring in `lib.rs` and `state.rs`) imports `db/`;
//! - SQL is written in `db/` only;
//! - page modules do not import each other (shared pieces live in `web/components.rs`);
//! - leaf services (clock, GeoIP, User-Agent, client address, password hasher, tokens,
//!   rate limiter) do not take the whole `AppState`;
//! - the CLI (`main.rs`) and mail go through lib and domain only.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (file relative to src/, line number, line) for every line of code (comments out).
fn lines() -> Vec<(String, usize, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut all = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            all.push((rel.clone(), i + 1, line.to_string()));
        }
    }
    assert!(all.len() > 1000, "the source tree was not found");
    all
}

fn broken(
    all: &[(String, usize, String)],
    file: impl Fn(&str) -> bool,
    line: impl Fn(&str) -> bool,
) -> Vec<String> {
    all.iter()
        .filter(|(f, _, l)| file(f) && line(l))
        .map(|(f, n, l)| format!("src/{f}:{n}: {}", l.trim()))
        .collect()
}

fn assert_none(what: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{what}:\n{}", found.join("\n"));
}

#[test]
fn pages_and_api_never_import_each_other() {
    let all = lines();
    assert_none(
        "web/ imports api/",
        broken(
            &all,
            |f| f.starts_with("web/"),
            |l| l.contains("crate::api"),
        ),
    );
    assert_none(
        "api/ imports web/",
        broken(
            &all,
            |f| f.starts_with("api/"),
            |l| l.contains("crate::web"),
        ),
    );
}

#[test]
fn the_openid_endpoints_are_a_third_skin() {
    let all = lines();
    assert_none(
        "oidc/ imports web/, api/ or db/",
        broken(
            &all,
            |f| f.starts_with("oidc/"),
            |l| l.contains("crate::web") || l.contains("crate::api") || l.contains("crate::db"),
        ),
    );
    assert_none(
        "web/ or api/ imports oidc/",
        broken(
            &all,
            |f| f.starts_with("web/") || f.starts_with("api/"),
            |l| l.contains("crate::oidc"),
        ),
    );
}

#[test]
fn only_the_domain_and_the_wiring_touch_storage() {
    let all = lines();
    // error.rs is the domain's error type, which wraps storage errors.
    let may = |f: &str| {
        f.starts_with("domain/")
            || f.starts_with("db/")
            || matches!(f, "lib.rs" | "state.rs" | "error.rs")
    };
    assert_none(
        "db/ used outside domain/",
        broken(
            &all,
            |f| !may(f),
            |l| l.contains("crate::db") || l.contains("doorman::db") || l.contains(" db::"),
        ),
    );
}

#[test]
fn sql_is_written_in_db_only() {
    let all = lines();
    let sql = |l: &str| {
        [
            "\"SELECT ",
            "\"INSERT ",
            "\"UPDATE ",
            "\"DELETE ",
            "\"CREATE ",
            "\"PRAGMA ",
        ]
        .iter()
        .any(|k| l.contains(k))
            || l.contains(".execute(")
            || l.contains(".query_row(")
            || l.contains(".prepare")
            || l.contains("execute_batch(")
    };
    assert_none(
        "SQL outside db/",
        broken(&all, |f| !f.starts_with("db/"), sql),
    );
}

#[test]
fn page_modules_do_not_import_each_other() {
    let all = lines();
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let pages: Vec<String> = std::fs::read_dir(&web)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().to_string();
            let page = name.strip_suffix(".rs")?.to_string();
            (page != "mod" && page != "components").then_some(page)
        })
        .collect();
    assert!(pages.len() >= 5, "{pages:?}");
    for page in &pages {
        let file = format!("web/{page}.rs");
        let others: Vec<&String> = pages.iter().filter(|p| *p != page).collect();
        assert_none(
            &format!("{file} imports another page"),
            broken(
                &all,
                |f| f == file,
                |l| {
                    others.iter().any(|o| {
                        l.contains(&format!("super::{o}::"))
                            || l.contains(&format!("super::{o};"))
                            || l.contains(&format!("crate::web::{o}"))
                    })
                },
            ),
        );
    }
}

#[test]
fn leaf_services_do_not_take_the_whole_state() {
    let all = lines();
    let leaf = |f: &str| {
        f.starts_with("geo/")
            || matches!(
                f,
                "clock.rs"
                    | "ua.rs"
                    | "client_ip.rs"
                    | "domain/passwords.rs"
                    | "domain/tokens.rs"
                    | "domain/ratelimit.rs"
                    | "http/cookies.rs"
                    | "files.rs"
                    | "metrics/registry.rs"
            )
    };
    assert_none(
        "a leaf service takes AppState",
        broken(&all, leaf, |l| l.contains("AppState")),
    );
}

#[test]
fn the_cli_and_mail_go_through_the_domain() {
    let all = lines();
    assert_none(
        "main.rs reaches past lib and domain",
        broken(
            &all,
            |f| f == "main.rs",
            |l| l.contains("db::") || l.contains("web::") || l.contains("api::"),
        ),
    );
    assert_none(
        "mail/ imports a skin",
        broken(
            &all,
            |f| f.starts_with("mail/"),
            |l| l.contains("crate::web") || l.contains("crate::api"),
        ),
    );
}
