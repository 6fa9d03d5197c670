//! Test harness: a real Doorman server on an ephemeral loopback port with its own
//! temporary SQLite file, talked to over HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod apache;
pub mod factors;
pub mod mmdb;
pub mod node_rp;
pub mod oidc;
pub mod process;
pub mod smtp;
pub mod webdriver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use doorman::domain::people::users::{self, CreateUser};
use doorman::model::{Role, User};
use doorman::{AppState, Config};
use serde_json::{Value, json};

pub const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
pub const FIREFOX_WIN: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

pub const PASSWORD: &str = "correct horse battery";

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub db_path: PathBuf,
    /// Kept alive for the server's lifetime; removed on drop.
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A configuration for tests: temp database, cheap argon2 (the real parameters are
/// checked in unit tests), everything else at its defaults.
pub fn test_config(db_path: &Path) -> Config {
    let mut c = Config::default();
    c.storage.path = db_path.to_path_buf();
    c.security.argon2.m = 1024;
    c.security.argon2.t = 1;
    c
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("doorman.sqlite3");
    let mut config = test_config(&db_path);
    tweak(&mut config);
    start_in(dir, config).await
}

/// Starts a server on `config` (whose storage path should lie in `dir`).
pub async fn start_in(dir: tempfile::TempDir, config: Config) -> TestServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    start_bound(dir, config, listener).await
}

/// [`start_with`] for a configuration that needs the server's port (e.g. a
/// `server.public_url` a browser reaches it at).
pub async fn start_with_port(tweak: impl FnOnce(&mut Config, u16)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("doorman.sqlite3");
    let mut config = test_config(&db_path);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tweak(&mut config, listener.local_addr().unwrap().port());
    start_bound(dir, config, listener).await
}

/// [`start_with`] on a listener bound beforehand: for tests whose other processes need
/// the server's address before its configuration can be written (an application that
/// registers its own port as a redirect URI).
pub async fn start_on(
    listener: std::net::TcpListener,
    tweak: impl FnOnce(&mut Config),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("doorman.sqlite3");
    let mut config = test_config(&db_path);
    tweak(&mut config);
    start_bound(dir, config, listener).await
}

