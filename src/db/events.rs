//! `events` table (the security log) and the queueing of its webhook deliveries.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;
use crate::model::{AccountId, Device, EventType, Location, UserId};

pub struct NewEventRow<'a> {
    pub at: i64,
    pub kind: EventType,
    pub actor: Option<UserId>,
    pub user: Option<UserId>,
    pub account: Option<AccountId>,
    pub session_id: Option<&'a str>,
    pub ip: &'a str,
    pub location: &'a Location,
    pub device: &'a Device,
    /// A JSON object.
    pub details: &'a str,
}

/// Inserts an event and queues a delivery for every webhook whose patterns match its
/// type, in the caller's transaction. `at` is raised to the previous event's when the
/// clock is behind it, so that time stays in id order. Returns the event's id and how
/// many deliveries were queued.
pub fn insert(c: &Connection, e: &NewEventRow<'_>) -> Result<(i64, usize), DbError> {
    c.prepare_cached(
        "INSERT INTO events (at, type, actor_id, user_id, account_id, session_id, ip,
            country_code, country_name, city, device_category, browser_name, browser_version,
            os_name, os_version, details)
         VALUES (max(?1, coalesce((SELECT at FROM events ORDER BY id DESC LIMIT 1), ?1)),
            ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        e.at,
        e.kind,
        e.actor,
        e.user,
        e.account,
        e.session_id,
        e.ip,
        e.location.country_code,
        e.location.country,
        e.location.city,
        e.device.category,
        e.device.browser,
        e.device.browser_version,
        e.device.os,
        e.device.os_version,
        e.details,
    ])?;
    let id = c.last_insert_rowid();
    let queued = c
        .prepare_cached(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, queue, message_id, status,
                next_attempt_at, created_at)
             SELECT w.id, ?1, ?2, 'msg_' || lower(hex(randomblob(16))), 'pending', ?3, ?3
             FROM webhooks w
             WHERE EXISTS (SELECT 1 FROM json_each(w.events) p WHERE ?4 GLOB p.value)",
        )?
        .execute(params![id, e.user.map_or(0, |u| u.0), e.at, e.kind])?;
    Ok((id, queued))
}

/// A stored event with the emails and account name it refers to (`None` once that user
/// or account is gone: a tombstone).
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub actor: Option<(UserId, Option<String>)>,
    pub user: Option<(UserId, Option<String>)>,
    pub account: Option<(AccountId, Option<String>)>,
    pub session_id: Option<String>,
    pub ip: String,
    pub location: Location,
    pub device: Device,
    pub details: String,
}

/// The actor is most often the user the event concerns: their email is read once.
const COLUMNS: &str = "SELECT e.id, e.at, e.type, e.actor_id,
    CASE WHEN e.actor_id = e.user_id THEN uu.email
         ELSE (SELECT email FROM users WHERE id = e.actor_id) END AS actor_email,
    e.user_id, uu.email AS user_email, e.account_id, a.name AS account_name, e.session_id,
    e.ip, e.country_code, e.country_name, e.city, e.device_category, e.browser_name,
    e.browser_version, e.os_name, e.os_version, e.details";
const JOINS: &str = "LEFT JOIN users uu ON uu.id = e.user_id
    LEFT JOIN accounts a ON a.id = e.account_id";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    let pair = |id: Option<i64>, text: Option<String>| id.map(|i| (i, text));
    Ok(EventRow {
        id: r.get("id")?,
        at: r.get("at")?,
        kind: r.get("type")?,
        actor: pair(r.get("actor_id")?, r.get("actor_email")?).map(|(i, t)| (UserId(i), t)),
        user: pair(r.get("user_id")?, r.get("user_email")?).map(|(i, t)| (UserId(i), t)),
        account: pair(r.get("account_id")?, r.get("account_name")?).map(|(i, t)| (AccountId(i), t)),
        session_id: r.get("session_id")?,
        ip: r.get("ip")?,
        location: super::place(r, ["country_code", "country_name", "city"])?,
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
        details: r.get("details")?,
    })
}

pub fn find_by_id(c: &Connection, id: i64) -> Result<Option<EventRow>, DbError> {
    Ok(
        c.prepare_cached(&format!("{COLUMNS} FROM events e {JOINS} WHERE e.id = ?1"))?
            .query_row([id], from_row)
            .optional()?,
    )
}

/// Filters of a listing; `None` is "any".
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub user: Option<UserId>,
    pub account: Option<AccountId>,
    pub kind: Option<EventType>,
    /// Events at or after this time.
    pub since: Option<i64>,
    /// Events at or before this time.
    pub until: Option<i64>,
    /// Leave out the events of owners (they rank above the caller).
    pub hide_owners: bool,
    /// Keyset: only events with a smaller id (the last one of the previous page).
    pub before: Option<i64>,
}

