//! A small W3C WebDriver client over reqwest, driving a real headless Chromium through
//! chromedriver. Only what the UI tests use.
//!
//! Every read waits for what it reads: looking an element up retries until it is there
//! (bounded by [`WAIT`]), an action on an element that went stale is done again on the
//! element found anew, and a click that leaves the page (a link, a form's submit button)
//! returns only once the next page has replaced the old one and finished loading. A test
//! can therefore read the page right after a click.
//!
//! Nothing outlives a test, passing or failing: a [`Browser`] ends its session when it is
//! dropped (a panicking test drops it while unwinding), and a [`Driver`] kills its
//! chromedriver together with every browser it started (they share a process group).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long any wait for the browser lasts before the test fails: far more than a page
/// takes on a loaded machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// When set, its value is part of every browser profile's path, so a test can tell this
/// run's browser processes (each carries the path on its command line) from any other.
pub const RUN_MARK_ENV: &str = "TEST_BROWSER_RUN";

/// A chromedriver process on a free loopback port, leader of its own process group, in
/// which it starts the browsers; the whole group is killed on drop, or by a watchdog in
/// the group once this process is gone.
pub struct Driver {
    child: Child,
    /// Kills the group should this process end without dropping the driver (killed,
    /// or interrupted: the group does not get the terminal's Ctrl-C).
    watchdog: Option<Child>,
    pub base: String,
    http: reqwest::Client,
}

fn find(cmd: &str, fallbacks: &[&str]) -> String {
    for candidate in std::iter::once(cmd).chain(fallbacks.iter().copied()) {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
        {
            return candidate.to_string();
        }
    }
    panic!(
        "{cmd} not found: install Chromium and its driver (Debian: apt-get install chromium chromium-driver), or run `bash .ci/run`, which installs them"
    );
}

