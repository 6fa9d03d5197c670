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
//! - the CLI (`main.rs`) and mail go through lib and domain only;
//! - `model/` (the nouns) imports nothing of the crate but `clock`; storage and the leaf
//!   services (db/, geo/, config, metrics/, client_ip, error, ua, paths) never import
//!   the rules (`domain/`) nor anything above them;
//! - the rooms of `domain/` import downward only: ops, oidc → people, access, sessions →
//!   signin → factors → attempts, alerts → audit → permissions, tokens, place,
//!   passwords → model;
//! - no import circle anywhere in `src/` (module by module, over `crate::` paths).

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
                    | "domain/attempts/limits.rs"
                    | "http/cookies.rs"
                    | "files.rs"
                    | "metrics/registry.rs"
                    | "paths.rs"
            )
            || f.starts_with("model/")
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

// ---- the import graph ----

/// The module a file under src/ is (`domain/signin/flow.rs` → `domain::signin::flow`,
/// `domain/alerts/mod.rs` → `domain::alerts`, `lib.rs` → the crate itself, "").
fn module_of(file: &str) -> String {
    let path = file.trim_end_matches(".rs");
    let path = path.strip_suffix("/mod").unwrap_or(path);
    if path == "lib" {
        return String::new();
    }
    path.replace('/', "::")
}

/// Every `crate::` path a piece of code names, one level of `{…}` spelled out:
/// `use crate::domain::{alerts, tokens};` names `domain::alerts` and `domain::tokens`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let base = path.trim_end_matches(':').to_string();
        let after = &rest[path.len()..];
        if path.ends_with("::") && after.starts_with('{') {
            let inner = &after[1..after.find('}').unwrap_or(after.len())];
            for item in inner.split(',') {
                let first = item.trim().split("::").next().unwrap_or_default();
                let first = first.split_whitespace().next().unwrap_or_default();
                if first.is_empty() || first == "self" {
                    out.push(base.clone());
                } else {
                    out.push(format!("{base}::{first}"));
                }
            }
        } else {
            out.push(base);
        }
    }
    out
}

/// A file of src/, its module, and the modules it names, each with the line that
/// first names it.
type Node = (String, String, Vec<(String, String)>);

/// The crate's import graph, module by module. A path names the longest module it
/// starts with.
fn graph() -> Vec<Node> {
    let all = lines();
    let mut files: Vec<&String> = all.iter().map(|(f, _, _)| f).collect();
    files.dedup();
    let modules: std::collections::HashSet<String> = files.iter().map(|f| module_of(f)).collect();
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|m| modules.contains(m))
    };
    files
        .iter()
        .filter(|f| f.as_str() != "main.rs")
        .map(|f| {
            let me = module_of(f);
            let mut names: Vec<(String, String)> = Vec::new();
            for (_, n, l) in all.iter().filter(|(g, _, _)| g == *f) {
                for path in crate_paths(l) {
                    if let Some(m) = resolve(&path).filter(|m| *m != me)
                        && !names.iter().any(|(x, _)| *x == m)
                    {
                        names.push((m, format!("src/{f}:{n}: {}", l.trim())));
                    }
                }
            }
            (f.to_string(), me, names)
        })
        .collect()
}

#[test]
fn the_model_imports_nothing_but_the_clock() {
    let found: Vec<String> = graph()
        .into_iter()
        .filter(|(f, _, _)| f.starts_with("model/"))
        .flat_map(|(_, _, names)| names)
        .filter(|(m, _)| m != "clock" && !m.starts_with("model"))
        .map(|(_, line)| line)
        .collect();
    assert_none("model/ imports more than the clock", found);
}

#[test]
fn storage_and_leaf_services_never_import_the_rules() {
    let low = |f: &str| {
        ["db/", "geo/", "config/", "metrics/", "model/"]
            .iter()
            .any(|d| f.starts_with(d))
            || matches!(
                f,
                "config.rs" | "client_ip.rs" | "error.rs" | "ua.rs" | "paths.rs" | "clock.rs"
            )
    };
    let above = ["domain", "http", "web", "api", "mail", "webhooks", "state"];
    let found: Vec<String> = graph()
        .into_iter()
        .filter(|(f, _, _)| low(f))
        .flat_map(|(_, _, names)| names)
        .filter(|(m, _)| above.iter().any(|a| m.split("::").next() == Some(a)))
        .map(|(_, line)| line)
        .collect();
    assert_none("storage or a leaf service imports from above", found);
}

/// The rooms of domain/ by floor: a room imports only rooms on lower floors (and
/// itself). A new room must be given its floor here.
const FLOORS: &[(&str, u8)] = &[
    ("permissions", 1),
    ("tokens", 1),
    ("place", 1),
    ("passwords", 1),
    ("audit", 2),
    ("alerts", 3),
    ("attempts", 3),
    ("factors", 4),
    ("signin", 5),
    ("people", 6),
    ("access", 6),
    ("sessions", 6),
    ("ops", 7),
    ("oidc", 7),
];

/// The room of a module under domain/ (`domain::signin::flow` → `signin`).
fn room(module: &str) -> Option<&str> {
    module.strip_prefix("domain::")?.split("::").next()
}

fn floor(room: &str) -> u8 {
    FLOORS
        .iter()
        .find(|(r, _)| *r == room)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("domain/{room} has no floor in FLOORS (tests/layering.rs)"))
}

#[test]
fn domain_rooms_import_downward() {
    let mut found = Vec::new();
    for (_, me, names) in graph() {
        let Some(mine) = room(&me) else { continue };
        for (target, line) in names {
            let Some(theirs) = room(&target) else {
                continue;
            };
            if theirs != mine && floor(theirs) >= floor(mine) {
                found.push(format!("{mine} -> {theirs}: {line}"));
            }
        }
    }
    assert_none("a domain room imports a room on its floor or above", found);
}

#[test]
fn no_import_circle() {
    let g = graph();
    let edges: std::collections::HashMap<&str, Vec<&str>> = g
        .iter()
        .map(|(_, me, names)| (me.as_str(), names.iter().map(|(m, _)| m.as_str()).collect()))
        .collect();
    // Depth first; a module met again while still on the path closes a circle.
    fn visit<'a>(
        m: &'a str,
        edges: &std::collections::HashMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::HashSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|p| *p == m) {
            let mut circle = path[at..].to_vec();
            circle.push(m);
            circles.push(circle.join(" -> "));
            return;
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for next in edges.get(m).into_iter().flatten() {
            visit(next, edges, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = std::collections::HashSet::new();
    let mut starts: Vec<&str> = edges.keys().copied().collect();
    starts.sort();
    for m in starts {
        visit(m, &edges, &mut Vec::new(), &mut done, &mut circles);
    }
    assert_none("import circles", circles);
}

#[test]
fn the_graph_reader_reads_grouped_imports() {
    let names = crate_paths("use crate::domain::{alerts, signin::flow, self};");
    assert_eq!(
        names,
        ["domain::alerts", "domain::signin", "domain"],
        "one level of braces, first segment"
    );
    assert_eq!(module_of("domain/alerts/mod.rs"), "domain::alerts");
    assert_eq!(module_of("domain/signin/flow.rs"), "domain::signin::flow");
}
