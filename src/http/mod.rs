//! What both skins (the pages in `web/`, the JSON API in `api/`) stand on: cookies and the
//! one way to take a token out of a request, CSRF, the mapping of a domain error to a
//! status and body, the headers every answer carries, and `/metrics`. Every page path is
//! in `crate::paths`.

pub mod cookies;
pub mod errors;
pub mod export;
pub mod forward;
pub mod headers;
pub mod metrics;

use crate::domain::tokens;

/// The header a cookie-authenticated API change carries its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Whether `given` is the CSRF token of the session whose secret is `session_token`
/// (compared in constant time).
pub fn csrf_matches(session_token: &str, given: &[u8]) -> bool {
    let expected = tokens::csrf_for_session(session_token);
    tokens::constant_time_eq(given, expected.as_bytes())
}
