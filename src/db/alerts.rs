//! `alerts` table (the email outbox) and `secrets`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::DbError;
use crate::model::UserId;

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub id: i64,
    pub user_id: UserId,
    pub session_id: Option<i64>,
    pub reasons: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
    pub created_at: i64,
    pub held_back: i64,
    pub message_id: String,
    pub details: String,
    pub link_used_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, session_id, reasons, status, attempts, next_attempt_at, last_error,
    sent_at, created_at, held_back, message_id, details, link_used_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        session_id: r.get("session_id")?,
        reasons: r.get("reasons")?,
        status: r.get("status")?,
        attempts: r.get("attempts")?,
        next_attempt_at: r.get("next_attempt_at")?,
        last_error: r.get("last_error")?,
        sent_at: r.get("sent_at")?,
        created_at: r.get("created_at")?,
        held_back: r.get("held_back")?,
        message_id: r.get("message_id")?,
        details: r.get("details")?,
        link_used_at: r.get("link_used_at")?,
    })
}

pub struct NewAlert<'a> {
    pub user_id: UserId,
    pub session_id: Option<i64>,
    pub reasons: &'a str,
    pub status: &'a str,
    pub now: i64,
    pub message_id: &'a str,
    pub details: &'a str,
}

pub fn insert(c: &Connection, a: &NewAlert<'_>) -> Result<i64, DbError> {
    c.prepare_cached(
        "INSERT INTO alerts (user_id, session_id, reasons, status, next_attempt_at, created_at, message_id, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
    )?
    .execute(params![a.user_id, a.session_id, a.reasons, a.status, a.now, a.message_id, a.details])?;
    Ok(c.last_insert_rowid())
}

/// Alerts of a user that count toward the hourly limit (sent or on their way): sign-in
/// alerts only, not security notices, invitations, reset links or email changes.
pub fn count_recent_mailed(c: &Connection, user: UserId, since: i64) -> Result<i64, DbError> {
    Ok(c.query_row(
        "SELECT count(*) FROM alerts WHERE user_id = ?1 AND created_at > ?2
           AND status IN ('pending', 'sent', 'failed')
           AND reasons NOT IN ('password_changed', 'invitation', 'password_reset_link',
                               'password_reset', 'email_confirm', 'email_changed',
                               'email_change_requested',
                               'second_factor_added', 'second_factor_removed',
                               'recovery_code_used', 'second_factors_reset',
                               'password_known')",
        params![user, since],
        |r| r.get(0),
    )?)
}

/// When the user's latest email of kind `reasons` was queued, if any.
pub fn find_latest_of(c: &Connection, user: UserId, reasons: &str) -> Result<Option<i64>, DbError> {
    Ok(c.query_row(
        "SELECT max(created_at) FROM alerts WHERE user_id = ?1 AND reasons = ?2",
        params![user, reasons],
        |r| r.get(0),
    )?)
}

/// Marks the user's unreported suppressed alerts as reported by `alert`; returns how many.
pub fn report_suppressed(c: &Connection, user: UserId, alert: i64) -> Result<i64, DbError> {
    let n = c.execute(
        "UPDATE alerts SET reported_by = ?2
         WHERE user_id = ?1 AND status = 'suppressed' AND reported_by IS NULL",
        params![user, alert],
    )?;
    c.execute(
        "UPDATE alerts SET held_back = ?2 WHERE id = ?1",
        params![alert, n as i64],
    )?;
    Ok(n as i64)
}

/// The next alert due for sending.
pub fn next_due(c: &Connection, now: i64) -> Result<Option<AlertRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts WHERE status = 'pending' AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, id LIMIT 1"
    );
    Ok(c.prepare_cached(&sql)?
        .query_row([now], from_row)
        .optional()?)
}

pub fn find_by_id(c: &Connection, id: i64) -> Result<Option<AlertRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

pub fn list_recent(c: &Connection, limit: i64) -> Result<Vec<AlertRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?1");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update_sent(c: &Connection, id: i64, now: i64) -> Result<(), DbError> {
    c.execute(
        "UPDATE alerts SET status = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL
         WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// Records a failed attempt; `give_up` turns it into `failed` (retry with the CLI).
pub fn update_failed_attempt(
    c: &Connection,
    id: i64,
    next_attempt_at: i64,
    error: &str,
    give_up: bool,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE alerts SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3,
            status = CASE WHEN ?4 THEN 'failed' ELSE status END
         WHERE id = ?1",
        params![id, next_attempt_at, error, give_up],
    )?;
    Ok(())
}

/// Puts an alert back in the queue, due now.
pub fn update_retry(c: &Connection, id: i64, now: i64) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE alerts SET status = 'pending', next_attempt_at = ?2 WHERE id = ?1 AND status != 'sent'",
        params![id, now],
    )? == 1)
}

/// Uses the alert's end-session link; false when it was used already.
pub fn update_link_used(c: &Connection, id: i64, now: i64) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE alerts SET link_used_at = ?2 WHERE id = ?1 AND link_used_at IS NULL",
        params![id, now],
    )? == 1)
}

