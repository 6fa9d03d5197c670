//! `links` table: the single-use links of invitations, password resets and email
//! changes. Only the SHA-256 of a link's secret is stored.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::DbError;
use crate::model::UserId;

#[derive(Debug, Clone)]
pub struct LinkRow {
    pub id: i64,
    pub kind: String,
    pub user_id: UserId,
    pub new_email: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, kind, user_id, new_email, created_at, expires_at, used_at, revoked_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<LinkRow> {
    Ok(LinkRow {
        id: r.get("id")?,
        kind: r.get("kind")?,
        user_id: r.get("user_id")?,
        new_email: r.get("new_email")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        used_at: r.get("used_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

pub struct NewLink<'a> {
    pub kind: &'a str,
    pub user_id: UserId,
    pub token_hash: &'a [u8],
    pub new_email: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert(c: &Connection, l: &NewLink<'_>) -> Result<i64, DbError> {
    c.execute(
        "INSERT INTO links (kind, user_id, token_hash, new_email, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            l.kind,
            l.user_id,
            l.token_hash,
            l.new_email,
            l.now,
            l.expires_at
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn find_by_token_hash(c: &Connection, hash: &[u8]) -> Result<Option<LinkRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM links WHERE token_hash = ?1");
    Ok(c.query_row(&sql, [hash], from_row).optional()?)
}

/// Uses a link: true for the one caller that found it unused, unrevoked and unexpired.
pub fn update_used(c: &Connection, id: i64, now: i64) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE links SET used_at = ?2
         WHERE id = ?1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2",
        params![id, now],
    )? == 1)
}

/// Revokes every open link of `kind` of a user (a newer one replaces them, or the
/// invitation was withdrawn); returns how many.
pub fn revoke_open(c: &Connection, user: UserId, kind: &str, now: i64) -> Result<usize, DbError> {
    Ok(c.execute(
        "UPDATE links SET revoked_at = ?3
         WHERE user_id = ?1 AND kind = ?2 AND used_at IS NULL AND revoked_at IS NULL",
        params![user, kind, now],
    )?)
}

/// The newest link of `kind` of a user, if any.
pub fn find_latest(c: &Connection, user: UserId, kind: &str) -> Result<Option<LinkRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM links WHERE user_id = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1"
    );
    Ok(c.query_row(&sql, params![user, kind], from_row)
        .optional()?)
}

/// Deletes every link of a user (erasure).
pub fn delete_for_user(c: &Connection, user: UserId) -> Result<usize, DbError> {
    Ok(c.execute("DELETE FROM links WHERE user_id = ?1", [user])?)
}

/// Deletes links that ended (used, revoked or expired) before `cutoff`.
pub fn delete_ended_before(c: &Connection, cutoff: i64, limit: i64) -> Result<usize, DbError> {
    Ok(c.execute(
        "DELETE FROM links WHERE id IN (SELECT id FROM links
           WHERE coalesce(used_at, revoked_at, expires_at) < ?1 LIMIT ?2)",
        params![cutoff, limit],
    )?)
}
