//! Behind a real Caddy (Debian's `caddy`), with the README's `forward_auth`
//! configuration: a browser that is not signed in is sent to sign in with the original
//! URL, comes back to the application, which receives the identity headers (never a
//! client's own); a terminated session is refused on its next request; a person the
//! rules do not let in gets 403 and the "no access" page.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::process::{Child, Command, Stdio};

use common::*;
use doorman::config::{Application, Cidr};
use doorman::model::Role;

struct Caddy(Child);

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn caddy_binary() -> String {
    for candidate in ["/usr/bin/caddy", "caddy"] {
        if Command::new(candidate)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
        {
            return candidate.to_string();
        }
    }
    panic!(
        "caddy not found: install it (Debian: apt-get install caddy), or run `bash .ci/run`, which installs it"
    );
}

/// Caddy on `port` with the README's site block, its hosts replaced by this test's.
async fn start_caddy(dir: &std::path::Path, port: u16, doorman: &str, app: &str) -> Caddy {
    start_caddy_with(dir, port, doorman, app, &readme_block("caddy")).await
}

/// Caddy on `port` with `site` (a site block like the README's), its hosts replaced.
async fn start_caddy_with(
    dir: &std::path::Path,
    port: u16,
    doorman: &str,
    app: &str,
    site: &str,
) -> Caddy {
    let site = site
        .replace(
            "grafana.example.com {",
            &format!("http://127.0.0.1:{port} {{"),
        )
        .replace("doorman:9091", doorman)
        .replace("grafana:3000", app);
    let conf = format!(
        "{{\n    admin off\n    auto_https off\n    storage file_system {}\n}}\n\n{site}",
        dir.join("data").display()
    );
    let path = dir.join("Caddyfile");
    std::fs::write(&path, conf).unwrap();
    let log = std::fs::File::create(dir.join("caddy.log")).unwrap();
    let guard = Caddy(
        Command::new(caddy_binary())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start caddy"),
    );
    if !listening(port).await {
        panic!(
            "caddy did not start: {}",
            std::fs::read_to_string(dir.join("caddy.log")).unwrap_or_default()
        );
    }
    guard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_protects_an_app() {
    let app = echo_app().await;
    let port = process::free_port();
    let site = format!("http://127.0.0.1:{port}");
    let s = site.clone();
    let server = start_with(move |c| {
        // Where people reach Doorman; the test talks to its address instead.
        c.server.public_url = "http://doorman.test".into();
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        c.applications = vec![Application {
            name: "Grafana".into(),
            url: s.clone(),
            allow_emails: vec!["*@acme.test".into()],
            ..Default::default()
        }];
    })
    .await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    server.user("Hooli", "gavin@hooli.test", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    let _caddy = start_caddy(dir.path(), port, &server.addr.to_string(), &app.to_string()).await;

    // Not signed in: Caddy passes Doorman's 302 to sign in, with the original URL.
    let b = browser();
    let resp = b
        .get(format!("{site}/dashboards/1?x=2"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let to = url::Url::parse(&location).unwrap();
    assert_eq!(to.path(), "/login", "{location}");
    let rd = to
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(rd, format!("{site}/dashboards/1?x=2"));
    let location = location.replace("http://doorman.test", &server.base);

    // Sign in and come back to the application, which learns who it is.
    let resp = sign_in_at(&b, &location, "ann@acme.test").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], rd.as_str());
    let resp = b
        .get(format!("{site}/dashboards/1?x=2"))
        .header("accept", "text/html")
        .header("remote-user", "admin@evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        "user=ann@acme.test groups=user,Acme",
        "the client's own Remote-User never reaches the app"
    );

    // A client's identity header without a session gets nowhere either.
    let stranger = browser();
    let resp = stranger
        .get(format!("{site}/"))
        .header("remote-user", "ann@acme.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a script without a session is told 401");

    // Ended from elsewhere: the very next request through Caddy goes to sign in.
    let other = server.token("ann@acme.test").await;
    let (_, list) = server.get("/api/v1/sessions", &other).await;
    let theirs = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{theirs}"), &other)
        .await;
    assert_eq!(status, 204);
    let resp = b
        .get(format!("{site}/dashboards/1"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "the ended session is refused at once");

    // Signed in but not allowed by the rules: 403 and the page that says so.
    let g = browser();
    let resp = g
        .get(format!("{site}/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"]
        .to_str()
        .unwrap()
        .replace("http://doorman.test", &server.base);
    let resp = sign_in_at(&g, &location, "gavin@hooli.test").await;
    assert_eq!(resp.status(), 303);
    let resp = g
        .get(format!("{site}/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("You don't have access to <strong>Grafana</strong>"),
        "{page}"
    );
}

/// The app behind Caddy, a session of `email` signed in through it, and what the app
/// received for `path` with `headers` added by the client.
async fn through(
    b: &reqwest::Client,
    site: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = b.get(format!("{site}{path}")).header("accept", "text/html");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_lets_no_client_header_steer_the_rules_or_forge_an_identity() {
    // SPEC §19, through the README's Caddy configuration: a client's X-Original-URL does
    // not choose the application, no spelling of a protected path gets past its rules,
    // and no identity header of any family can be forged.
    use doorman::config::HeaderFamily;
    for families in [None, Some(vec![HeaderFamily::Remote])] {
        let app = identity_app().await;
        let port = process::free_port();
        let site = format!("http://127.0.0.1:{port}");
        let s = site.clone();
        let f = families.clone();
        let server = start_with(move |c| {
            c.server.public_url = "http://doorman.test".into();
            c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
            if let Some(f) = &f {
                c.server.forward_auth_headers = f.clone();
            }
            c.applications = steering_apps(&s);
        })
        .await;
        server.user("Acme", "ann@acme.test", Role::User).await;
        let dir = tempfile::tempdir().unwrap();
        // With only some families configured, `copy_headers` lists only theirs (Caddy
        // 2.6 would set a header Doorman does not send to its placeholder's text); the
        // README's `request_header -…` lines still strip every family.
        let mut site_block = readme_block("caddy");
        if families.is_some() {
            let copy = site_block
                .lines()
                .find(|l| l.trim_start().starts_with("copy_headers"))
                .unwrap()
                .to_string();
            site_block = site_block.replace(
                &copy,
                "            copy_headers Remote-User Remote-Email Remote-Name Remote-Groups",
            );
        }
        let _caddy = start_caddy_with(
            dir.path(),
            port,
            &server.addr.to_string(),
            &app.to_string(),
            &site_block,
        )
        .await;
        let b = browser();
        let resp = b
            .get(format!("{site}/x"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        let location = resp.headers()["location"]
            .to_str()
            .unwrap()
            .replace("http://doorman.test", &server.base);
        assert_eq!(
            sign_in_at(&b, &location, "ann@acme.test").await.status(),
            303
        );

        // Steering: the client's own X-Original-URL names an open application.
        let (status, _) = through(&b, &site, "/admin/x", &[]).await;
        assert_eq!(status, 403);
        let (status, body) = through(
            &b,
            &site,
            "/admin/x",
            &[("x-original-url", "http://open.example.test/")],
        )
        .await;
        assert_eq!(
            status, 403,
            "a client's X-Original-URL chose the application: {body}"
        );

        // Spellings of /admin that the app would serve as /admin.
        for path in [
            "/%61dmin/x",
            "//admin/x",
            "/admin;x/s",
            "/admin%5Cx",
            "/api%2F..%2Fadmin",
        ] {
            let (status, _) = through(&b, &site, path, &[]).await;
            assert_eq!(status, 403, "{path}");
        }

        // Forged identity headers of every family: the app sees Doorman's or none.
        let forged = forged_identity();
        let (status, body) = through(&b, &site, "/x", &forged).await;
        assert_eq!(status, 200, "{body}");
        assert_identity_from_doorman(&body, families.is_some());
    }
}
