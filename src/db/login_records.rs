//! `login_records` table: every sign-in attempt, kept as history.

use rusqlite::{Connection, params};

use super::DbError;
use crate::domain::model::{Device, Location, UserId};

pub struct NewLoginRecord<'a> {
    pub at: i64,
    pub email: &'a str,
    pub user_id: Option<UserId>,
    pub ip: &'a str,
    pub location: &'a Location,
    pub device_id: Option<&'a str>,
    pub user_agent: &'a str,
    pub device: &'a Device,
    pub success: bool,
    pub reason: &'a str,
}

pub fn insert(c: &Connection, r: &NewLoginRecord<'_>) -> Result<i64, DbError> {
    c.prepare_cached(
        "INSERT INTO login_records (at, email, user_id, ip, country_code, country_name, city,
            device_id, user_agent, device_category, browser_name, browser_version, os_name,
            os_version, success, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        r.at,
        r.email,
        r.user_id,
        r.ip,
        r.location.country_code,
        r.location.country,
        r.location.city,
        r.device_id,
        r.user_agent,
        r.device.category,
        r.device.browser,
        r.device.browser_version,
        r.device.os,
        r.device.os_version,
        r.success,
        r.reason,
    ])?;
    Ok(c.last_insert_rowid())
}

/// Has the user signed in successfully before?
pub fn has_success(c: &Connection, user: UserId) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM login_records WHERE user_id = ?1 AND success = 1)",
        [user],
        |r| r.get(0),
    )?)
}
