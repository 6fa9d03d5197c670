//! `[[webhooks]]`: receivers of the security log's events (SPEC §15).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::model::EventType;

/// How long one delivery attempt may take by default (`webhooks[].timeout`).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Shortest raw (not `whsec_`) secret accepted, in bytes.
const MIN_RAW_SECRET: usize = 16;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where events are POSTed: an absolute http:// or https:// URL.
    pub url: String,
    /// `whsec_<base64>` (Standard Webhooks: the key is the decoded bytes), or any other
    /// text of at least 16 bytes, used as the key as it is.
    #[serde(default)]
    pub secret: String,
    /// Event types or patterns: `session.created`, `session.*`, `*`.
    #[serde(default)]
    pub events: Vec<String>,
    /// How long one attempt may take before it counts as failed.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    WEBHOOK_TIMEOUT
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &shown_url(&self.url))
            .field("secret", &"***")
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookConfig {
    /// The HMAC key: the decoded bytes of a `whsec_` secret, or a raw secret's bytes.
    pub fn key(&self) -> Result<Vec<u8>, String> {
        let secret = self.secret.trim();
        if secret.is_empty() {
            return Err("is missing (give `whsec_<base64>`)".into());
        }
        match secret.strip_prefix("whsec_") {
            Some(b64) => match STANDARD.decode(b64) {
                Ok(key) if !key.is_empty() => Ok(key),
                _ => Err("`whsec_…` must be followed by base64 (the key's bytes)".into()),
            },
            None if secret.len() >= MIN_RAW_SECRET => Ok(secret.as_bytes().to_vec()),
            None => Err(format!(
                "must be `whsec_<base64>` or a raw secret of at least {MIN_RAW_SECRET} bytes"
            )),
        }
    }

    /// The patterns as SQLite GLOB patterns, a JSON array (they are checked first:
    /// only `*`, whole types and `<family>.*`).
    pub fn patterns_json(&self) -> String {
        let list: Vec<&str> = self.events.iter().map(|e| e.trim()).collect();
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
    }
}

/// A receiver's URL as logs and the CLI show it: without credentials, query or
/// fragment, which may carry a token.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            let hidden = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            if hidden {
                format!("{u}?…")
            } else {
                u.to_string()
            }
        }
        Err(_) => super::redact_url(url),
    }
}

/// Whether `pattern` names a type, a family of types (`session.*`) or all (`*`).
pub fn valid_pattern(pattern: &str) -> bool {
    if pattern == "*" || EventType::parse(pattern).is_some() {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(family) => EventType::ALL
            .iter()
            .any(|t| t.as_str().split('.').next() == Some(family)),
        None => false,
    }
}

/// Every problem of the `[[webhooks]]` entries, each naming its key.
pub fn check_webhooks(hooks: &[WebhookConfig]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, h) in hooks.iter().enumerate() {
        match url::Url::parse(&h.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => problems.push(format!(
                "webhooks[{i}].url: `{}` must be an absolute http:// or https:// URL",
                shown_url(&h.url)
            )),
        }
        if !seen.insert(h.url.trim()) {
            problems.push(format!("webhooks[{i}].url: the same URL is given twice"));
        }
        if let Err(e) = h.key() {
            problems.push(format!("webhooks[{i}].secret: {e}"));
        }
        if h.events.is_empty() {
            problems.push(format!(
                "webhooks[{i}].events: give at least one event type or pattern (e.g. \"session.*\")"
            ));
        }
        for p in &h.events {
            if !valid_pattern(p.trim()) {
                problems.push(format!(
                    "webhooks[{i}].events: `{p}` is not an event type or pattern (e.g. \"session.*\", \"user.created\", \"*\")"
                ));
            }
        }
        if h.timeout.is_zero() {
            problems.push(format!("webhooks[{i}].timeout: must be longer than zero"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        for ok in ["*", "session.*", "user.created", "access.denied", "alert.*"] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "sessions.*",
            "user.nope",
            "session.**",
            "*.created",
            "user",
        ] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn secrets() {
        let hook = |s: &str| WebhookConfig {
            url: "https://x.test/h".into(),
            secret: s.into(),
            events: vec!["*".into()],
            timeout: WEBHOOK_TIMEOUT,
        };
        assert_eq!(hook("whsec_AQID").key().unwrap(), vec![1, 2, 3]);
        assert_eq!(
            hook("a raw secret of some length").key().unwrap(),
            b"a raw secret of some length"
        );
        assert!(hook("").key().is_err());
        assert!(hook("short").key().is_err());
        assert!(hook("whsec_!!!").key().is_err());
    }
}