impl Driver {
    pub async fn start() -> Driver {
        let exe = find("chromedriver", &["/usr/bin/chromedriver"]);
        let port = super::process::free_port();
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, inherited by the browsers it starts: see `Drop`.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let watchdog = Command::new("sh")
            .args([
                "-c",
                r#"while kill -0 "$0" 2>/dev/null; do sleep 1; done; kill -9 "-$1""#,
                &std::process::id().to_string(),
                &child.id().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // In chromedriver's group, so it ends with it.
            .process_group(child.id() as i32)
            .spawn()
            .ok();
        let driver = Driver {
            child,
            watchdog,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && r.status().is_success()
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready in {WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// A new browser with its own empty profile (so its own cookies).
    pub async fn browser(&self) -> Browser {
        self.browser_with(json!({}), "1280,900").await
    }

    /// A browser whose window is `width` CSS pixels wide (and 900 high).
    pub async fn browser_wide(&self, width: u32) -> Browser {
        self.browser_with(json!({}), &format!("{width},900")).await
    }

    /// A browser that emulates a phone `width` CSS pixels wide (Chromium's mobile
    /// emulation: its viewport, pixel ratio, touch and an iPhone's User-Agent).
    pub async fn phone(&self, width: u32) -> Browser {
        let emulation = json!({
            "deviceMetrics": {"width": width, "height": 844, "pixelRatio": 2.0, "touch": true},
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
        });
        self.browser_with(emulation, &format!("{width},844")).await
    }

    async fn browser_with(&self, mobile_emulation: Value, window: &str) -> Browser {
        let prefix = match std::env::var(RUN_MARK_ENV) {
            Ok(mark) => format!("doorman-browser-{mark}-"),
            Err(_) => "doorman-browser-".to_string(),
        };
        let profile = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
        let chromium = find(
            "chromium",
            &["/usr/bin/chromium", "chromium-browser", "google-chrome"],
        );
        let mut caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // A dialog stays open until the test answers it; a command meanwhile fails
            // with "unexpected alert open" instead of dismissing it.
            "unhandledPromptBehavior": "ignore",
            "timeouts": {"pageLoad": WAIT.as_millis() as u64 * 2, "script": WAIT.as_millis() as u64},
            "goog:chromeOptions": {
                "binary": which(&chromium),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", format!("--window-size={window}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        if mobile_emulation.as_object().is_some_and(|o| !o.is_empty()) {
            caps["capabilities"]["alwaysMatch"]["goog:chromeOptions"]["mobileEmulation"] =
                mobile_emulation;
        }
        let resp: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {resp}"))
            .to_string();
        Browser {
            url: format!("{}/session/{id}", self.base),
            driver_addr: self.base.trim_start_matches("http://").to_string(),
            session_path: format!("/session/{id}"),
            http: self.http.clone(),
            pending_navigation: Mutex::new(None),
            ended: false,
            _profile: profile,
        }
    }
}

fn which(cmd: &str) -> String {
    if cmd.starts_with('/') {
        return cmd.to_string();
    }
    let out = Command::new("which").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads the group (its pid is the group id); Chromium and all its
        // helpers are in it too, and would outlive a chromedriver killed alone.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// The processes whose command line or environment contains `mark` (e.g. a
/// [`RUN_MARK_ENV`] value): pid and command name.
pub fn processes_with(mark: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let has = |file: &str| {
            std::fs::read(entry.path().join(file))
                .map(|bytes| String::from_utf8_lossy(&bytes).contains(mark))
                .unwrap_or(false)
        };
        if has("cmdline") || has("environ") {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_string()));
        }
    }
    found
}

/// A WebDriver error answer: its `error` code and message.
#[derive(Debug)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl WdError {
    /// An element that was there a moment ago, in a page being replaced: look again.
    fn transient(&self) -> bool {
        matches!(
            self.error.as_str(),
            "stale element reference"
                | "no such element"
                | "element not interactable"
                | "element click intercepted"
        )
    }

    /// The element's document is gone (a new page replaced it).
    fn gone(&self) -> bool {
        matches!(
            self.error.as_str(),
            "stale element reference" | "no such element"
        )
    }

    fn dialog_open(&self) -> bool {
        self.error == "unexpected alert open"
    }
}

/// Is the element a link or a form's submit button that will take the browser to
/// another page when clicked? (Buttons of type "button", e.g. the passkey ceremonies,
/// only run script; a form that fails its own validation is not sent.)
const LEAVES_PAGE: &str = r##"
const el = arguments[0];
const link = el.closest("a[href]");
if (link) {
  const href = link.getAttribute("href");
  return !href.startsWith("#") && !href.startsWith("javascript:") && link.target !== "_blank";
}
const button = el.closest("button, input[type=submit], input[type=image]");
if (!button || button.disabled || button.type !== "submit" && button.type !== "image") {
  return false;
}
const form = button.form;
if (!form) {
  return false;
}
return form.noValidate || button.formNoValidate || form.checkValidity();
"##;

pub struct Browser {
    url: String,
    /// chromedriver's host:port and this session's path, for ending it on drop.
    driver_addr: String,
    session_path: String,
    http: reqwest::Client,
    /// The root element of the page a click left while a dialog it opened (a
    /// `data-confirm` form) holds the navigation back; [`Browser::accept_dialog`] then
    /// waits for the next page.
    pending_navigation: Mutex<Option<String>>,
    ended: bool,
    _profile: tempfile::TempDir,
}

fn element(id: &str) -> Value {
    json!({ ELEMENT_KEY: id })
}

impl Browser {
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        match v["value"].get("error") {
            Some(err) => Err(WdError {
                error: err.as_str().unwrap_or_default().to_string(),
                message: v["value"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }),
            None => Ok(v["value"].clone()),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {path}: {e}"),
        }
    }

    async fn script(&self, js: &str, args: Vec<Value>) -> Result<Value, WdError> {
        self.try_call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": js, "args": args})),
        )
        .await
    }

    /// Runs `js` in the page and returns its value.
    pub async fn eval(&self, js: &str, args: Vec<Value>) -> Value {
        match self.script(js, args).await {
            Ok(v) => v,
            Err(e) => panic!("script failed: {e}"),
        }
    }

    /// Runs `js` in the page as an asynchronous script: it ends by calling its last
    /// argument (`arguments[arguments.length - 1]`) with the value returned here.
    pub async fn eval_async(&self, js: &str, args: Vec<Value>) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": js, "args": args})),
        )
        .await
    }

