//! What a client learns about the person: the claims of `/oidc/userinfo` and of the id
//! token, by scope (SPEC §20).

use serde_json::{Map, Value, json};

use super::has_scope;
use crate::db::{self, oidc_tokens::TokenRow};
use crate::error::Result;
use crate::model::UserStatus;
use crate::state::AppState;

/// The person behind a grant, as the claims need them.
#[derive(Debug, Clone)]
pub struct Person {
    pub user_id: crate::model::UserId,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub role: crate::model::Role,
    pub account_name: String,
}

impl From<&TokenRow> for Person {
    fn from(t: &TokenRow) -> Self {
        Person {
            user_id: t.user_id,
            email: t.email.clone(),
            name: t.name.clone(),
            email_verified: t.email_verified,
            role: t.role,
            account_name: t.account_name.clone(),
        }
    }
}

/// `sub` and the claims of `scopes`: `profile` (name, preferred_username), `email`
/// (email, email_verified: only an address the person proved, §19) and `groups` (the
/// role and the account name, §19).
pub fn claims(state: &AppState, who: &Person, scopes: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("sub".into(), json!(state.oidc_keys.subject(who.user_id)));
    if has_scope(scopes, "profile") {
        out.insert("name".into(), json!(who.name));
        out.insert("preferred_username".into(), json!(who.email));
    }
    if has_scope(scopes, "email") {
        out.insert("email".into(), json!(who.email));
        out.insert("email_verified".into(), json!(who.email_verified));
    }
    if has_scope(scopes, "groups") {
        out.insert(
            "groups".into(),
            json!([who.role.as_str(), who.account_name]),
        );
    }
    out
}

/// Why an access token is refused at `/oidc/userinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    Expired,
    SessionEnded,
    UserDisabled,
}

/// The claims an access token reads, refused the moment its Doorman session ends. A
/// read only, usually inline (no hand-off to a blocking thread).
pub async fn userinfo(
    state: &AppState,
    token: &str,
) -> Result<std::result::Result<Map<String, Value>, Refused>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(Err(Refused::Unknown));
    }
    let hash = crate::domain::tokens::hash_token(token);
    let now = crate::clock::now();
    let row = state
        .db
        .read_or_block(move |c, _| -> Result<Option<Option<TokenRow>>> {
            Ok(Some(db::oidc_tokens::find(c, &hash, now)?))
        })
        .await?;
    let Some(row) = row.filter(|r| r.kind == "access" && !r.grant_ended) else {
        return Ok(Err(Refused::Unknown));
    };
    if row.session_live_until.is_none() {
        return Ok(Err(Refused::SessionEnded));
    }
    if row.status != UserStatus::Active {
        return Ok(Err(Refused::UserDisabled));
    }
    if row.expires_at.is_some_and(|t| t <= now) {
        return Ok(Err(Refused::Expired));
    }
    Ok(Ok(claims(state, &Person::from(&row), &row.scopes)))
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Unknown => "unknown_token",
            Refused::Expired => "expired",
            Refused::SessionEnded => "session_ended",
            Refused::UserDisabled => "user_disabled",
        }
    }
}
