//! `login_records` table: every sign-in attempt, kept as history.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;
use crate::model::{Device, Location, UserId};

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
            os_version, success, reason, latitude, longitude, accuracy_km, network)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20)",
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
        r.location.coords.map(|p| p.latitude),
        r.location.coords.map(|p| p.longitude),
        r.location.coords.and_then(|p| p.accuracy_km),
        r.location.network,
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

/// Has the user signed in successfully from this country before?
pub fn has_country(c: &Connection, user: UserId, country_code: &str) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM login_records
                        WHERE user_id = ?1 AND success = 1 AND country_code = ?2)",
        params![user, country_code],
        |r| r.get(0),
    )?)
}

/// The user's latest successful sign-in: when, and where (for the travel check).
pub fn find_last_success(c: &Connection, user: UserId) -> Result<Option<(i64, Location)>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT at, country_code, country_name, city, latitude, longitude, accuracy_km, network
         FROM login_records WHERE user_id = ?1 AND success = 1 ORDER BY id DESC LIMIT 1",
    )?;
    Ok(stmt
        .query_row([user], |r| {
            Ok((
                r.get("at")?,
                super::location(
                    r,
                    [
                        "country_code",
                        "country_name",
                        "city",
                        "latitude",
                        "longitude",
                        "accuracy_km",
                        "network",
                    ],
                )?,
            ))
        })
        .optional()?)
}

#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub id: i64,
    pub at: i64,
    pub email: String,
    pub user_id: Option<UserId>,
    pub ip: String,
    pub location: Location,
    pub device: Device,
    /// The device id presented, if any.
    pub device_id: Option<String>,
    pub success: bool,
    pub reason: String,
}

/// A user's sign-in history, newest first, before record `before` (keyset paging).
pub fn list_for_user(
    c: &Connection,
    user: UserId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LoginRecord>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at, email, user_id, ip, country_code, country_name, city, latitude, longitude,
                accuracy_km, network, device_category, browser_name, browser_version, os_name,
                os_version, device_id, success, reason
         FROM login_records WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![user, before.unwrap_or(i64::MAX), limit], |r| {
        Ok(LoginRecord {
            id: r.get("id")?,
            at: r.get("at")?,
            email: r.get("email")?,
            user_id: r.get("user_id")?,
            ip: r.get("ip")?,
            location: super::location(
                r,
                [
                    "country_code",
                    "country_name",
                    "city",
                    "latitude",
                    "longitude",
                    "accuracy_km",
                    "network",
                ],
            )?,
            device: super::device(
                r,
                [
                    "device_category",
                    "browser_name",
                    "browser_version",
                    "os_name",
                    "os_version",
                ],
            )?,
            device_id: r.get("device_id")?,
            success: r.get("success")?,
            reason: r.get("reason")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes up to `limit` records older than `cutoff`; returns how many.
pub fn delete_before(c: &Connection, cutoff: i64, limit: i64) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "DELETE FROM login_records WHERE id IN (
           SELECT id FROM login_records WHERE at < ?1 LIMIT ?2)",
    )?
    .execute(params![cutoff, limit])?)
}

/// Up to `limit` records older than `cutoff` whose IP is still whole, as (id, IP).
pub fn find_whole_ips_before(
    c: &Connection,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, ip FROM login_records WHERE at < ?1 AND instr(ip, '/') = 0 AND ip != ''
         LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![cutoff, limit], |r| {
        Ok((r.get::<_, i64>("id")?, r.get::<_, String>("ip")?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update_ip(c: &Connection, id: i64, ip: &str) -> Result<(), DbError> {
    c.prepare_cached("UPDATE login_records SET ip = ?2 WHERE id = ?1")?
        .execute(params![id, ip])?;
    Ok(())
}

/// Deletes the records of a user, and those of attempts with their email (erasure).
pub fn delete_for_user(c: &Connection, user: UserId, email: &str) -> Result<usize, DbError> {
    Ok(c.execute(
        "DELETE FROM login_records WHERE user_id = ?1 OR email = ?2 COLLATE NOCASE",
        params![user, email],
    )?)
}