/// "Yes, it was me": the first answer counts; false when it was given before.
pub fn update_confirmed(c: &Connection, id: i64, now: i64) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE alerts SET confirmed_at = ?2 WHERE id = ?1 AND confirmed_at IS NULL",
        params![id, now],
    )? == 1)
}

/// "No, secure my account": recorded once; false when it was reported before.
pub fn update_reported(c: &Connection, id: i64, now: i64) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE alerts SET reported_at = ?2 WHERE id = ?1 AND reported_at IS NULL",
        params![id, now],
    )? == 1)
}

/// When the alert was confirmed and when reported, if ever.
pub fn find_answers(c: &Connection, id: i64) -> Result<(Option<i64>, Option<i64>), DbError> {
    Ok(c.query_row(
        "SELECT confirmed_at, reported_at FROM alerts WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .unwrap_or((None, None)))
}

pub fn count_by_status(c: &Connection) -> Result<Vec<(String, i64)>, DbError> {
    let mut stmt = c.prepare_cached("SELECT status, count(*) FROM alerts GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A named secret, created from `make` the first time it is asked for.
pub fn secret(
    c: &Connection,
    name: &str,
    make: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>, DbError> {
    if let Some(v) = c
        .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?
    {
        return Ok(v);
    }
    c.execute(
        "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        params![name, make()],
    )?;
    Ok(
        c.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
            r.get(0)
        })?,
    )
}

/// When the oldest unsent alert was queued.
pub fn oldest_pending(c: &Connection) -> Result<Option<i64>, DbError> {
    Ok(c.query_row(
        "SELECT min(created_at) FROM alerts WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )?)
}

/// A user's alerts, newest first (for the data export).
pub fn list_for_user(c: &Connection, user: UserId) -> Result<Vec<AlertRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM alerts WHERE user_id = ?1 ORDER BY id DESC");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes up to `limit` alerts created before `cutoff`, oldest first; returns how
/// many. A suppressed alert points (`reported_by`) at a later one, so deleting in id
/// order never leaves a pointer to a deleted row; any that would are cleared first.
pub fn delete_before(c: &Connection, cutoff: i64, limit: i64) -> Result<usize, DbError> {
    let tx = c.unchecked_transaction()?;
    let batch = "SELECT id FROM alerts WHERE created_at < ?1 ORDER BY id LIMIT ?2";
    tx.prepare_cached(&format!(
        "UPDATE alerts SET reported_by = NULL WHERE reported_by IN ({batch})"
    ))?
    .execute(params![cutoff, limit])?;
    let n = tx
        .prepare_cached(&format!("DELETE FROM alerts WHERE id IN ({batch})"))?
        .execute(params![cutoff, limit])?;
    tx.commit()?;
    Ok(n)
}

/// Up to `limit` alerts created before `cutoff` whose details hold a whole IP, as
/// (id, IP).
pub fn find_whole_ips_before(
    c: &Connection,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, ip FROM (
           SELECT id, json_extract(details, '$.ip') AS ip FROM alerts
           WHERE created_at < ?1 AND json_valid(details))
         WHERE typeof(ip) = 'text' AND instr(ip, '/') = 0 AND ip != '' LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![cutoff, limit], |r| {
        Ok((r.get::<_, i64>("id")?, r.get::<_, String>("ip")?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update_ip(c: &Connection, id: i64, ip: &str) -> Result<(), DbError> {
    c.prepare_cached("UPDATE alerts SET details = json_set(details, '$.ip', ?2) WHERE id = ?1")?
        .execute(params![id, ip])?;
    Ok(())
}

/// Deletes every alert of a user (erasure).
/// Erasure reaches other people's outboxes (SPEC §19): deletes the notices admins got
/// about `user`'s "not me" reports (they name the person and describe their sign-in),
/// found by the address they name or by the reported session, and takes the person's
/// address out of invitations they sent. Returns how many notices were deleted.
pub fn delete_reports_about(c: &Connection, user: UserId, email: &str) -> Result<usize, DbError> {
    let reports = "SELECT id FROM alerts WHERE reasons = 'not_me_report' AND user_id != ?1
           AND (json_extract(details, '$.about') = ?2 COLLATE NOCASE
             OR json_extract(details, '$.session_public_id') IN
                  (SELECT public_id FROM sessions WHERE user_id = ?1))";
    c.execute(
        &format!("UPDATE alerts SET reported_by = NULL WHERE reported_by IN ({reports})"),
        params![user, email],
    )?;
    let deleted = c.execute(
        &format!("DELETE FROM alerts WHERE id IN ({reports})"),
        params![user, email],
    )?;
    c.execute(
        "UPDATE alerts SET details = json_set(details, '$.invited_by', 'an administrator')
         WHERE reasons = 'invitation' AND user_id != ?1
           AND json_extract(details, '$.invited_by') = ?2 COLLATE NOCASE",
        params![user, email],
    )?;
    Ok(deleted)
}

pub fn delete_for_user(c: &Connection, user: UserId) -> Result<usize, DbError> {
    c.execute(
        "UPDATE alerts SET reported_by = NULL
         WHERE reported_by IN (SELECT id FROM alerts WHERE user_id = ?1)",
        [user],
    )?;
    Ok(c.execute("DELETE FROM alerts WHERE user_id = ?1", [user])?)
}
