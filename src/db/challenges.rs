//! `login_challenges`: sign-ins waiting for their second step or enrolment, and WebAuthn
//! ceremonies in progress. Only the SHA-256 of a challenge's token is stored.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::DbError;
use crate::domain::model::UserId;

#[derive(Clone)]
pub struct ChallengeRow {
    pub id: i64,
    pub purpose: String,
    pub user_id: Option<UserId>,
    pub credentials_version: i64,
    pub application: String,
    pub device_id: String,
    pub target: String,
    pub factor_id: Option<i64>,
    /// A WebAuthn ceremony's state: secret-ish, never logged.
    pub state: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<ChallengeRow> {
    Ok(ChallengeRow {
        id: r.get("id")?,
        purpose: r.get("purpose")?,
        user_id: r.get("user_id")?,
        credentials_version: r.get("credentials_version")?,
        application: r.get("application")?,
        device_id: r.get("device_id")?,
        target: r.get("target")?,
        factor_id: r.get("factor_id")?,
        state: r.get("state")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
    })
}

pub struct NewChallenge<'a> {
    pub token_hash: &'a [u8],
    pub purpose: &'a str,
    pub user_id: Option<UserId>,
    pub credentials_version: i64,
    pub application: &'a str,
    pub device_id: &'a str,
    pub target: &'a str,
    pub state: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert(c: &Connection, n: &NewChallenge<'_>) -> Result<i64, DbError> {
    c.prepare_cached(
        "INSERT INTO login_challenges (token_hash, purpose, user_id, credentials_version,
            application, device_id, target, state, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        n.token_hash,
        n.purpose,
        n.user_id,
        n.credentials_version,
        n.application,
        n.device_id,
        n.target,
        n.state,
        n.now,
        n.expires_at
    ])?;
    Ok(c.last_insert_rowid())
}

/// The live challenge of this token and purpose.
pub fn find(
    c: &Connection,
    hash: &[u8],
    purpose: &str,
    now: i64,
) -> Result<Option<ChallengeRow>, DbError> {
    Ok(c.prepare_cached(
        "SELECT * FROM login_challenges
             WHERE token_hash = ?1 AND purpose = ?2 AND expires_at > ?3",
    )?
    .query_row(params![hash, purpose, now], from_row)
    .optional()?)
}

pub fn set_factor(c: &Connection, id: i64, factor: i64) -> Result<(), DbError> {
    c.prepare_cached("UPDATE login_challenges SET factor_id = ?2 WHERE id = ?1")?
        .execute(params![id, factor])?;
    Ok(())
}

pub fn set_state(c: &Connection, id: i64, state: &str) -> Result<(), DbError> {
    c.prepare_cached("UPDATE login_challenges SET state = ?2 WHERE id = ?1")?
        .execute(params![id, state])?;
    Ok(())
}

/// Deletes a challenge; true when this call did (so only one request completes it).
pub fn delete(c: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("DELETE FROM login_challenges WHERE id = ?1")?
            .execute([id])?
            == 1,
    )
}

pub fn delete_expired(c: &Connection, now: i64) -> Result<usize, DbError> {
    Ok(c.execute("DELETE FROM login_challenges WHERE expires_at <= ?1", [now])?)
}