async fn start_bound(
    dir: tempfile::TempDir,
    config: Config,
    listener: std::net::TcpListener,
) -> TestServer {
    config.validate().expect("test config must be valid");
    let db_path = config.storage.path.clone();
    let state = doorman::open_state(config).expect("open state");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    let task = tokio::spawn(async move {
        doorman::serve(listener, st, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    TestServer {
        addr,
        base: format!("http://{addr}"),
        state,
        db_path,
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server and waits for it; the temp dir (and database) survive for a
    /// restart with [`TestServer::restart`].
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// After [`TestServer::stop`]: waits (at most 30 s) until the background tasks
    /// (sweeper, mail worker, backups, …) have ended too. Each holds a clone of the
    /// state, so they have once this server's is the only one left.
    pub async fn wait_background_ended(&self) {
        let holders = || std::sync::Arc::strong_count(&self.state.config);
        let ended = eventually(std::time::Duration::from_secs(30), || async {
            holders() == 1
        })
        .await;
        assert!(ended, "{} holders of the state are left", holders() - 1);
    }

    /// Stops this server and starts a new one on the same database and configuration.
    pub async fn restart(mut self) -> TestServer {
        self.stop().await;
        let config = (*self.state.config).clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        start_in(dir, config).await
    }

    /// Creates a user (and account) directly through the domain.
    pub async fn user(&self, account: &str, email: &str, role: Role) -> User {
        users::create(
            &self.state,
            CreateUser {
                account: account.into(),
                email: email.into(),
                name: email.split('@').next().unwrap().into(),
                role,
                password: PASSWORD.into(),
            },
        )
        .await
        .unwrap()
    }

    /// Signs in through the API; returns the JSON body.
    pub async fn api_login(&self, email: &str, ua: &str) -> Value {
        self.api_login_with(email, ua, json!({})).await
    }

    pub async fn api_login_with(&self, email: &str, ua: &str, extra: Value) -> Value {
        let mut body = json!({"email": email, "password": PASSWORD});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let resp = client()
            .post(self.url("/api/v1/login"))
            .header("user-agent", ua)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "login of {email} failed");
        resp.json().await.unwrap()
    }

    /// Signs in and returns just the token.
    pub async fn token(&self, email: &str) -> String {
        self.api_login(email, CHROME_MAC).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// GET with a bearer token; returns (status, JSON body or Null).
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let resp = client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        let resp = client()
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = client()
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = client()
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        status_json(resp).await
    }

    /// Runs SQL against the server's database (read-only checks in tests).
    pub fn sql_i64(&self, sql: &str) -> i64 {
        let c = rusqlite::Connection::open(&self.db_path).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client that does not follow redirects, so tests can look at them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .user_agent(CHROME_MAC)
        .build()
        .unwrap()
}

pub async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// The value of `name="…" value="…"` in a page.
pub fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Signs a browser in through the `/login` form; returns the page it lands on.
pub async fn browser_login(
    server: &TestServer,
    browser: &reqwest::Client,
    email: &str,
) -> reqwest::Response {
    let page = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").expect("csrf field on login page");
    let resp = browser
        .post(server.url("/login"))
        .form(&[
            ("email", email),
            ("password", PASSWORD),
            ("csrf", &csrf),
            ("rd", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "browser login of {email}");
    resp
}

// ---- sign-in from a given client address (needs `server.trusted_proxies` to cover
// 127.0.0.1, so that `X-Forwarded-For` is believed) ----

impl TestServer {
    /// POST /api/v1/login with any password, an optional `X-Forwarded-For` and an optional
    /// `device_id`; returns (status, JSON body or Null).
    pub async fn login_raw(
        &self,
        email: &str,
        password: &str,
        ua: &str,
        xff: Option<&str>,
        device_id: Option<&str>,
    ) -> (u16, Value) {
        let mut body = json!({"email": email, "password": password});
        if let Some(d) = device_id {
            body["device_id"] = json!(d);
        }
        let mut req = client()
            .post(self.url("/api/v1/login"))
            .header("user-agent", ua)
            .json(&body);
        if let Some(ip) = xff {
            req = req.header("x-forwarded-for", ip);
        }
        status_json(req.send().await.unwrap()).await
    }

    /// Signs in with the right password from `xff` (None: the loopback peer), presenting
    /// `device_id` when given; asserts 201 and returns the JSON body.
    pub async fn api_login_from(
        &self,
        email: &str,
        ua: &str,
        xff: Option<&str>,
        device_id: Option<&str>,
    ) -> Value {
        let (status, body) = self.login_raw(email, PASSWORD, ua, xff, device_id).await;
        assert_eq!(status, 201, "login of {email} from {xff:?} failed: {body}");
        body
    }

    /// Runs a statement that changes the database; returns the rows changed.
    pub fn sql_exec(&self, sql: &str) -> usize {
        let c = rusqlite::Connection::open(&self.db_path).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        c.execute(sql, []).unwrap()
    }

    /// A single text value (None for SQL NULL or no row).
    pub fn sql_text(&self, sql: &str) -> Option<String> {
        use rusqlite::OptionalExtension;
        let c = rusqlite::Connection::open(&self.db_path).unwrap();
        c.query_row(sql, [], |r| r.get::<_, Option<String>>(0))
            .optional()
            .unwrap()
            .flatten()
    }
}

/// A signed-in API session: its secret token and public id.
#[derive(Clone, Debug)]
pub struct Sess {
    pub token: String,
    pub id: String,
}

/// Signs in through the API as `email` with User-Agent `ua`.
pub async fn login(s: &TestServer, email: &str, ua: &str) -> Sess {
    login_with(s, email, ua, json!({})).await
}

/// [`login`] with extra fields in the sign-in body (e.g. `device_id`).
pub async fn login_with(s: &TestServer, email: &str, ua: &str, extra: Value) -> Sess {
    let body = s.api_login_with(email, ua, extra).await;
    Sess {
        token: body["token"].as_str().unwrap().to_string(),
        id: body["session"]["id"].as_str().unwrap().to_string(),
    }
}

/// Does the token still authenticate? (GET /me: 200 yes, 401 no; anything else fails.)
pub async fn alive(s: &TestServer, token: &str) -> bool {
    let (status, body) = s.get("/api/v1/me", token).await;
    match status {
        200 => true,
        401 => false,
        other => panic!("GET /me answered {other}: {body}"),
    }
}

/// A page answer, read once.
pub struct Page {
    pub status: u16,
    pub location: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

pub async fn read(resp: reqwest::Response) -> Page {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let location = headers
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    Page {
        status,
        location,
        headers,
        body: resp.text().await.unwrap(),
    }
}

/// Posts a form with the browser `b`.
pub async fn post_form(
    b: &reqwest::Client,
    s: &TestServer,
    path: &str,
    form: &[(&str, &str)],
) -> Page {
    read(b.post(s.url(path)).form(form).send().await.unwrap()).await
}

/// The first code block of README.md in `lang` (```lang … ```): the proxy tests run the
/// configurations the README gives, so the two cannot drift apart.
pub fn readme_block(lang: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let start = readme
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no ```{lang} block in README.md"))
        + lang.len()
        + 4;
    let end = readme[start..].find("```").expect("closed block") + start;
    readme[start..end].to_string()
}

/// A protected application for the proxy tests: answers 200 with the identity headers
/// the proxy passed on (`user=… groups=…`), or `nobody`.
pub async fn echo_app() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let header = |name: &str| {
                    req.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_string())
                        })
                        .unwrap_or_else(|| "nobody".into())
                };
                let body = format!(
                    "user={} groups={}",
                    header("remote-user"),
                    header("remote-groups")
                );
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

/// Waits until `done` answers true, asking again every 50 ms for at most `within`;
/// whether it did. For what the server does in the background (a worker's run, a mail
/// sent, a row written): the test then asserts what it waited for.
pub async fn eventually<F, Fut>(within: std::time::Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if done().await {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether something listens on loopback `port` within 10 seconds.
pub async fn listening(port: u16) -> bool {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// Signs a browser in on the sign-in page at `location` (which may carry `rd`); returns
/// the answer to the form's POST.
pub async fn sign_in_at(b: &reqwest::Client, location: &str, email: &str) -> reqwest::Response {
    let page = b.get(location).send().await.unwrap().text().await.unwrap();
    let csrf = form_value(&page, "csrf").expect("sign-in form");
    let rd = form_value(&page, "rd").unwrap_or_default();
    let login = location.split("/login").next().unwrap().to_string() + "/login";
    b.post(login)
        .form(&[
            ("email", email),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
            ("rd", rd.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// Every identity header Doorman can send, in the three families (SPEC §16).
pub const IDENTITY_HEADERS: [&str; 10] = [
    "remote-user",
    "remote-email",
    "remote-name",
    "remote-groups",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-doorman-user",
    "x-doorman-email",
    "x-doorman-session",
];

/// A protected application for the forged-header tests: answers 200 with one line per
/// identity header it received (`name: value`, every value of a repeated header), so a
/// test sees exactly what the proxy let through.
pub async fn identity_app() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 16384];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                let mut body = String::new();
                for line in req.lines().skip(1) {
                    if let Some((k, v)) = line.split_once(':')
                        && IDENTITY_HEADERS.contains(&k.trim().to_ascii_lowercase().as_str())
                    {
                        body.push_str(&format!(
                            "{}: {}\n",
                            k.trim().to_ascii_lowercase(),
                            v.trim()
                        ));
                    }
                }
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

/// The identity headers an [`identity_app`] answer reports, sorted, as `name: value`.
pub fn identity_lines(body: &str) -> Vec<String> {
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// The applications of the steering tests behind a real proxy at `site`: `/admin` for
/// admins only, and an open application elsewhere whose address a client might name.
pub fn steering_apps(site: &str) -> Vec<doorman::config::Application> {
    vec![
        doorman::config::Application {
            name: "Admin".into(),
            url: format!("{site}/admin"),
            allow_roles: vec!["admin".into()],
            ..Default::default()
        },
        doorman::config::Application {
            name: "Open".into(),
            url: "http://open.example.test".into(),
            ..Default::default()
        },
    ]
}

/// Forged values (`evil@evil.test`) of every identity header.
pub fn forged_identity() -> Vec<(&'static str, &'static str)> {
    IDENTITY_HEADERS
        .iter()
        .map(|h| (*h, "evil@evil.test"))
        .collect()
}

/// Asserts that an [`identity_app`] answer holds Doorman's identity for ann@acme.test in
/// the configured families (`None`: all three; `Some`: the `remote` family only) and
/// nothing forged.
pub fn assert_identity_from_doorman(body: &str, remote_only: bool) {
    assert!(
        !body.contains("evil"),
        "a forged header reached the app: {body}"
    );
    let lines = identity_lines(body);
    let expected: &[&str] = if remote_only {
        &IDENTITY_HEADERS[..4]
    } else {
        &IDENTITY_HEADERS
    };
    for h in IDENTITY_HEADERS {
        let n = lines
            .iter()
            .filter(|l| l.starts_with(&format!("{h}: ")))
            .count();
        assert_eq!(n, usize::from(expected.contains(&h)), "{h} in {body}");
    }
    assert!(
        lines.contains(&"remote-user: ann@acme.test".to_string()),
        "{body}"
    );
}

/// A new OpenID Connect client secret and its `client_secret_hash` (`sha256:<hex>`), as
/// `doorman oidc secret` prints them.
pub fn oidc_secret() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let digest = sha2::Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (secret, format!("sha256:{hex}"))
}
