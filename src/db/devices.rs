//! `devices` table: the devices each user has signed in from.

use rusqlite::{Connection, params};

use super::DbError;
use crate::model::UserId;

/// Records a sign-in from `device_id`; returns true when the device was new to the user.
pub fn upsert(c: &Connection, user: UserId, device_id: &str, now: i64) -> Result<bool, DbError> {
    let inserted = c.execute(
        "INSERT INTO devices (user_id, device_id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (user_id, device_id) DO NOTHING",
        params![user, device_id, now],
    )?;
    if inserted == 0 {
        c.execute(
            "UPDATE devices SET last_seen = ?3 WHERE user_id = ?1 AND device_id = ?2",
            params![user, device_id, now],
        )?;
    }
    Ok(inserted == 1)
}

/// Whether the user has signed in from `device_id` before.
pub fn is_known(c: &Connection, user: UserId, device_id: &str) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM devices WHERE user_id = ?1 AND device_id = ?2")?
            .exists(params![user, device_id])?,
    )
}

/// A device a user has signed in from (for the data export).
#[derive(Debug, Clone)]
pub struct KnownDevice {
    pub device_id: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

pub fn list_for_user(c: &Connection, user: UserId) -> Result<Vec<KnownDevice>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT device_id, first_seen, last_seen FROM devices WHERE user_id = ?1
         ORDER BY last_seen DESC",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok(KnownDevice {
            device_id: r.get("device_id")?,
            first_seen: r.get("first_seen")?,
            last_seen: r.get("last_seen")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Forgets up to `limit` devices last seen before `cutoff`; returns how many.
pub fn delete_unseen_before(c: &Connection, cutoff: i64, limit: i64) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "DELETE FROM devices WHERE (user_id, device_id) IN (
           SELECT user_id, device_id FROM devices WHERE last_seen < ?1 LIMIT ?2)",
    )?
    .execute(params![cutoff, limit])?)
}

/// Forgets every device of a user (erasure).
pub fn delete_for_user(c: &Connection, user: UserId) -> Result<usize, DbError> {
    Ok(c.execute("DELETE FROM devices WHERE user_id = ?1", [user])?)
}
