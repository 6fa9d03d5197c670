//! `devices` table: the devices each user has signed in from.

use rusqlite::{Connection, params};

use super::DbError;
use crate::domain::model::UserId;

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
