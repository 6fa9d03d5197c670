//! What a reverse proxy says about the request it asks Doorman about: the original URL,
//! from `X-Original-URL` (nginx, Authelia style) or `X-Forwarded-Proto` +
//! `X-Forwarded-Host` + `X-Forwarded-Uri` (Traefik, Caddy). Believed only from a trusted
//! proxy (`server.trusted_proxies`); from anyone else these headers are ignored.

use poem::Request;

use crate::config::Cidr;

/// The longest original URL believed.
const MAX_URL: usize = 4096;

/// The URL the proxied request was for, when a trusted proxy said so: parsed, and so
/// normalised (dot segments, percent-encoded dots, backslashes).
pub fn original_url(req: &Request, trusted: &[Cidr]) -> Option<url::Url> {
    if !crate::client_ip::peer_is_trusted(req, trusted) {
        return None;
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let url = match header("x-original-url") {
        Some(url) => url.to_string(),
        None => {
            let proto = header("x-forwarded-proto")?;
            let host = header("x-forwarded-host")?;
            let uri = header("x-forwarded-uri").unwrap_or("/");
            if !matches!(proto, "http" | "https") || host.contains(['/', '\\', '@']) {
                return None;
            }
            if !uri.starts_with('/') {
                return None;
            }
            format!("{proto}://{host}{uri}")
        }
    };
    if url.len() > MAX_URL {
        return None;
    }
    let parsed = url::Url::parse(&url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then_some(parsed)
}

/// Whether the asking client is a browser (it accepts HTML), which is sent to sign in
/// rather than told 401.
pub fn is_browser(req: &Request) -> bool {
    req.headers()
        .get_all(poem::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}
