//! Doorman as an OpenID Provider (SPEC §20): clients are the `[[applications]]` with an
//! `oidc` table; every grant belongs to the Doorman session it was made from and ends
//! with it (a trigger on the session's end, see `migrations/0014_oidc.sql`).
//!
//! - [`keys`]: the signing keys, the JWKS, signing and rotation;
//! - [`authorize`]: the authorization request and its decision;
//! - [`token`]: the token endpoint (code, refresh), client authentication, revocation;
//! - [`userinfo`]: the claims an access token reads, and the id token's claims.

pub mod authorize;
pub mod keyring;
pub mod keys;
pub mod logout;
pub mod sign_out;
pub mod token;
pub mod userinfo;

use crate::config::{Application, OidcClient};
use crate::model::{AuthMethod, AuthMethods};
use crate::state::AppState;

/// The scopes this provider knows; others are ignored, as OpenID Connect says.
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// Authorization codes live this long.
pub const CODE_TTL: i64 = 60;

/// A configured client: its application and its `oidc` table.
#[derive(Clone, Copy)]
pub struct Client<'a> {
    pub app: &'a Application,
    pub oidc: &'a OidcClient,
}

pub fn client<'a>(state: &'a AppState, client_id: &str) -> Option<Client<'a>> {
    state
        .config
        .oidc_client(client_id)
        .map(|(app, oidc)| Client { app, oidc })
}

/// The known scopes of a `scope` parameter, in a stable order, space-separated.
pub fn known_scopes(raw: &str) -> String {
    let asked: Vec<&str> = raw.split(' ').filter(|s| !s.is_empty()).collect();
    SCOPES
        .iter()
        .filter(|s| asked.contains(s))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// RFC 8176 method references of how the session was signed in. A passkey is `hwk`
/// (proof of possession of a key kept by an authenticator); two kinds of proof add `mfa`.
pub fn amr(methods: AuthMethods) -> Vec<&'static str> {
    let mut out = Vec::new();
    for m in methods.iter() {
        let name = match m {
            AuthMethod::Password => "pwd",
            AuthMethod::Totp | AuthMethod::RecoveryCode => "otp",
            AuthMethod::Passkey => "hwk",
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.len() > 1 {
        out.push("mfa");
    }
    out
}

/// A new client secret (256 random bits) and its `client_secret_hash`.
pub fn new_client_secret() -> (String, String) {
    use sha2::{Digest, Sha256};
    let secret = crate::domain::tokens::new_token();
    let hex: String = Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (secret, format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_filtered_and_ordered() {
        assert_eq!(known_scopes("email  openid foo"), "openid email");
        assert!(has_scope("openid email", "email"));
        assert!(!has_scope("openid emails", "email"));
    }

    #[test]
    fn amr_names_each_method_once() {
        let m = AuthMethods::of(&[AuthMethod::Password, AuthMethod::Totp]);
        assert_eq!(amr(m), vec!["pwd", "otp", "mfa"]);
        assert_eq!(amr(AuthMethods::of(&[AuthMethod::Password])), vec!["pwd"]);
    }
}
