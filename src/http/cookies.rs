//! Reading and writing Doorman's cookies, and the one way to find the session token a
//! request presents.

use poem::Request;

use crate::config::ServerConfig;

pub const SESSION_COOKIE: &str = "doorman_session";
pub const DEVICE_COOKIE: &str = "doorman_device";
/// Double-submit CSRF cookie for the forms shown before sign-in.
pub const PRE_CSRF_COOKIE: &str = "doorman_csrf";
/// A sign-in between its password and its second step (or enrolment): the challenge's
/// secret, which binds the step to this browser.
pub const CHALLENGE_COOKIE: &str = "doorman_challenge";
/// 400 days: the longest lifetime browsers honour.
pub const DEVICE_MAX_AGE: i64 = 400 * 24 * 60 * 60;

/// The value of cookie `name`, if the request has one.
pub fn get(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// The session token a request presents: the bearer header first, then the cookie.
pub fn presented_token(req: &Request) -> Option<String> {
    let bearer = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    bearer
        .or_else(|| get(req, SESSION_COOKIE))
        .filter(|t| !t.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure on https installs,
/// Domain when `server.cookie_domain` is set. `max_age` None makes a browser-session
/// cookie; Some(0) deletes it.
pub fn build(server: &ServerConfig, name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if server.secure_cookies() {
        c.push_str("; Secure");
    }
    if !server.cookie_domain.is_empty() {
        c.push_str(&format!("; Domain={}", server.cookie_domain));
    }
    c
}
