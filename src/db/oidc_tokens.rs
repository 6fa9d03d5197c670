//! `oidc_tokens`: access and refresh tokens, as hashes (SPEC §20).

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;
use crate::model::{AccountId, AuthMethods, Role, UserId, UserStatus};

pub fn insert(
    c: &Connection,
    hash: &[u8],
    grant: i64,
    kind: &str,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO oidc_tokens (token_hash, grant_id, kind, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![hash, grant, kind, now, expires_at])?;
    Ok(())
}

/// A stored token with its grant, the grant's session and the session's person: all a
/// token endpoint or userinfo needs, in one lookup.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub kind: String,
    pub expires_at: Option<i64>,
    pub used_at: Option<i64>,
    pub grant_id: i64,
    pub client_id: String,
    pub scopes: String,
    pub grant_ended: bool,
    pub session_pk: i64,
    pub sid: String,
    pub session_live_until: Option<i64>,
    pub auth_time: i64,
    pub auth_methods: AuthMethods,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub role: Role,
    pub status: UserStatus,
    pub account_name: String,
}

pub fn find(c: &Connection, hash: &[u8], now: i64) -> Result<Option<TokenRow>, DbError> {
    Ok(c.prepare_cached(
        "SELECT t.kind, t.expires_at, t.used_at, t.grant_id, g.client_id, g.scopes,
                g.ended_at IS NOT NULL AS grant_ended, g.session_id, g.sid,
                CASE WHEN s.ended_at IS NULL AND s.expires_at > ?2 THEN s.expires_at END
                    AS live_until,
                s.verified_at, s.auth_methods, u.id AS user_id, u.account_id, u.email, u.name,
                u.email_verified, u.role, u.status, a.name AS account_name
         FROM oidc_tokens t
         JOIN oidc_grants g ON g.id = t.grant_id
         JOIN sessions s ON s.id = g.session_id
         JOIN users u ON u.id = g.user_id
         JOIN accounts a ON a.id = u.account_id
         WHERE t.token_hash = ?1",
    )?
    .query_row(params![hash, now], |r| {
        Ok(TokenRow {
            kind: r.get("kind")?,
            expires_at: r.get("expires_at")?,
            used_at: r.get("used_at")?,
            grant_id: r.get("grant_id")?,
            client_id: r.get("client_id")?,
            scopes: r.get("scopes")?,
            grant_ended: r.get("grant_ended")?,
            session_pk: r.get("session_id")?,
            sid: r.get("sid")?,
            session_live_until: r.get("live_until")?,
            auth_time: r.get("verified_at")?,
            auth_methods: AuthMethods::parse_list(r.get_ref("auth_methods")?.as_str()?),
            user_id: r.get("user_id")?,
            account_id: r.get("account_id")?,
            email: r.get("email")?,
            name: r.get("name")?,
            email_verified: r.get("email_verified")?,
            role: r.get("role")?,
            status: r.get("status")?,
            account_name: r.get("account_name")?,
        })
    })
    .optional()?)
}

/// Marks an unused refresh token used; false when it had been used already.
pub fn use_once(c: &Connection, hash: &[u8], now: i64) -> Result<bool, DbError> {
    Ok(c.prepare_cached(
        "UPDATE oidc_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
    )?
    .execute(params![hash, now])?
        == 1)
}

pub fn delete(c: &Connection, hash: &[u8]) -> Result<usize, DbError> {
    Ok(
        c.prepare_cached("DELETE FROM oidc_tokens WHERE token_hash = ?1")?
            .execute([hash])?,
    )
}

/// Deletes access tokens that expired before `cutoff`; returns how many.
pub fn delete_expired_before(c: &Connection, cutoff: i64) -> Result<usize, DbError> {
    Ok(
        c.prepare_cached("DELETE FROM oidc_tokens WHERE kind = 'access' AND expires_at < ?1")?
            .execute([cutoff])?,
    )
}