    /// Opens `url` and returns once its page has loaded.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
        self.wait_loaded().await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The first element matching `css`, waiting (at most [`WAIT`]) for one to appear.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .try_call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await
            {
                Ok(v) => return v[ELEMENT_KEY].as_str().unwrap().to_string(),
                Err(e) if e.transient() && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await
                }
                Err(e) => panic!(
                    "no element {css} within {WAIT:?} ({e}) on {}:\n{}",
                    self.current_url().await,
                    self.source().await
                ),
            }
        }
    }

    /// How many elements match `css` now (no waiting: zero is an answer).
    pub async fn count(&self, css: &str) -> usize {
        let v = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array().map(Vec::len).unwrap_or(0)
    }

    /// Does `command` (e.g. `/text`) to the element matching `css`, finding it again if
    /// it went stale or was not ready for it yet.
    async fn on_element(
        &self,
        css: &str,
        method: reqwest::Method,
        command: &str,
        body: Option<Value>,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let el = self.find(css).await;
            match self
                .try_call(
                    method.clone(),
                    &format!("/element/{el}{command}"),
                    body.clone(),
                )
                .await
            {
                Ok(v) => return v,
                Err(e) if e.transient() && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await
                }
                Err(e) => panic!("WebDriver {command} on {css}: {e}"),
            }
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, reqwest::Method::GET, "/text", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(
            css,
            reqwest::Method::POST,
            "/value",
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn clear(&self, css: &str) {
        self.on_element(css, reqwest::Method::POST, "/clear", Some(json!({})))
            .await;
    }

    /// Clicks the element matching `css`. When that leaves the page (a link, a form's
    /// submit button), returns only once the next page has replaced this one and has
    /// loaded, so whatever the test reads next is the new page; when the click opened a
    /// dialog instead, [`Browser::accept_dialog`] does that wait.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let el = self.find(css).await;
            let leaves = match self.script(LEAVES_PAGE, vec![element(&el)]).await {
                Ok(v) => v.as_bool().unwrap_or(false),
                Err(e) if e.transient() && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Err(e) => panic!("WebDriver click on {css}: {e}"),
            };
            let old_root = if leaves {
                Some(self.root().await)
            } else {
                None
            };
            match self
                .try_call(
                    reqwest::Method::POST,
                    &format!("/element/{el}/click"),
                    Some(json!({})),
                )
                .await
            {
                Ok(_) => {
                    if let Some(root) = old_root {
                        self.wait_for_new_page(&root, css).await;
                    }
                    return;
                }
                Err(e) if e.dialog_open() => {
                    *self.pending_navigation.lock().unwrap() = old_root;
                    return;
                }
                Err(e) if e.transient() && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await
                }
                Err(e) => panic!("WebDriver click on {css}: {e}"),
            }
        }
    }

    /// The current document's root element.
    async fn root(&self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .script("return document.documentElement;", vec![])
                .await
            {
                Ok(v) => return v[ELEMENT_KEY].as_str().unwrap().to_string(),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Err(e) => panic!("no document within {WAIT:?}: {e}"),
            }
        }
    }

    /// Waits until the page whose root element was `old_root` has been replaced by
    /// another, and that one has loaded. A dialog opened meanwhile (a confirmation)
    /// holds the navigation back: the wait is then left to [`Browser::accept_dialog`].
    async fn wait_for_new_page(&self, old_root: &str, after: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = match self
                .try_call(
                    reqwest::Method::GET,
                    &format!("/element/{old_root}/name"),
                    None,
                )
                .await
            {
                Err(e) if e.gone() => break,
                Err(e) if e.dialog_open() => {
                    *self.pending_navigation.lock().unwrap() = Some(old_root.to_string());
                    return;
                }
                Ok(_) => "the old page is still there".to_string(),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{after} did not lead to a new page within {WAIT:?} ({last}): {}",
                self.current_url().await
            );
            tokio::time::sleep(POLL).await;
        }
        self.wait_loaded().await;
    }

    /// Waits until the current document has loaded (`document.readyState` is
    /// "complete"), or a dialog waits for an answer.
    async fn wait_loaded(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = match self.script("return document.readyState;", vec![]).await {
                Ok(v) if v == "complete" => return,
                Err(e) if e.dialog_open() => return,
                Ok(v) => format!("readyState {v}"),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "the page did not finish loading within {WAIT:?} ({last})"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Adds a WebDriver virtual authenticator (CTAP2, built in, with resident keys and
    /// user verification that always succeeds); returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        self.call(
            reqwest::Method::POST,
            "/webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true
            })),
        )
        .await
        .as_str()
        .unwrap()
        .to_string()
    }

    pub async fn remove_virtual_authenticator(&self, id: &str) {
        self.call(
            reqwest::Method::DELETE,
            &format!("/webauthn/authenticator/{id}"),
            None,
        )
        .await;
    }

    /// The credentials a virtual authenticator holds.
    pub async fn authenticator_credentials(&self, id: &str) -> Vec<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("/webauthn/authenticator/{id}/credentials"),
            None,
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// Waits until the page's source contains `text` (e.g. after a script, not a click,
    /// changed the page), then until that page has loaded.
    pub async fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.source().await.contains(text) {
                self.wait_loaded().await;
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the page never said {text:?} within {WAIT:?}: {}",
                    self.source().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Accepts a `window.confirm` dialog, waiting for it to appear; when a click's
    /// navigation waited for the answer, waits for the next page too.
    pub async fn accept_dialog(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .try_call(reqwest::Method::POST, "/alert/accept", Some(json!({})))
                .await
            {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    panic!("no dialog to accept within {WAIT:?}: {e}")
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
        let pending = self.pending_navigation.lock().unwrap().take();
        if let Some(root) = pending {
            self.wait_for_new_page(&root, "the accepted dialog").await;
        }
    }

    /// Saves a PNG screenshot of the page.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Waits until the current URL contains `part` (e.g. after a script sent a form),
    /// then until that page has loaded.
    pub async fn wait_for_url(&self, part: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.current_url().await;
            if url.contains(part) {
                self.wait_loaded().await;
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "URL never contained {part} within {WAIT:?}: {url}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends the session (closes the browser). Dropping a browser does the same.
    pub async fn quit(mut self) {
        self.ended = true;
        let _ = self.http.delete(&self.url).send().await;
    }
}

impl Drop for Browser {
    /// Closes the browser when the test did not (it failed before [`Browser::quit`]).
    fn drop(&mut self) {
        if !self.ended {
            end_session(&self.driver_addr, &self.session_path);
        }
    }
}

/// `DELETE <session_path>` to chromedriver at `addr`, as a plain blocking HTTP/1.1
/// exchange with short timeouts: a drop can await nothing, runs inside the tests' async
/// runtime (which may not be blocked on from within), and may be part of a panic's
/// unwinding, so it must not panic either.
fn end_session(addr: &str, session_path: &str) {
    use std::io::{Read, Write};
    let (addr, path) = (addr.to_string(), session_path.to_string());
    let exchange = std::thread::spawn(move || {
        let Ok(sock_addr) = addr.parse::<std::net::SocketAddr>() else {
            return;
        };
        let Ok(mut stream) =
            std::net::TcpStream::connect_timeout(&sock_addr, Duration::from_secs(2))
        else {
            return;
        };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return;
        }
        // chromedriver keeps the connection open: read the answer's head and as much
        // body as it announces (the session is ended by then).
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                return;
            }
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if answer.len() >= head_end + 4 + length {
                    return;
                }
            }
        }
    });
    let _ = exchange.join();
}

