//! The OpenID Provider's endpoints (SPEC §20): a third skin over `domain/oidc`, beside
//! the pages and the API, importing neither (nor storage).
//!
//! - `discovery`: `/.well-known/openid-configuration` and `/oidc/jwks`;
//! - `authorize`: `/oidc/authorize` and its pages (confirm it's you, consent);
//! - `token`: `/oidc/token`, `/oidc/userinfo`, `/oidc/revoke`;
//! - `end_session`: `/oidc/end_session`;
//! - `pages`: the frame and the pages these endpoints show.

mod authorize;
mod discovery;
mod end_session;
mod pages;
mod token;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response, Route, get, post};

pub const AUTHORIZE: &str = "/oidc/authorize";
pub const TOKEN: &str = "/oidc/token";
pub const USERINFO: &str = "/oidc/userinfo";
pub const JWKS: &str = "/oidc/jwks";
pub const REVOKE: &str = "/oidc/revoke";
pub const END_SESSION: &str = "/oidc/end_session";
pub const DISCOVERY: &str = "/.well-known/openid-configuration";

/// Adds the endpoints to `route` (at their own paths: the pages are nested at `/`).
pub fn mount(route: Route) -> Route {
    route
        .at(DISCOVERY, get(discovery::configuration))
        .at(JWKS, get(discovery::jwks))
        .at(AUTHORIZE, get(authorize::start).post(authorize::start_form))
        .at(format!("{AUTHORIZE}/confirm"), post(authorize::confirm))
        .at(format!("{AUTHORIZE}/consent"), post(authorize::consent))
        .at(TOKEN, post(token::token))
        .at(USERINFO, get(token::userinfo).post(token::userinfo))
        .at(REVOKE, post(token::revoke))
        .at(
            END_SESSION,
            get(end_session::start).post(end_session::submit),
        )
}

/// A JSON answer that no cache keeps (RFC 6749 §5.1).
pub(crate) fn no_store_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut resp = Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string());
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// A 303 to `to`.
pub(crate) fn see_other(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            resp.headers_mut().insert(header::LOCATION, v);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
