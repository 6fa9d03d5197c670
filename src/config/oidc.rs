//! Doorman as an OpenID Provider (SPEC §20): the `[oidc]` table and the `oidc` table of
//! an `[[applications]]` entry, which makes that application a client.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// `[oidc]`: how long access tokens live, and how long a new signing key is published
/// before it signs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub key_publish_delay: Duration,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            access_token_ttl: Duration::from_secs(10 * 60),
            key_publish_delay: Duration::from_secs(60 * 60),
        }
    }
}

/// The id token's signature algorithm a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SigningAlg {
    #[default]
    ES256,
    RS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ES256" => Some(SigningAlg::ES256),
            "RS256" => Some(SigningAlg::RS256),
            _ => None,
        }
    }
}

/// `[applications.oidc]`: the application signs people in with Doorman.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcClient {
    pub client_id: String,
    /// `sha256:<64 hex digits>` of the secret (`doorman oidc secret` prints both).
    #[serde(default)]
    pub client_secret_hash: String,
    /// Accepted only to refuse it by name: a secret is never written in the clear.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where §21's logout tokens go; empty: none.
    #[serde(default)]
    pub backchannel_logout_uri: String,
    /// No secret; PKCE S256 required.
    #[serde(default)]
    pub public: bool,
    /// Ask the person once before the application gets their name and email.
    #[serde(default)]
    pub consent: bool,
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("client_id", &self.client_id)
            .field("client_secret_hash", &"***")
            .field("redirect_uris", &self.redirect_uris)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .field("backchannel_logout_uri", &self.backchannel_logout_uri)
            .field("public", &self.public)
            .field("consent", &self.consent)
            .field(
                "id_token_signed_response_alg",
                &self.id_token_signed_response_alg,
            )
            .finish()
    }
}

impl OidcClient {
    /// The 32 bytes of `client_secret_hash`, when it is well formed.
    pub fn secret_digest(&self) -> Option<[u8; 32]> {
        let hex = self.client_secret_hash.trim().strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    }
}

/// Whether `uri` may be registered: an absolute URL without a fragment, https, or http
/// to a loopback host (an app on the same machine, RFC 8252 §7.3).
pub fn redirect_uri_problem(uri: &str) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(uri) else {
        return Some("is not an absolute URL");
    };
    if url.fragment().is_some() {
        return Some("must not have a fragment (#…)");
    }
    if url.username() != "" || url.password().is_some() {
        return Some("must not carry credentials");
    }
    match url.scheme() {
        "https" if url.host().is_some() => None,
        "http" if is_loopback(&url) => None,
        _ => Some("must be https:// (or http:// to localhost, 127.0.0.1 or [::1])"),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The problems of every application's `oidc` table, each naming its key; and of
/// `[oidc]`.
pub fn check_clients(apps: &[super::Application], cfg: &OidcConfig) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value) in [
        ("oidc.access_token_ttl", cfg.access_token_ttl),
        ("oidc.key_publish_delay", cfg.key_publish_delay),
    ] {
        if value.is_zero() {
            problems.push(format!("{key}: must be longer than zero"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, app) in apps.iter().enumerate() {
        let Some(c) = &app.oidc else { continue };
        let at = format!("applications[{i}].oidc");
        let id = &c.client_id;
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            problems.push(format!(
                "{at}.client_id: must be 1 to 128 visible ASCII characters"
            ));
        } else if !seen.insert(id.clone()) {
            problems.push(format!("{at}.client_id: `{id}` is used twice"));
        }
        if c.client_secret.is_some() {
            problems.push(format!(
                "{at}.client_secret: a secret is never written in the clear; give \
                 client_secret_hash = \"sha256:…\" (`doorman oidc secret` prints a new secret and its hash)"
            ));
        }
        match (c.public, c.client_secret_hash.trim().is_empty()) {
            (true, false) => problems.push(format!(
                "{at}.client_secret_hash: a public client has no secret (remove it, or set public = false)"
            )),
            (false, true) if c.client_secret.is_none() => problems.push(format!(
                "{at}.client_secret_hash: missing (a confidential client needs one; `doorman oidc secret` prints it)"
            )),
            (false, false) if c.secret_digest().is_none() => problems.push(format!(
                "{at}.client_secret_hash: must be \"sha256:\" and 64 hex digits (`doorman oidc secret` prints it)"
            )),
            _ => {}
        }
        if c.redirect_uris.is_empty() {
            problems.push(format!("{at}.redirect_uris: give at least one"));
        }
        for (key, list) in [
            ("redirect_uris", &c.redirect_uris),
            ("post_logout_redirect_uris", &c.post_logout_redirect_uris),
        ] {
            for uri in list {
                if let Some(why) = redirect_uri_problem(uri) {
                    problems.push(format!("{at}.{key}: `{uri}` {why}"));
                }
            }
        }
        let back = &c.backchannel_logout_uri;
        if !back.is_empty()
            && let Some(why) = redirect_uri_problem(back)
        {
            problems.push(format!("{at}.backchannel_logout_uri: `{back}` {why}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback() {
        assert_eq!(redirect_uri_problem("https://grafana.example.com/cb"), None);
        assert_eq!(redirect_uri_problem("http://127.0.0.1:8080/cb"), None);
        assert_eq!(redirect_uri_problem("http://localhost/cb"), None);
        assert_eq!(redirect_uri_problem("http://[::1]:9/cb"), None);
        assert!(redirect_uri_problem("http://grafana.example.com/cb").is_some());
        assert!(redirect_uri_problem("https://x.example.com/cb#f").is_some());
        assert!(redirect_uri_problem("/cb").is_some());
        assert!(redirect_uri_problem("javascript:alert(1)").is_some());
    }

    #[test]
    fn secret_digest_reads_only_sha256_hex() {
        let mut c = OidcClient {
            client_secret_hash: format!("sha256:{}", "ab".repeat(32)),
            ..Default::default()
        };
        assert_eq!(c.secret_digest(), Some([0xab; 32]));
        c.client_secret_hash = "hunter2".into();
        assert_eq!(c.secret_digest(), None);
        c.client_secret_hash = format!("sha256:{}", "zz".repeat(32));
        assert_eq!(c.secret_digest(), None);
    }
}
