//! The Node relying party of `tests/oidc-rp` (express-openid-connect with openid-client,
//! and `jose`): started on a free loopback port, it prints the port it listens on.
//!
//! Its routes: `/` (signs in, then the id token's claims), `/tokens` (a refresh: what
//! changed), `/userinfo` (the provider's userinfo answer), `/verify` (the id token
//! verified by `jose` against the provider's JWKS), `/callback` (the redirect URI),
//! `/backchannel-logout` (§21), `/logout`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the application is told about its provider.
pub struct RpClient<'a> {
    /// Doorman's issuer (`server.public_url`).
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// `client_secret_basic` or `client_secret_post`.
    pub client_auth: &'a str,
    /// `ES256` (Doorman's default) or `RS256`.
    pub id_token_alg: &'a str,
}

pub struct NodeRp {
    child: Child,
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

fn app_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("oidc-rp")
}

fn installed() {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        node.is_ok_and(|s| s.success()),
        "node not found: install Node.js (Debian: apt-get install nodejs npm), or run `bash .ci/run`, which installs it"
    );
    assert!(
        app_dir()
            .join("node_modules")
            .join("express-openid-connect")
            .exists(),
        "the relying party's packages are missing: run `npm ci` in tests/oidc-rp, or `bash .ci/run`, which does"
    );
}

impl NodeRp {
    /// Starts the application for `client`; waits (at most 30 s) until it listens.
    pub async fn start(client: &RpClient<'_>) -> NodeRp {
        installed();
        let mut child = Command::new("node")
            .arg("server.js")
            .current_dir(app_dir())
            .env("OIDC_ISSUER", client.issuer)
            .env("OIDC_CLIENT_ID", client.client_id)
            .env("OIDC_CLIENT_SECRET", client.client_secret)
            .env("OIDC_CLIENT_AUTH", client.client_auth)
            .env("OIDC_ID_TOKEN_ALG", client.id_token_alg)
            .env("RP_HOST", "127.0.0.1")
            .env("RP_PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start node");
        let log = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), log.clone());
        collect(child.stderr.take().unwrap(), log.clone());
        let mut rp = NodeRp {
            child,
            port: 0,
            base: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let port = rp
                .log()
                .iter()
                .find_map(|l| l.strip_prefix("listening ")?.trim().parse::<u16>().ok());
            if let Some(port) = port {
                rp.port = port;
                rp.base = format!("http://127.0.0.1:{port}");
                return rp;
            }
            if let Ok(Some(status)) = rp.child.try_wait() {
                panic!("the relying party ended ({status}):\n{}", rp.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the relying party did not listen in 30 s:\n{}",
                rp.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The redirect URI to register at Doorman.
    pub fn redirect_uri(&self) -> String {
        self.url("/callback")
    }

    /// The back-channel logout URI to register at Doorman (§21).
    pub fn backchannel_logout_uri(&self) -> String {
        self.url("/backchannel-logout")
    }

    /// The post-logout redirect URI (the application's home).
    pub fn post_logout_redirect_uri(&self) -> String {
        self.url("/")
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        self.log().join("\n")
    }
}

impl Drop for NodeRp {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push(line);
        }
    });
}