/// Where a browser test keeps a screenshot named `name` (under target/screenshots/).
pub fn shot(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join(name)
}

/// Signs `email` in through the login form (with the tests' one password) and waits
/// for the page it lands on.
pub async fn sign_in(b: &Browser, server: &super::TestServer, email: &str) {
    b.goto(&server.url("/login")).await;
    b.type_into("input[name=email]", email).await;
    b.type_into("input[name=password]", super::PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_url("/settings/security/sessions").await;
}

/// Screens of a given width, and screenshots of the whole page, through Chromium's
/// DevTools commands.
impl Browser {
    /// Runs one DevTools command and returns its value; a refusal fails the test.
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let body = json!({"cmd": cmd, "params": params});
        let v: Value = self
            .http
            .post(format!("{}/goog/cdp/execute", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v["value"].get("error").is_none(), "CDP {body}: {v}");
        v["value"].clone()
    }

    /// Looks like a screen `width` CSS pixels wide: a phone's (touch, mobile viewport)
    /// below 768, a desktop's from there on. Stays until the next call.
    pub async fn screen_width(&self, width: u32) {
        let mobile = width < 768;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": if mobile { 844 } else { 900 },
                   "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
        self.cdp(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": mobile, "maxTouchPoints": if mobile { 5 } else { 1 }}),
        )
        .await;
    }

    /// Makes the browser believe it is in the time zone `id` ("Europe/Berlin").
    pub async fn time_zone(&self, id: &str) {
        self.cdp("Emulation.setTimezoneOverride", json!({"timezoneId": id}))
            .await;
    }

    /// A PNG of the whole page (beyond the screen's height), at the current width.
    pub async fn screenshot_page(&self, path: &std::path::Path) {
        let v = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let data = v["data"]
            .as_str()
            .unwrap_or_else(|| panic!("no screenshot: {v}"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}
