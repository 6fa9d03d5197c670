//! `alert_preferences` table and the accounts' `alerts_locked` flag.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;
use crate::model::{AccountId, AlertPrefs, UserId};

/// A person's choices (all on when they never chose) and whether their account locks
/// them on.
pub fn find(c: &Connection, user: UserId) -> Result<(AlertPrefs, bool), DbError> {
    let row = c
        .prepare_cached(
            "SELECT p.new_device, p.new_country, p.travel, p.moved, a.alerts_locked
             FROM users u JOIN accounts a ON a.id = u.account_id
             LEFT JOIN alert_preferences p ON p.user_id = u.id
             WHERE u.id = ?1",
        )?
        .query_row([user], |r| {
            let prefs = match r.get::<_, Option<bool>>("new_device")? {
                None => AlertPrefs::default(),
                Some(new_device) => AlertPrefs {
                    new_device,
                    new_country: r.get("new_country")?,
                    travel: r.get("travel")?,
                    moved: r.get("moved")?,
                },
            };
            Ok((prefs, r.get::<_, bool>("alerts_locked")?))
        })
        .optional()?;
    Ok(row.unwrap_or((AlertPrefs::default(), false)))
}

pub fn upsert(c: &Connection, user: UserId, p: &AlertPrefs) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO alert_preferences (user_id, new_device, new_country, travel, moved)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id) DO UPDATE SET new_device = ?2, new_country = ?3, travel = ?4,
            moved = ?5",
    )?
    .execute(params![
        user,
        p.new_device,
        p.new_country,
        p.travel,
        p.moved
    ])?;
    Ok(())
}

pub fn is_locked(c: &Connection, account: AccountId) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("SELECT alerts_locked FROM accounts WHERE id = ?1")?
            .query_row([account], |r| r.get(0))
            .optional()?
            .unwrap_or(false),
    )
}

pub fn update_locked(c: &Connection, account: AccountId, locked: bool) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("UPDATE accounts SET alerts_locked = ?2 WHERE id = ?1")?
            .execute(params![account, locked])?
            == 1,
    )
}
