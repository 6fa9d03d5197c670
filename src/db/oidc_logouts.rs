//! `oidc_backchannel_clients` (the clients with a back-channel URI, mirrored) and
//! `oidc_logouts` (SPEC §21's logout outbox). Rows are queued by the triggers of
//! `migrations/0016_backchannel_logout.sql`, in the transaction that ends a grant.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;

/// Makes `oidc_backchannel_clients` hold `client_ids` (and, with `prune`, only them).
/// Writes only what differs, so that an unchanged configuration starts on a read-only
/// database.
pub fn sync_clients(c: &Connection, client_ids: &[String], prune: bool) -> Result<(), DbError> {
    let stored: Vec<String> = c
        .prepare("SELECT client_id FROM oidc_backchannel_clients")?
        .query_map([], |r| r.get("client_id"))?
        .collect::<Result<_, _>>()?;
    for id in stored.iter().filter(|s| prune && !client_ids.contains(s)) {
        c.execute(
            "DELETE FROM oidc_backchannel_clients WHERE client_id = ?1",
            [id],
        )?;
    }
    for id in client_ids.iter().filter(|s| !stored.contains(s)) {
        c.execute(
            "INSERT INTO oidc_backchannel_clients (client_id) VALUES (?1)",
            [id],
        )?;
    }
    Ok(())
}

/// A logout to attempt.
#[derive(Debug, Clone)]
pub struct DueLogout {
    pub id: i64,
    pub client_id: String,
    pub application: String,
    pub user_id: i64,
    pub sid: String,
    pub attempts: i64,
    pub created_at: i64,
}

/// Up to `limit` pending logouts due at `now`, oldest first.
pub fn list_due(c: &Connection, now: i64, limit: i64) -> Result<Vec<DueLogout>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, client_id, application, user_id, sid, attempts, created_at
         FROM oidc_logouts WHERE status = 'pending' AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], |r| {
        Ok(DueLogout {
            id: r.get("id")?,
            client_id: r.get("client_id")?,
            application: r.get("application")?,
            user_id: r.get("user_id")?,
            sid: r.get("sid")?,
            attempts: r.get("attempts")?,
            created_at: r.get("created_at")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update_delivered(c: &Connection, id: i64, now: i64) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE oidc_logouts SET status = 'delivered', delivered_at = ?2,
            attempts = attempts + 1, last_error = NULL
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// A failed attempt: retried at `next`, or given up (`failed`).
pub fn update_failed_attempt(
    c: &Connection,
    id: i64,
    next: i64,
    error: &str,
    give_up: bool,
) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE oidc_logouts SET attempts = attempts + 1, last_error = ?3,
            next_attempt_at = ?2, status = CASE WHEN ?4 THEN 'failed' ELSE status END
         WHERE id = ?1",
    )?
    .execute(params![id, next, error, give_up])?;
    Ok(())
}

/// How each client of a session's grants was told: (client_id, status) of the newest
/// logout per client of the session `sid`.
pub fn list_for_sid(c: &Connection, sid: &str) -> Result<Vec<(String, String)>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT client_id, status FROM oidc_logouts l WHERE sid = ?1
           AND id = (SELECT max(id) FROM oidc_logouts m
                     WHERE m.sid = l.sid AND m.client_id = l.client_id)",
    )?;
    let rows = stmt.query_map([sid], |r| Ok((r.get("client_id")?, r.get("status")?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (pending, failed, created_at of the oldest pending) for `/metrics`.
pub fn counts(c: &Connection) -> Result<(i64, i64, Option<i64>), DbError> {
    let (pending, failed): (i64, i64) = c.query_row(
        "SELECT coalesce(sum(status = 'pending'), 0), coalesce(sum(status = 'failed'), 0)
         FROM oidc_logouts WHERE status != 'delivered'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let oldest: Option<i64> = c
        .query_row(
            "SELECT min(created_at) FROM oidc_logouts WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok((pending, failed, oldest))
}

/// Deletes up to `limit` logouts delivered or given up before `cutoff`.
pub fn delete_done_before(c: &Connection, cutoff: i64, limit: i64) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "DELETE FROM oidc_logouts WHERE id IN (SELECT id FROM oidc_logouts
           WHERE status != 'pending' AND created_at < ?1 LIMIT ?2)",
    )?
    .execute(params![cutoff, limit])?)
}
