//! OpenID Connect Discovery 1.0 and the JWKS.

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Data;
use poem::{Response, handler};
use serde_json::json;

use super::{AUTHORIZE, END_SESSION, JWKS, REVOKE, TOKEN, USERINFO};
use crate::domain::oidc::{SCOPES, keys};
use crate::state::AppState;

fn public_json(body: &serde_json::Value, max_age: u32) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json")
        .body(body.to_string());
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    // Read by single-page applications' code too.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

/// `/.well-known/openid-configuration`; the issuer is `server.public_url`.
#[handler]
pub async fn configuration(state: Data<&AppState>) -> Response {
    let iss = state.config.server.public_base();
    let at = |path: &str| format!("{iss}{path}");
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let body = json!({
        "issuer": iss,
        "authorization_endpoint": at(AUTHORIZE),
        "token_endpoint": at(TOKEN),
        "userinfo_endpoint": at(USERINFO),
        "jwks_uri": at(JWKS),
        "end_session_endpoint": at(END_SESSION),
        "revocation_endpoint": at(REVOKE),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "azp",
            "name", "preferred_username", "email", "email_verified", "groups"
        ],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    public_json(&body, 300)
}

/// `/oidc/jwks`: the keys that sign, will sign, or signed tokens that may be alive.
#[handler]
pub async fn jwks(state: Data<&AppState>) -> Response {
    if let Err(err) = keys::refresh(&state).await {
        tracing::warn!(%err, "could not read the signing keys again");
    }
    public_json(&json!({ "keys": keys::jwks(&state) }), 60)
}
