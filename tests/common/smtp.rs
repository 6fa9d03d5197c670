//! A real SMTP receiver for tests: a `tokio::net::TcpListener` on 127.0.0.1 speaking
//! just enough SMTP for lettre (no STARTTLS, no AUTH). Received messages are kept as raw
//! text (dot-stuffing undone). It can be stopped — the port then refuses connections and
//! every open connection is closed — and started again on the same port.
//!
//! Also a few helpers to read a received message: headers, and the decoded text of its
//! parts (7bit, quoted-printable or base64).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Longest line (and message) accepted, so a confused client cannot exhaust memory.
const MAX_LINE: usize = 64 * 1024;
const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// One accepted message: the envelope and the raw text.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Default)]
struct Shared {
    /// Raw text of every accepted message, in order.
    messages: Mutex<Vec<String>>,
    envelopes: Mutex<Vec<Envelope>>,
    connections: AtomicUsize,
}

pub struct SmtpServer {
    pub port: u16,
    shared: Arc<Shared>,
    /// Raw text of every accepted message (also reachable through [`SmtpServer::messages`]).
    pub messages: Arc<Mutex<Vec<String>>>,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// Starts on a port of its own, which stays its own when it is stopped and restarted.
    pub async fn start() -> SmtpServer {
        Self::start_on(super::process::free_port()).await
    }

    /// Starts on `port` (0 for any free port).
    pub async fn start_on(port: u16) -> SmtpServer {
        let mut s = SmtpServer {
            port,
            shared: Arc::new(Shared::default()),
            messages: Arc::new(Mutex::new(Vec::new())),
            stop: None,
            task: None,
        };
        s.listen().await;
        s
    }

    /// A port on which nothing listens.
    pub async fn down() -> SmtpServer {
        let mut s = Self::start().await;
        s.stop().await;
        s
    }

