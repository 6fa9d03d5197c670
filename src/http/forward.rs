//! What a reverse proxy says about the request it asks Doorman about (SPEC §16, §19).
//!
//! Each endpoint reads one header family only, as Authelia 4.38 does: Caddy and Traefik
//! pass the client's own headers on to the auth server, so a client's `X-Original-URL`
//! must never choose the application on an endpoint that reads `X-Forwarded-*`. The
//! headers are believed only from a trusted proxy (`server.trusted_proxies`).
//!
//! The address is then normalised the way the servers behind a proxy read it, and one
//! that cannot be matched safely is [`Target::Ambiguous`]: the caller refuses it when any
//! application has rules (fail closed).

use poem::Request;
use poem::http::HeaderName;

use crate::address::{Target, normalise};
use crate::config::Cidr;

/// Where an endpoint reads the original request from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `X-Original-URL` only (nginx's `auth_request`: Authelia's `/api/authz/auth-request`
    /// and `/api/verify`).
    Original,
    /// `X-Forwarded-Proto` + `X-Forwarded-Host` + `X-Forwarded-Uri` only (Traefik and
    /// Caddy: `/api/authz/forward-auth`).
    Forwarded,
    /// `X-Forwarded-*` when `X-Forwarded-Host` is present, `X-Original-URL` otherwise
    /// (`/auth/verify`, `/oauth2/auth`).
    Either,
}

/// The headers that name an original request: from a peer that is not a trusted proxy,
/// any of them makes the request ambiguous.
const NAMING: [HeaderName; 3] = [X_ORIGINAL_URL, X_FORWARDED_HOST, X_FORWARDED_URI];

const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// The request the proxy asks about, read from `family` (see the module comment).
pub fn target(req: &Request, trusted: &[Cidr], family: Family) -> Target {
    let headers = req.headers();
    if !crate::client_ip::peer_is_trusted(req, trusted) {
        return if NAMING.iter().any(|h| headers.contains_key(h)) {
            Target::Ambiguous
        } else {
            Target::Unknown
        };
    }
    let forwarded = match family {
        Family::Original => false,
        Family::Forwarded => true,
        Family::Either => headers.contains_key(X_FORWARDED_HOST),
    };
    let one = |name: HeaderName| -> Result<Option<&str>, ()> {
        let mut all = headers.get_all(name).iter();
        let Some(first) = all.next() else {
            return Ok(None);
        };
        if all.next().is_some() {
            return Err(());
        }
        let v = first.to_str().map_err(|_| ())?.trim();
        Ok((!v.is_empty()).then_some(v))
    };
    let url = if forwarded {
        let (Ok(proto), Ok(host), Ok(uri)) = (
            one(X_FORWARDED_PROTO),
            one(X_FORWARDED_HOST),
            one(X_FORWARDED_URI),
        ) else {
            return Target::Ambiguous;
        };
        let Some(host) = host else {
            return Target::Unknown;
        };
        let uri = uri.unwrap_or("/");
        let proto = proto.unwrap_or("");
        if !matches!(proto, "http" | "https")
            || host.contains(['/', '\\', '@', ',', '?', '#'])
            || !uri.starts_with('/')
        {
            return Target::Ambiguous;
        }
        format!("{proto}://{host}{uri}")
    } else {
        match one(X_ORIGINAL_URL) {
            Ok(Some(url)) => url.to_string(),
            Ok(None) => return Target::Unknown,
            Err(()) => return Target::Ambiguous,
        }
    };
    match normalise(&url) {
        Some(address) => Target::At(address),
        None => Target::Ambiguous,
    }
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