/// One page of events matching `f`, newest first. Times become id bounds first (see
/// the migration: time follows id order), so every filter walks one index, in order,
/// and stops after `limit` rows.
pub fn list(c: &Connection, f: &EventFilter, limit: i64) -> Result<Vec<EventRow>, DbError> {
    use rusqlite::types::Value;
    let mut cond = vec!["1"];
    let mut args: Vec<Value> = Vec::new();
    if let Some(since) = f.since {
        let first: Option<i64> = c
            .prepare_cached("SELECT id FROM events WHERE at >= ?1 ORDER BY at, id LIMIT 1")?
            .query_row([since], |r| r.get(0))
            .optional()?;
        let Some(first) = first else {
            return Ok(Vec::new());
        };
        cond.push("e.id >= ?");
        args.push(Value::Integer(first));
    }
    if let Some(until) = f.until {
        let after: Option<i64> = c
            .prepare_cached("SELECT id FROM events WHERE at > ?1 ORDER BY at, id LIMIT 1")?
            .query_row([until], |r| r.get(0))
            .optional()?;
        if let Some(after) = after {
            cond.push("e.id < ?");
            args.push(Value::Integer(after));
        }
    }
    if let Some(before) = f.before {
        cond.push("e.id < ?");
        args.push(Value::Integer(before));
    }
    if let Some(user) = f.user {
        cond.push("e.user_id = ?");
        args.push(Value::Integer(user.0));
    }
    if let Some(account) = f.account {
        cond.push("e.account_id = ?");
        args.push(Value::Integer(account.0));
    }
    if let Some(kind) = f.kind {
        cond.push("e.type = ?");
        args.push(Value::Text(kind.as_str().into()));
    }
    if f.hide_owners {
        cond.push(
            "(e.user_id IS NULL OR e.user_id NOT IN (SELECT id FROM users WHERE role = 'owner'))",
        );
    }
    // One user's events come from their index whatever else is asked: a type or an
    // account matches far more rows, and walking those for one user's would not stop.
    let from = if f.user.is_some() {
        "events e INDEXED BY events_user"
    } else {
        "events e"
    };
    let sql = format!(
        "{COLUMNS} FROM {from} {JOINS} WHERE {} ORDER BY e.id DESC LIMIT {limit}",
        cond.join(" AND ")
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every event of a user, newest first (for the data export).
pub fn list_for_user(c: &Connection, user: UserId) -> Result<Vec<EventRow>, DbError> {
    list(
        c,
        &EventFilter {
            user: Some(user),
            ..Default::default()
        },
        i64::MAX,
    )
}

/// Deletes up to `limit` events older than `cutoff` (and their deliveries); returns how
/// many. Callers loop, a batch per transaction.
pub fn delete_before(c: &Connection, cutoff: i64, limit: i64) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ?1 ORDER BY at LIMIT ?2)",
    )?
    .execute(params![cutoff, limit])?)
}

/// Turns a deleted user's events into tombstones: no IP, device or location, and no
/// email or device (id or hash) in their details (the user's own email is gone with
/// their row).
pub fn update_tombstone(c: &Connection, user: UserId) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "UPDATE events SET ip = '', country_code = NULL, country_name = NULL, city = NULL,
            device_category = '', browser_name = '', browser_version = '', os_name = '',
            os_version = '',
            details = json_remove(details, '$.email', '$.device_id', '$.device_hash')
         WHERE user_id = ?1",
    )?
    .execute([user])?)
}

/// Turns the failed sign-ins made with a deleted user's address that name no user (tried
/// before the account existed, or after it was gone) into tombstones too: the address,
/// IP, device and location go.
pub fn update_tombstone_attempts(c: &Connection, email: &str) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "UPDATE events SET ip = '', country_code = NULL, country_name = NULL, city = NULL,
            device_category = '', browser_name = '', browser_version = '', os_name = '',
            os_version = '',
            details = json_remove(details, '$.email', '$.device_id', '$.device_hash')
         WHERE user_id IS NULL AND type = 'login.failed'
           AND json_extract(details, '$.email') = ?1 COLLATE NOCASE",
    )?
    .execute([email])?)
}

/// Up to `limit` events before `cutoff` whose IP is still whole, as (id, IP).
pub fn find_whole_ips_before(
    c: &Connection,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, ip FROM events WHERE at < ?1 AND instr(ip, '/') = 0 AND ip != '' LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![cutoff, limit], |r| {
        Ok((r.get::<_, i64>("id")?, r.get::<_, String>("ip")?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update_ip(c: &Connection, id: i64, ip: &str) -> Result<(), DbError> {
    c.prepare_cached("UPDATE events SET ip = ?2 WHERE id = ?1")?
        .execute(params![id, ip])?;
    Ok(())
}
