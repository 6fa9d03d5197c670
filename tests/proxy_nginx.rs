//! Behind a real reverse proxy: nginx with `auth_request` to `/auth/verify` protects a
//! small upstream. A signed-in browser passes; a terminated session is sent to sign-in on
//! its next request; Doorman records the client address nginx forwarded.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::*;
use doorman::config::{Application, Cidr};
use doorman::model::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The protected application: answers with the user nginx passed on.
async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let user = req
                    .lines()
                    .find_map(|l| l.strip_prefix("X-User: "))
                    .unwrap_or("nobody")
                    .trim()
                    .to_string();
                let body = format!("hello {user}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary() -> String {
    for candidate in ["/usr/sbin/nginx", "nginx"] {
        if Command::new(candidate)
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_ok()
        {
            return candidate.to_string();
        }
    }
    panic!(
        "nginx not found: install it (Debian: apt-get install nginx), or run `bash .ci/run`, which installs it"
    );
}

/// Runs nginx from `dir` with `server` (one or more `server` blocks) and waits until it
/// listens on `port`.
async fn run_nginx(dir: &std::path::Path, port: u16, server: &str) -> Nginx {
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{server}
}}
"#,
        dir = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let guard = Nginx(
        Command::new(nginx_binary())
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx"),
    );
    if !listening(port).await {
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }
    guard
}