    /// `smtp://127.0.0.1:PORT` for `mail.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    async fn listen(&mut self) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        // The previous run's connections may sit in TIME_WAIT: reuse the address.
        let mut last_err = None;
        let mut listener = None;
        for _ in 0..50 {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(addr).and_then(|_| socket.listen(64)) {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let listener: TcpListener =
            listener.unwrap_or_else(|| panic!("cannot listen on {addr}: {last_err:?}"));
        self.port = listener.local_addr().unwrap().port();
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = self.shared.clone();
        let messages = self.messages.clone();
        self.stop = Some(stop_tx);
        self.task = Some(tokio::spawn(accept_loop(
            listener, shared, messages, stop_rx,
        )));
    }

    /// Stops listening and closes every open connection; returns when the port refuses
    /// connections. Messages received so far are kept.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Starts again on the same port after [`SmtpServer::stop`].
    pub async fn restart(&mut self) {
        assert!(self.task.is_none(), "SMTP server is still running");
        self.listen().await;
    }

    /// How many messages were accepted.
    pub fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// How many TCP connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    pub fn envelopes(&self) -> Vec<Envelope> {
        self.shared.envelopes.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived or `timeout` passed; returns all
    /// messages received by then (check the count: fewer than `n` means a timeout).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    messages: Arc<Mutex<Vec<String>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (shared, messages) = (shared.clone(), messages.clone());
                conns.spawn(async move {
                    let _ = session(stream, &shared, &messages).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    // Aborts the open conversations: their sockets close, like a server going down.
    conns.shutdown().await;
}

/// Reads one CRLF- (or LF-) terminated line, without the terminator; None at EOF.
async fn read_line(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

async fn session(
    stream: TcpStream,
    shared: &Shared,
    messages: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 smtp.test ESMTP test receiver\r\n")
        .await?;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    while let Some(line) = read_line(&mut r).await? {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("");
        match verb {
            "EHLO" => {
                w.write_all(b"250-smtp.test greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
                    .await?
            }
            "HELO" => w.write_all(b"250 smtp.test\r\n").await?,
            "MAIL" => {
                from = angle(&line);
                to.clear();
                w.write_all(b"250 2.1.0 OK\r\n").await?
            }
            "RCPT" => {
                to.push(angle(&line));
                w.write_all(b"250 2.1.5 OK\r\n").await?
            }
            "DATA" => {
                if to.is_empty() {
                    w.write_all(b"503 5.5.1 RCPT first\r\n").await?;
                    continue;
                }
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let Some(l) = read_line(&mut r).await? else {
                        return Ok(());
                    };
                    if l == "." {
                        break;
                    }
                    // Undo dot-stuffing (RFC 5321 §4.5.2).
                    let l = l.strip_prefix('.').unwrap_or(&l);
                    if data.len() + l.len() > MAX_MESSAGE {
                        w.write_all(b"552 5.3.4 Too big\r\n").await?;
                        return Ok(());
                    }
                    data.push_str(l);
                    data.push_str("\r\n");
                }
                shared.envelopes.lock().unwrap().push(Envelope {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data: data.clone(),
                });
                messages.lock().unwrap().push(data);
                w.write_all(b"250 2.0.0 Queued\r\n").await?
            }
            "RSET" => {
                from.clear();
                to.clear();
                w.write_all(b"250 2.0.0 OK\r\n").await?
            }
            "NOOP" => w.write_all(b"250 2.0.0 OK\r\n").await?,
            "QUIT" => {
                w.write_all(b"221 2.0.0 Bye\r\n").await?;
                w.shutdown().await?;
                return Ok(());
            }
            _ => {
                w.write_all(b"502 5.5.2 Command not implemented\r\n")
                    .await?
            }
        }
    }
    Ok(())
}

/// The address inside `<…>` of a MAIL FROM / RCPT TO line.
fn angle(line: &str) -> String {
    match (line.find('<'), line.rfind('>')) {
        (Some(a), Some(b)) if a < b => line[a + 1..b].to_string(),
        _ => line.split(':').nth(1).unwrap_or("").trim().to_string(),
    }
}

// ---- reading messages ----------------------------------------------------------------

/// The header block of a message (up to the first empty line), CRLF line ends.
pub fn header_block(raw: &str) -> &str {
    match raw.find("\r\n\r\n") {
        Some(i) => &raw[..i + 2],
        None => raw,
    }
}

fn split_head_body(raw: &str) -> (&str, &str) {
    match raw.find("\r\n\r\n") {
        Some(i) => (&raw[..i + 2], &raw[i + 4..]),
        None => (raw, ""),
    }
}

/// Header lines with folding undone: (name, value).
pub fn headers(raw: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in header_block(raw).split("\r\n") {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// The first header named `name` (case-insensitive), unfolded.
pub fn header(raw: &str, name: &str) -> Option<String> {
    headers(raw)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Decodes quoted-printable (RFC 2045 §6.7), soft line breaks included.
pub fn decode_qp(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_body(head: &str, body: &str) -> String {
    let cte = header(head, "content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match cte.as_str() {
        "quoted-printable" => decode_qp(body),
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("valid base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_string(),
    }
}

fn boundary(content_type: &str) -> Option<String> {
    let i = content_type.to_ascii_lowercase().find("boundary=")?;
    let rest = &content_type[i + "boundary=".len()..];
    let b = if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next()?
    } else {
        rest.split([';', ' ']).next()?
    };
    Some(b.to_string())
}

/// The leaf parts of a message: (content type, decoded body).
pub fn parts(raw: &str) -> Vec<(String, String)> {
    let (head, body) = split_head_body(raw);
    let ct = header(head, "content-type").unwrap_or_else(|| "text/plain".into());
    if ct.to_ascii_lowercase().starts_with("multipart/") {
        let Some(b) = boundary(&ct) else {
            return Vec::new();
        };
        let delim = format!("--{b}");
        let mut out = Vec::new();
        for chunk in body.split(&delim).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
            let chunk = chunk.strip_suffix("\r\n").unwrap_or(chunk);
            out.extend(parts(chunk));
        }
        out
    } else {
        let kind = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        vec![(kind, decode_body(head, body))]
    }
}

/// The decoded text/plain part (panics when there is none).
pub fn text_part(raw: &str) -> String {
    parts(raw)
        .into_iter()
        .find(|(k, _)| k == "text/plain")
        .map(|(_, b)| b)
        .expect("a text/plain part")
}

/// The decoded text/html part (panics when there is none).
pub fn html_part(raw: &str) -> String {
    parts(raw)
        .into_iter()
        .find(|(k, _)| k == "text/html")
        .map(|(_, b)| b)
        .expect("a text/html part")
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a header value
/// (enough for one-word names; whitespace between adjacent words is kept).
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match decode_word(after) {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &after[used..];
            }
            None => {
                out.push_str("=?");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `charset?enc?text?=…` → (the decoded text, bytes used up to and with the `?=`).
fn decode_word(s: &str) -> Option<(String, usize)> {
    let mut fields = s.splitn(3, '?');
    let charset = fields.next()?;
    let enc = fields.next()?;
    let tail = fields.next()?;
    let end = tail.find("?=")?;
    let text = &tail[..end];
    let bytes = match enc.to_ascii_lowercase().as_str() {
        "b" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "q" => decode_qp(&text.replace('_', " ")).into_bytes(),
        _ => return None,
    };
    let used = charset.len() + 1 + enc.len() + 1 + end + 2;
    Some((String::from_utf8_lossy(&bytes).into_owned(), used))
}
