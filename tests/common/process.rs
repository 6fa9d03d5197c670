//! The real `doorman` binary as a child process, for tests that need what an in-process
//! server cannot give: `kill -9`, a restart on the same files, its log lines.
//!
//! Configured only through `DOORMAN_*` environment variables (cheap argon2, a high
//! failure limit, a fresh loopback port), run in the database's directory so no stray
//! `doorman.toml` is read. Its stdout and stderr are collected line by line. The child
//! is killed when the value is dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{PASSWORD, client, status_json};

/// Where `free_port` looks first: from here up to the kernel's ephemeral range, which is
/// where every port-0 listener and every outgoing connection of the test run gets its port.
const CHILD_PORTS_FROM: u16 = 20_000;

/// A loopback port for a child process (Doorman, nginx, Caddy, Apache) to listen on, that
/// nothing else in the test run takes before the child binds it, nor while it restarts.
///
/// A port let go and bound again later is open to whatever asks the kernel for a port in
/// between; so the port is chosen outside the ephemeral range (below it, or above it when
/// that leaves more room) and claimed against the other test processes by a lock on a
/// file named after it, held until this process ends.
pub fn free_port() -> u16 {
    static CLAIMED: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<u16>().ok())
        .collect::<Vec<_>>();
    let (ephemeral_from, ephemeral_to) = match range[..] {
        [from, to] => (from, to),
        _ => (32_768, 60_999),
    };
    let below = (
        CHILD_PORTS_FROM,
        ephemeral_from.saturating_sub(CHILD_PORTS_FROM),
    );
    let above = (ephemeral_to.saturating_add(1), u16::MAX - ephemeral_to);
    let (first, span) = if below.1 >= above.1 { below } else { above };
    assert!(
        span >= 1_000,
        "the ephemeral range ({ephemeral_from}-{ephemeral_to}) leaves too few ports for the tests' own"
    );
    let dir = std::env::temp_dir().join("doorman-test-ports");
    std::fs::create_dir_all(&dir).unwrap();
    let mut claimed = CLAIMED.lock().unwrap();
    // Processes start looking at different places, so they seldom meet on a lock.
    let start = (std::process::id() as usize * 7_919 + claimed.len()) % span as usize;
    for i in 0..span as usize {
        let port = first + ((start + i) % span as usize) as u16;
        let lock = std::fs::File::create(dir.join(port.to_string())).unwrap();
        if lock.try_lock().is_ok() && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            claimed.push(lock);
            return port;
        }
    }
    panic!(
        "no free loopback port from {first} to {}",
        first as usize + span as usize - 1
    );
}

/// A loopback port held by this process for a listener it starts later: bound but not
/// listening, so a connection to it is refused, as by a receiver that is down, and no
/// other socket can take the port in the meantime.
pub struct HeldPort(socket2::Socket);

impl HeldPort {
    pub fn new() -> HeldPort {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        // No SO_REUSEADDR: a socket that sets it may share a port with one not listening.
        let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        socket.bind(&any.into()).unwrap();
        HeldPort(socket)
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().as_socket().unwrap().port()
    }

    /// Starts listening on the held port.
    pub fn listen(self) -> std::net::TcpListener {
        self.0.listen(128).unwrap();
        self.0.into()
    }
}

/// The settings every child gets: its database, cheap argon2, no rate limiting in the way.
pub fn base_env(db_path: &Path) -> Vec<(String, String)> {
    [
        ("DOORMAN_STORAGE__PATH", db_path.display().to_string()),
        ("DOORMAN_SECURITY__ARGON2__M", "1024".into()),
        ("DOORMAN_SECURITY__ARGON2__T", "1".into()),
        (
            "DOORMAN_SECURITY__LOGIN_RATE_LIMIT__FAILURES",
            "100000".into(),
        ),
        ("RUST_LOG", "info".into()),
        ("NO_COLOR", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn command(db_path: &Path, extra: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doorman"));
    // Nothing from the caller's environment may change the configuration.
    for (k, _) in std::env::vars() {
        if k.starts_with("DOORMAN_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(base_env(db_path));
    cmd.envs(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    cmd.current_dir(db_path.parent().unwrap());
    cmd
}

/// `doorman user add --email E --account A --password-stdin` with [`PASSWORD`].
pub fn add_user(db_path: &Path, email: &str, account: &str) {
    let mut child = command(db_path, &[])
        .args([
            "user",
            "add",
            "--email",
            email,
            "--account",
            account,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "doorman user add {email}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Doorman {
    /// Behind a lock so a test can kill the process while requests are in flight.
    child: Mutex<Option<Child>>,
    pub port: u16,
    pub base: String,
    pub db_path: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Doorman {
    /// Starts `doorman serve` on `db_path` with `extra` settings and waits (at most 30 s)
    /// until `/healthz` answers 200.
    pub async fn start(db_path: &Path, extra: &[(&str, String)]) -> Doorman {
        let port = free_port();
        let mut env: Vec<(&str, String)> =
            vec![("DOORMAN_SERVER__LISTEN", format!("127.0.0.1:{port}"))];
        env.extend(extra.iter().cloned());
        let mut child = command(db_path, &env)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), log.clone());
        collect(child.stderr.take().unwrap(), log.clone());
        let d = Doorman {
            child: Mutex::new(Some(child)),
            port,
            base: format!("http://127.0.0.1:{port}"),
            db_path: db_path.to_path_buf(),
            log,
        };
        d.wait_ready(Duration::from_secs(30)).await;
        d
    }

    async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = match self.child.lock().unwrap().as_mut() {
                Some(child) => child.try_wait().unwrap(),
                None => panic!("doorman was killed before it was ready"),
            };
            if let Some(status) = exited {
                panic!("doorman exited at start ({status}):\n{}", self.log_text());
            }
            let probe = client()
                .get(self.url("/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(resp) = probe
                && resp.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "doorman did not become ready in {timeout:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed or closed.
    pub fn kill9(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Every line the process printed so far (stdout and stderr).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        self.log().join("\n")
    }

    /// How many log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().iter().filter(|l| l.contains(needle)).count()
    }

    /// POST /api/v1/login as `email` with [`PASSWORD`], an optional `device_id` and an
    /// optional `X-Forwarded-For`; (status, JSON). Err when no answer came (the server died).
    pub async fn login(
        &self,
        email: &str,
        device_id: Option<&str>,
        xff: Option<&str>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut body = json!({"email": email, "password": PASSWORD});
        if let Some(d) = device_id {
            body["device_id"] = json!(d);
        }
        let mut req = client()
            .post(self.url("/api/v1/login"))
            .header("user-agent", super::CHROME_MAC)
            .timeout(Duration::from_secs(10))
            .json(&body);
        if let Some(ip) = xff {
            req = req.header("x-forwarded-for", ip);
        }
        let resp = req.send().await?;
        Ok(status_json(resp).await)
    }

    /// GET with a bearer token; (status, JSON or Null).
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let resp = client()
            .get(self.url(path))
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        status_json(resp).await
    }

    /// DELETE with a bearer token; Err when no answer came.
    pub async fn delete(&self, path: &str, token: &str) -> Result<(u16, Value), reqwest::Error> {
        let resp = client()
            .delete(self.url(path))
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        Ok(status_json(resp).await)
    }
}

impl Drop for Doorman {
    fn drop(&mut self) {
        let child = match self.child.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
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