async fn start_nginx(
    dir: &std::path::Path,
    port: u16,
    doorman: SocketAddr,
    app: SocketAddr,
) -> Nginx {
    let server = format!(
        r#"
    server {{
        listen 127.0.0.1:{port};

        # Doorman itself (sign-in page and API) behind the same proxy.
        location ~ ^/(login|logout|api/|assets/|settings/) {{
            proxy_pass http://{doorman};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}

        # The protected application.
        location /app/ {{
            auth_request /_doorman_verify;
            auth_request_set $doorman_email $upstream_http_x_doorman_email;
            proxy_set_header X-User $doorman_email;
            proxy_pass http://{app};
            error_page 401 = @signin;
        }}

        location = /_doorman_verify {{
            internal;
            proxy_pass http://{doorman}/auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}

        location @signin {{
            return 302 /login?rd=$scheme://$http_host$request_uri;
        }}
    }}
"#
    );
    run_nginx(dir, port, &server).await
}

/// A browser-like client whose connections come from 127.0.0.5, so the address nginx
/// forwards differs from nginx's own 127.0.0.1.
fn browser_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .user_agent(CHROME_MAC)
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_protects_an_app() {
    let app = upstream().await;
    let port = process::free_port();
    let proxy = format!("http://127.0.0.1:{port}");
    let p = proxy.clone();
    let server = start_with(move |c| {
        c.server.public_url = p.clone();
        c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
        c.applications = vec![Application {
            name: "Wiki".into(),
            url: format!("{p}/app"),
            ..Default::default()
        }];
    })
    .await;
    server.user("Acme", "ann@acme.test", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    let _nginx = start_nginx(dir.path(), port, server.addr, app).await;

    // Not signed in: nginx sends the browser to Doorman's sign-in with a return address.
    let b = browser_from([127, 0, 0, 5]);
    let resp = b.get(format!("{proxy}/app/page")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let location = location
        .strip_prefix(&proxy)
        .unwrap_or(&location)
        .to_string();
    assert!(location.starts_with("/login?rd="), "{location}");

    // Sign in through nginx, with a forged X-Forwarded-For that must not be believed.
    let page = b
        .get(format!("{proxy}{location}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let rd = form_value(&page, "rd").unwrap();
    assert_eq!(rd, format!("{proxy}/app/page"));
    let resp = b
        .post(format!("{proxy}/login"))
        .header("x-forwarded-for", "6.6.6.6")
        .form(&[
            ("email", "ann@acme.test"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
            ("rd", rd.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        format!("{proxy}/app/page").as_str()
    );

    // The signed-in browser passes, and the app learns who it is.
    let resp = b.get(format!("{proxy}/app/page")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello ann@acme.test");

    // Doorman recorded the address nginx forwarded, and the application.
    let ip = server
        .sql_i64("SELECT count(*) FROM sessions WHERE ip = '127.0.0.5' AND application = 'Wiki'");
    assert_eq!(
        ip, 1,
        "session recorded with the client address nginx forwarded"
    );
    assert_eq!(
        server.sql_i64("SELECT count(*) FROM sessions WHERE ip = '6.6.6.6'"),
        0
    );

    // Terminate it from another device: the next request through nginx goes to sign-in.
    let other = server.token("ann@acme.test").await;
    let (_, list) = server.get("/api/v1/sessions", &other).await;
    let browser_session = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["application"] == "Wiki")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{browser_session}"), &other)
        .await;
    assert_eq!(status, 204);
    let resp = b.get(format!("{proxy}/app/page")).send().await.unwrap();
    assert_eq!(resp.status(), 302, "terminated session is refused at once");
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{proxy}/login")),
        "{location}"
    );
}

/// nginx with the README's configuration (Authelia-style `/api/authz/auth-request`),
/// plus a location asking oauth2-proxy's `/oauth2/auth`.
async fn start_readme_nginx(
    dir: &std::path::Path,
    port: u16,
    doorman: SocketAddr,
    app: SocketAddr,
) -> Nginx {
    let server = readme_block("nginx")
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
        .replace("http://grafana:3000", &format!("http://{app}"))
        .replace("http://doorman:9091", &format!("http://{doorman}"))
        .replace("https://doorman.example.com", &format!("http://{doorman}"));
    let oauth2 = format!(
        r#"
    location /o2/ {{
        auth_request /_o2;
        proxy_pass http://{app};
    }}
    location = /_o2 {{
        internal;
        proxy_pass http://{doorman}/oauth2/auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }}
}}"#
    );
    // The oauth2-proxy location goes inside the README's server block.
    let server = match server.trim_end().strip_suffix('}') {
        Some(open) => format!("{open}{oauth2}"),
        None => panic!("the README's nginx block is not one server block"),
    };
    run_nginx(dir, port, &server).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_the_readme_configuration_protects_an_app() {
    let app = echo_app().await;
    let port = process::free_port();
    let site = format!("http://127.0.0.1:{port}");
    let s = site.clone();
    let server = start_with(move |c| {
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
    let _nginx = start_readme_nginx(dir.path(), port, server.addr, app).await;

    // Not signed in: nginx turns Doorman's 401 + Location into a 302 to sign in.
    let b = browser();
    let resp = b.get(format!("{site}/d/1?x=2")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let to = url::Url::parse(&location).unwrap();
    assert_eq!(to.path(), "/login");
    let rd = to
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(rd, format!("{site}/d/1?x=2"));
    let location = location.replace("http://localhost:8080", &server.base);

    let resp = sign_in_at(&b, &location, "ann@acme.test").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], rd.as_str());
    let resp = b
        .get(format!("{site}/d/1?x=2"))
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

    // oauth2-proxy's path through nginx: 202 passes, 401 refuses.
    let resp = b.get(format!("{site}/o2/x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = browser().get(format!("{site}/o2/x")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // Ended: refused on the very next request.
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
    let resp = b.get(format!("{site}/d/1")).send().await.unwrap();
    assert_eq!(resp.status(), 302);

    // Not allowed by the rules: nginx sends the 403 to Doorman's "no access" page.
    let g = browser();
    let resp = g.get(format!("{site}/")).send().await.unwrap();
    let location = resp.headers()["location"]
        .to_str()
        .unwrap()
        .replace("http://localhost:8080", &server.base);
    assert_eq!(
        sign_in_at(&g, &location, "gavin@hooli.test").await.status(),
        303
    );
    let resp = g.get(format!("{site}/")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let denied = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(denied.ends_with("/denied?app=Grafana"), "{denied}");
    let resp = g.get(&denied).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("You don't have access to <strong>Grafana</strong>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_lets_no_client_header_steer_the_rules_or_forge_an_identity() {
    // SPEC §19, through the README's nginx configuration.
    use doorman::config::HeaderFamily;
    for families in [None, Some(vec![HeaderFamily::Remote])] {
        let app = identity_app().await;
        let port = process::free_port();
        let site = format!("http://127.0.0.1:{port}");
        let s = site.clone();
        let f = families.clone();
        let server = start_with(move |c| {
            c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
            if let Some(f) = &f {
                c.server.forward_auth_headers = f.clone();
            }
            c.applications = steering_apps(&s);
        })
        .await;
        server.user("Acme", "ann@acme.test", Role::User).await;
        let dir = tempfile::tempdir().unwrap();
        let _nginx = start_readme_nginx(dir.path(), port, server.addr, app).await;
        let b = browser();
        let resp = b.get(format!("{site}/x")).send().await.unwrap();
        assert_eq!(resp.status(), 302);
        let location = resp.headers()["location"]
            .to_str()
            .unwrap()
            .replace("http://localhost:8080", &server.base);
        assert_eq!(
            sign_in_at(&b, &location, "ann@acme.test").await.status(),
            303
        );
        let get = |path: &'static str, headers: Vec<(&'static str, &'static str)>| {
            let mut req = b.get(format!("{site}{path}"));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap())
            }
        };

        // Refused (nginx sends a 403 to the "no access" page with a 302).
        let refused = |status: u16| status == 302 || status == 403;
        let (status, _) = get("/admin/x", vec![]).await;
        assert!(refused(status), "{status}");
        let (status, _) = get(
            "/admin/x",
            vec![
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "open.example.test"),
                ("x-forwarded-uri", "/"),
                ("x-original-url", "http://open.example.test/"),
            ],
        )
        .await;
        assert!(
            refused(status),
            "the client's headers chose the application: {status}"
        );
        for path in [
            "/%61dmin/x",
            "//admin/x",
            "/admin;x/s",
            "/admin%5Cx",
            "/x/..//admin/",
        ] {
            let (status, body) = get(path, vec![]).await;
            assert!(refused(status), "{path}: {status} {body}");
        }

        // Forged identity headers of every family: the app sees Doorman's or none.
        let forged = forged_identity();
        let (status, body) = get("/x", forged).await;
        assert_eq!(status, 200, "{body}");
        assert_identity_from_doorman(&body, families.is_some());
    }
}
