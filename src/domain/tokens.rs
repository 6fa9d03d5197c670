//! Secrets: session tokens, public ids, device ids, CSRF tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing is not something a server can continue through.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("operating system random source unavailable");
    buf
}

/// A session token: 256 random bits, URL-safe base64 (43 characters).
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(random::<32>())
}

/// Only this is stored.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A session's public id: 128 random bits, URL-safe.
pub fn new_public_id() -> String {
    URL_SAFE_NO_PAD.encode(random::<16>())
}

/// A device id: 128 random bits as 32 lowercase hex characters.
pub fn new_device_id() -> String {
    random::<16>().iter().map(|b| format!("{b:02x}")).collect()
}

/// Accepts only ids this server could have issued, so a cookie or API field cannot
/// smuggle arbitrary text into rows.
pub fn is_device_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a device id may be shown as (SPEC §19: device ids are credentials): the first 16
/// hex characters of its plain SHA-256. Stable, so a person can match their sessions,
/// sign-ins and devices; a device id is 128 random bits, so nobody gets it back from this.
pub fn device_hash(device_id: &str) -> String {
    Sha256::digest(device_id.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CSRF token of a cookie session: derived from its secret token, so it needs no
/// storage and cannot be computed without the cookie.
pub fn csrf_for_session(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"doorman-csrf\0");
    h.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// A random CSRF value for forms shown before sign-in (double-submit cookie).
pub fn new_csrf() -> String {
    URL_SAFE_NO_PAD.encode(random::<24>())
}

/// Comparison whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_unique_and_url_safe() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(is_device_id(&new_device_id()));
        assert!(!is_device_id("../../etc/passwd"));
        // printf %s 0123456789abcdef0123456789abcdef | sha256sum | cut -c1-16
        assert_eq!(
            device_hash("0123456789abcdef0123456789abcdef"),
            "3eb1bd439947eb76"
        );
        assert_ne!(csrf_for_session(&a), csrf_for_session(&new_token()));
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
