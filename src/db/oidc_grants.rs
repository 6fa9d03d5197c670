//! `oidc_grants`, `oidc_codes` and `oidc_consents`: what a Doorman session gave a
//! client (SPEC §20). Tokens are in [`super::oidc_tokens`].

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;
use crate::model::UserId;

pub struct NewCode<'a> {
    pub code_hash: &'a [u8],
    pub session_pk: i64,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub scopes: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert_code(c: &Connection, n: &NewCode<'_>) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO oidc_codes (code_hash, session_id, client_id, redirect_uri, code_challenge,
            nonce, scopes, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        n.code_hash,
        n.session_pk,
        n.client_id,
        n.redirect_uri,
        n.code_challenge,
        n.nonce,
        n.scopes,
        n.now,
        n.expires_at
    ])?;
    Ok(())
}

/// A stored code, with what the token endpoint needs of its session and person.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub session_pk: i64,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scopes: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub grant_id: Option<i64>,
}

pub fn find_code(c: &Connection, hash: &[u8]) -> Result<Option<CodeRow>, DbError> {
    Ok(c.prepare_cached(
        "SELECT session_id, client_id, redirect_uri, code_challenge, nonce, scopes, expires_at,
                used_at, grant_id
         FROM oidc_codes WHERE code_hash = ?1",
    )?
    .query_row([hash], |r| {
        Ok(CodeRow {
            session_pk: r.get("session_id")?,
            client_id: r.get("client_id")?,
            redirect_uri: r.get("redirect_uri")?,
            code_challenge: r.get("code_challenge")?,
            nonce: r.get("nonce")?,
            scopes: r.get("scopes")?,
            expires_at: r.get("expires_at")?,
            used_at: r.get("used_at")?,
            grant_id: r.get("grant_id")?,
        })
    })
    .optional()?)
}

/// Marks an unused code used; false when it had been used already.
pub fn use_code(c: &Connection, hash: &[u8], now: i64) -> Result<bool, DbError> {
    Ok(c.prepare_cached(
        "UPDATE oidc_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
    )?
    .execute(params![hash, now])?
        == 1)
}

/// Records the grant a code gave, so that a second use can end it.
pub fn set_code_grant(c: &Connection, hash: &[u8], grant: i64) -> Result<(), DbError> {
    c.prepare_cached("UPDATE oidc_codes SET grant_id = ?2 WHERE code_hash = ?1")?
        .execute(params![hash, grant])?;
    Ok(())
}

/// Deletes codes that expired before `cutoff`; returns how many.
pub fn delete_codes_expired_before(c: &Connection, cutoff: i64) -> Result<usize, DbError> {
    Ok(
        c.prepare_cached("DELETE FROM oidc_codes WHERE expires_at < ?1")?
            .execute([cutoff])?,
    )
}

pub struct NewGrant<'a> {
    pub session_pk: i64,
    pub user_id: UserId,
    pub client_id: &'a str,
    pub application: &'a str,
    pub sid: &'a str,
    pub scopes: &'a str,
    pub now: i64,
}

/// Inserts a grant of a live session; `None` when the session has ended meanwhile.
pub fn insert_grant(c: &Connection, g: &NewGrant<'_>) -> Result<Option<i64>, DbError> {
    let n = c
        .prepare_cached(
            "INSERT INTO oidc_grants (session_id, user_id, client_id, application, sid, scopes,
                created_at, last_used_at)
             SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?7 FROM sessions
             WHERE id = ?1 AND ended_at IS NULL AND expires_at > ?7",
        )?
        .execute(params![
            g.session_pk,
            g.user_id,
            g.client_id,
            g.application,
            g.sid,
            g.scopes,
            g.now
        ])?;
    Ok((n == 1).then(|| c.last_insert_rowid()))
}

/// Ends a live grant (its tokens go with it, by trigger); false when it had ended.
pub fn end_grant(c: &Connection, id: i64, now: i64, reason: &str) -> Result<bool, DbError> {
    Ok(c.prepare_cached(
        "UPDATE oidc_grants SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![id, now, reason])?
        == 1)
}

pub fn touch_grant(c: &Connection, id: i64, now: i64) -> Result<(), DbError> {
    c.prepare_cached("UPDATE oidc_grants SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// The live grants of one session that a client holds, oldest first.
pub fn live_grants_of(
    c: &Connection,
    session_pk: i64,
    client_id: &str,
) -> Result<Vec<i64>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id FROM oidc_grants WHERE session_id = ?1 AND client_id = ?2 AND ended_at IS NULL
         ORDER BY id",
    )?;
    let rows = stmt.query_map(params![session_pk, client_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The scopes a person agreed to give a client, if they were asked.
pub fn find_consent(
    c: &Connection,
    user: UserId,
    client_id: &str,
) -> Result<Option<String>, DbError> {
    Ok(
        c.prepare_cached("SELECT scopes FROM oidc_consents WHERE user_id = ?1 AND client_id = ?2")?
            .query_row(params![user, client_id], |r| r.get(0))
            .optional()?,
    )
}

pub fn save_consent(
    c: &Connection,
    user: UserId,
    client_id: &str,
    scopes: &str,
    now: i64,
) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO oidc_consents (user_id, client_id, scopes, given_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes,
            given_at = excluded.given_at",
    )?
    .execute(params![user, client_id, scopes, now])?;
    Ok(())
}

/// The person a grant is about, as the claims need them.
#[derive(Debug, Clone)]
pub struct PersonRow {
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub role: crate::model::Role,
    pub status: crate::model::UserStatus,
    pub account_name: String,
}

pub fn find_person(c: &Connection, user: UserId) -> Result<Option<PersonRow>, DbError> {
    Ok(c.prepare_cached(
        "SELECT u.email, u.name, u.email_verified, u.role, u.status, a.name AS account_name
         FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.id = ?1",
    )?
    .query_row([user], |r| {
        Ok(PersonRow {
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

/// Ends the live grants of one session for one client (§21's per-app sign-out); how
/// many. The triggers end their tokens and queue the client's logout token.
pub fn end_for_session_client(
    c: &Connection,
    session_pk: i64,
    client_id: &str,
    now: i64,
) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "UPDATE oidc_grants SET ended_at = ?3, end_reason = 'signed_out'
         WHERE session_id = ?1 AND client_id = ?2 AND ended_at IS NULL",
    )?
    .execute(params![session_pk, client_id, now])?)
}
