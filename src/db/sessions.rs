//! `sessions` table.

use std::rc::Rc;
use std::sync::{LazyLock, OnceLock};

use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::DbError;
use crate::domain::model::{
    AccountId, Device, EndReason, Location, Role, Session, SessionId, UserId, UserStatus,
};

/// A session row, by name: every session-reading statement selects these, plus
/// [`JOINED`] (or the same two names from the caller, as `list_active_for_user` does).
const COLUMNS: &str = "s.id AS pk, s.public_id, s.user_id, s.account_id, s.application,
    s.device_id, s.user_agent, s.device_category, s.browser_name, s.browser_version, s.os_name,
    s.os_version, s.ip, s.country_code, s.country_name, s.city, s.created_at, s.last_active_at,
    s.expires_at, s.ended_at, s.end_reason";
/// The session's user email and account name, from the joins of [`FROM`].
const JOINED: &str = "u.email AS user_email, a.name AS account_name";
const FROM: &str =
    "FROM sessions s JOIN users u ON u.id = s.user_id JOIN accounts a ON a.id = s.account_id";

/// Declares where each named column of a row is in a statement's result, found by name
/// once per statement instead of at every row (or kept by hand as positions).
macro_rules! columns {
    ($(#[$doc:meta])* $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$doc])*
        struct $name {
            $($field: usize,)*
        }

        impl $name {
            fn of(stmt: &rusqlite::Statement<'_>) -> rusqlite::Result<Self> {
                Ok($name {
                    $($field: stmt.column_index(stringify!($field))?,)*
                })
            }

            /// [`Self::of`] once per process for a statement whose text never changes.
            fn cached(
                cell: &'static std::sync::OnceLock<$name>,
                stmt: &rusqlite::Statement<'_>,
            ) -> rusqlite::Result<&'static $name> {
                if let Some(c) = cell.get() {
                    return Ok(c);
                }
                let found = $name::of(stmt)?;
                Ok(cell.get_or_init(|| found))
            }
        }
    };
}

columns!(
    /// The columns of [`COLUMNS`] and [`JOINED`].
    Cols {
        pk, public_id, user_id, user_email, account_id, account_name, application, device_id,
        user_agent, device_category, browser_name, browser_version, os_name, os_version, ip,
        country_code, country_name, city, created_at, last_active_at, expires_at, ended_at,
        end_reason,
    }
);

fn from_row(r: &Row<'_>, c: &Cols) -> rusqlite::Result<Session> {
    Ok(Session {
        pk: r.get(c.pk)?,
        id: SessionId(r.get(c.public_id)?),
        user_id: r.get(c.user_id)?,
        user_email: r.get(c.user_email)?,
        account_id: r.get(c.account_id)?,
        account_name: r.get(c.account_name)?,
        application: r.get(c.application)?,
        device_id: r.get(c.device_id)?,
        user_agent: r.get(c.user_agent)?,
        device: super::device(
            r,
            [
                c.device_category,
                c.browser_name,
                c.browser_version,
                c.os_name,
                c.os_version,
            ],
        )?,
        ip: r.get(c.ip)?,
        location: super::location(r, [c.country_code, c.country_name, c.city])?,
        created_at: r.get(c.created_at)?,
        last_active_at: r.get(c.last_active_at)?,
        expires_at: r.get(c.expires_at)?,
        ended_at: r.get(c.ended_at)?,
        end_reason: r.get(c.end_reason)?,
    })
}

pub struct NewSession<'a> {
    pub public_id: &'a str,
    pub token_hash: &'a [u8],
    pub user_id: UserId,
    pub account_id: AccountId,
    pub application: &'a str,
    pub device_id: &'a str,
    pub user_agent: &'a str,
    pub device: &'a Device,
    pub ip: &'a str,
    pub location: &'a Location,
    pub now: i64,
    pub expires_at: i64,
}

/// Inserts a session and reads it back as it is stored.
pub fn insert(c: &Connection, s: &NewSession<'_>) -> Result<Session, DbError> {
    c.prepare_cached(
        "INSERT INTO sessions (public_id, token_hash, user_id, account_id, application, device_id,
            user_agent, device_category, browser_name, browser_version, os_name, os_version, ip,
            country_code, country_name, city, created_at, last_active_at, expires_at, email_lower)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18,
            (SELECT email_lower FROM users WHERE id = ?3))",
    )?
    .execute(params![
        s.public_id,
        s.token_hash,
        s.user_id,
        s.account_id,
        s.application,
        s.device_id,
        s.user_agent,
        s.device.category,
        s.device.browser,
        s.device.browser_version,
        s.device.os,
        s.device.os_version,
        s.ip,
        s.location.country_code,
        s.location.country,
        s.location.city,
        s.now,
        s.expires_at,
    ])?;
    find_by_pk(c, c.last_insert_rowid())?
        .ok_or_else(|| DbError::Refused("a session vanished as it was inserted".into()))
}

pub fn find_by_pk(c: &Connection, pk: i64) -> Result<Option<Session>, DbError> {
    query_one(
        c,
        &format!("SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.id = ?1"),
        pk,
    )
}

fn query_one(c: &Connection, sql: &str, key: impl ToSql) -> Result<Option<Session>, DbError> {
    let mut stmt = c.prepare_cached(sql)?;
    let cols = Cols::of(&stmt)?;
    Ok(stmt.query_row([key], |r| from_row(r, &cols)).optional()?)
}

/// What every authenticated request needs about its session and user, in one lookup.
pub struct TokenMatch {
    pub session: Session,
    pub user_name: String,
    pub role: Role,
    pub status: UserStatus,
}

/// The session check's one lookup, on every authenticated request.
pub fn find_by_token_hash(c: &Connection, hash: &[u8]) -> Result<Option<TokenMatch>, DbError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS}, {JOINED}, u.name AS user_name, u.role, u.status {FROM}
             WHERE s.token_hash = ?1"
        )
    });
    columns!(UserCols {
        user_name,
        role,
        status
    });
    static COLS: OnceLock<Cols> = OnceLock::new();
    static USER: OnceLock<UserCols> = OnceLock::new();
    let mut stmt = c.prepare_cached(&SQL)?;
    let (cols, user) = (Cols::cached(&COLS, &stmt)?, UserCols::cached(&USER, &stmt)?);
    Ok(stmt
        .query_row([hash], |r| {
            Ok(TokenMatch {
                session: from_row(r, cols)?,
                user_name: r.get(user.user_name)?,
                role: r.get(user.role)?,
                status: r.get(user.status)?,
            })
        })
        .optional()?)
}

pub fn find_by_public_id(c: &Connection, id: &str) -> Result<Option<Session>, DbError> {
    query_one(
        c,
        &format!("SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.public_id = ?1"),
        id,
    )
}

/// Moves last activity forward; a no-op on an ended session.
pub fn update_last_active(
    c: &Connection,
    pk: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE sessions SET last_active_at = ?2, expires_at = ?3 WHERE id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![pk, now, expires_at])?;
    Ok(())
}

/// Records a session's activity unless another connection holds the write lock: while
/// one does, SQLite's busy handler would sleep (1, 2, 5, 10… ms) with this request and
/// its pooled connection, so the touch is skipped and made by the session's next
/// request. A read-only or full disk is skipped too: the check it belongs to succeeded,
/// only the bookkeeping did not. True when the activity was written.
pub fn touch_unless_busy(
    c: &Connection,
    pk: i64,
    now: i64,
    expires_at: i64,
) -> Result<bool, DbError> {
    c.busy_timeout(std::time::Duration::ZERO)?;
    let touched = update_last_active(c, pk, now, expires_at);
    c.busy_timeout(super::BUSY_TIMEOUT)?;
    match touched {
        Ok(()) => Ok(true),
        Err(err) if err.is_busy() => {
            tracing::debug!("session activity not recorded: database busy");
            Ok(false)
        }
        Err(err) if err.is_unavailable() => {
            tracing::warn!(%err, "could not record session activity");
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Ends one live session; false when it had already ended.
pub fn end(
    c: &Connection,
    pk: i64,
    now: i64,
    by: Option<UserId>,
    reason: EndReason,
) -> Result<bool, DbError> {
    let n = c
        .prepare_cached(
            "UPDATE sessions SET ended_at = ?2, ended_by = ?3, end_reason = ?4
             WHERE id = ?1 AND ended_at IS NULL",
        )?
        .execute(params![pk, now, by, reason])?;
    Ok(n == 1)
}

/// Ends every live session of a user except `keep`.
pub fn end_all_for_user(
    c: &Connection,
    user: UserId,
    keep: Option<i64>,
    now: i64,
    by: Option<UserId>,
    reason: EndReason,
) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "UPDATE sessions SET ended_at = ?3, ended_by = ?4, end_reason = ?5
             WHERE user_id = ?1 AND ended_at IS NULL AND expires_at > ?3 AND id IS NOT ?2",
    )?
    .execute(params![user, keep, now, by, reason])?)
}

/// A user's active sessions, most recently active first. Every row has the same user and
/// account: their email and account name come from the caller, who has just read them
/// to authenticate, instead of from two lookups per row.
pub fn list_active_for_user(
    c: &Connection,
    user: UserId,
    email: &str,
    account_name: &str,
    now: i64,
    limit: Option<u32>,
) -> Result<Vec<Session>, DbError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS}, ?3 AS user_email, ?4 AS account_name FROM sessions s
             WHERE s.user_id = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2
             ORDER BY s.last_active_at DESC, s.id DESC LIMIT ?5"
        )
    });
    static COLS: OnceLock<Cols> = OnceLock::new();
    let mut stmt = c.prepare_cached(&SQL)?;
    let cols = Cols::cached(&COLS, &stmt)?;
    // A negative LIMIT is none in SQLite.
    let limit = limit.map_or(-1, i64::from);
    collect(
        stmt.query_map(params![user, now, email, account_name, limit], |r| {
            from_row(r, cols)
        })?,
    )
}

/// Collects rows into a vector sized for a page up front: growing it row by row costs
/// more than reading the rows (each step copies every session so far).
fn collect(rows: impl Iterator<Item = rusqlite::Result<Session>>) -> Result<Vec<Session>, DbError> {
    let mut out = Vec::with_capacity(64);
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

/// Every active session (for the CLI), optionally of one user.
pub fn list_active(
    c: &Connection,
    user: Option<UserId>,
    now: i64,
    limit: i64,
) -> Result<Vec<Session>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.ended_at IS NULL AND s.expires_at > ?2
           AND (?1 IS NULL OR s.user_id = ?1)
         ORDER BY s.last_active_at DESC, s.id DESC LIMIT ?3"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let cols = Cols::of(&stmt)?;
    let rows = stmt.query_map(params![user, now, limit], |r| from_row(r, &cols))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks sessions past their expiry as ended, with the reason that applies; the ending
/// time is when they expired, not when the sweeper noticed.
pub fn end_expired(c: &Connection, now: i64, max_lifetime: i64) -> Result<usize, DbError> {
    Ok(c.execute(
        "UPDATE sessions SET ended_at = expires_at,
            end_reason = CASE WHEN expires_at >= created_at + ?2 THEN 'max_lifetime' ELSE 'idle_timeout' END
         WHERE ended_at IS NULL AND expires_at <= ?1",
        params![now, max_lifetime],
    )?)
}

/// Deletes ended sessions older than the retention period.
pub fn delete_ended_before(c: &Connection, cutoff: i64) -> Result<usize, DbError> {
    Ok(c.execute(
        "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1",
        [cutoff],
    )?)
}

pub fn count_active(c: &Connection, now: i64) -> Result<i64, DbError> {
    Ok(c.query_row(
        "SELECT count(*) FROM sessions WHERE ended_at IS NULL AND expires_at > ?1",
        [now],
        |r| r.get(0),
    )?)
}

/// Filters of the admin listing; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct AdminFilter {
    pub account: Option<AccountId>,
    pub user: Option<UserId>,
    pub application: Option<String>,
    /// Case-insensitive substring of the user's email.
    pub email_contains: Option<String>,
    /// Leave out the sessions of owners (they rank above the caller).
    pub hide_owners: bool,
}

/// Keyset position: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub last_active_at: i64,
    pub pk: i64,
}

/// The WHERE clause and parameters for active sessions matching `f`. Only the filters
/// given appear in the SQL, so SQLite can pick the index that fits.
fn admin_where(f: &AdminFilter, now: i64) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = String::from("s.ended_at IS NULL AND s.expires_at > ?");
    let mut args = vec![Value::Integer(now)];
    if let Some(a) = f.account {
        sql.push_str(" AND s.account_id = ?");
        args.push(Value::Integer(a.0));
    }
    if let Some(u) = f.user {
        sql.push_str(" AND s.user_id = ?");
        args.push(Value::Integer(u.0));
    }
    if let Some(app) = &f.application {
        sql.push_str(" AND s.application = ?");
        args.push(Value::Text(app.clone()));
    }
    if f.hide_owners {
        // A handful of ids, from the partial index of owners.
        sql.push_str(" AND s.user_id NOT IN (SELECT id FROM users WHERE role = 'owner')");
    }
    if let Some(q) = &f.email_contains {
        sql.push_str(
            " AND s.user_id IN (SELECT id FROM users WHERE email_lower LIKE ? ESCAPE '\\')",
        );
        args.push(Value::Text(format!("%{}%", escape_like(&q.to_lowercase()))));
    }
    (sql, args)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// An email search matching at most this many users goes straight to those users' own
/// sessions.
const FEW_USERS: usize = 200;
/// How many of the most recently active sessions in scope a broader email search looks
/// at first: one matching more than one session in 40 (an account's domain, a common
/// name) fills its page from these.
const RECENT_WINDOW: i64 = 2_000;

/// One page of active sessions matching `f`, newest activity first, after `cursor`.
///
/// An email search is answered so that neither a search matching a handful of people
/// nor one matching nearly everyone reads a million rows:
/// 1. the trigram index of emails finds the matching users, up to [`FEW_USERS`] + 1;
/// 2. for at most [`FEW_USERS`] users, the page is the newest of their sessions, from
///    the per-user index (index entries only);
/// 3. for more, the page is looked for among the [`RECENT_WINDOW`] most recent sessions
///    in scope (index entries only: the listing index carries each session's email),
///    and when that window holds less than a page, comes from the per-user index of
///    every matching user.
pub fn list_admin(
    c: &Connection,
    f: &AdminFilter,
    cursor: Option<Cursor>,
    limit: i64,
    now: i64,
) -> Result<Vec<Session>, DbError> {
    use rusqlite::types::Value;
    let Some(q) = &f.email_contains else {
        let (cond, args) = page_where(admin_where(f, now), cursor);
        let sql = format!(
            "SELECT {COLUMNS}, {JOINED} {FROM} WHERE {cond} ORDER BY s.last_active_at DESC, s.id DESC LIMIT {limit}"
        );
        return query_sessions(c, &sql, args);
    };
    let unfiltered = AdminFilter {
        email_contains: None,
        ..f.clone()
    };
    let (cond, args) = page_where(admin_where(&unfiltered, now), cursor);
    let q = q.to_lowercase();
    let exact = Value::Text(format!("%{}%", escape_like(&q)));
    // The trigram index proposes users whose email matches `q` with `_` and `%` read as
    // wildcards (a superset); the LIKE with ESCAPE keeps exactly the substring matches.
    let candidates = Value::Text(format!("%{q}%"));
    let matching_users = "SELECT u.id FROM users u
         WHERE u.id IN (SELECT rowid FROM users_email_trigram WHERE email_lower LIKE ?)
           AND u.email_lower LIKE ? ESCAPE '\\'";
    let by_user = |users: &str, extra: Vec<Box<dyn ToSql>>| {
        let sql = format!(
            "SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.id IN (
               SELECT s.id FROM sessions s INDEXED BY sessions_user_recent
               WHERE {cond} AND s.user_id IN ({users})
               ORDER BY s.last_active_at DESC, s.id DESC LIMIT {limit})
             ORDER BY s.last_active_at DESC, s.id DESC"
        );
        let mut all: Vec<Box<dyn ToSql>> = args.iter().cloned().map(boxed).collect();
        all.extend(extra);
        query_sessions(c, &sql, all)
    };

    // Driven by the trigram index (CROSS JOIN keeps it the outer loop), so that the
    // LIMIT stops a broad search after FEW_USERS + 1 users instead of after all of them.
    let few: Vec<Value> = c
        .prepare_cached(&format!(
            "SELECT u.id FROM users_email_trigram t CROSS JOIN users u ON u.id = t.rowid
             WHERE t.email_lower LIKE ? AND u.email_lower LIKE ? ESCAPE '\\' LIMIT {}",
            FEW_USERS + 1
        ))?
        .query_map([&candidates, &exact], |r| r.get::<_, i64>(0))?
        .map(|id| id.map(Value::Integer))
        .collect::<Result<_, _>>()?;
    if few.is_empty() {
        return Ok(Vec::new());
    }
    if few.len() <= FEW_USERS {
        return by_user("SELECT value FROM rarray(?)", vec![Box::new(Rc::new(few))]);
    }

    let sql = format!(
        "SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.id IN (
           SELECT r.id FROM (
             SELECT s.id, s.last_active_at, s.email_lower FROM sessions s INDEXED BY sessions_recent
             WHERE {cond} ORDER BY s.last_active_at DESC, s.id DESC LIMIT {RECENT_WINDOW}) r
           WHERE r.email_lower LIKE ? ESCAPE '\\'
           ORDER BY r.last_active_at DESC, r.id DESC LIMIT {limit})
         ORDER BY s.last_active_at DESC, s.id DESC"
    );
    let mut recent_args = args.clone();
    recent_args.push(exact.clone());
    let page = query_sessions(c, &sql, recent_args)?;
    if page.len() as i64 >= limit {
        return Ok(page);
    }
    by_user(matching_users, vec![boxed(candidates), boxed(exact)])
}

/// Adds the keyset condition: rows strictly after `cursor` in (last_active_at, id)
/// descending order. Written as a row value so SQLite can start the index walk there.
fn page_where(
    (mut cond, mut args): (String, Vec<rusqlite::types::Value>),
    cursor: Option<Cursor>,
) -> (String, Vec<rusqlite::types::Value>) {
    if let Some(cur) = cursor {
        cond.push_str(" AND (s.last_active_at, s.id) < (?, ?)");
        args.extend([cur.last_active_at, cur.pk].map(rusqlite::types::Value::Integer));
    }
    (cond, args)
}

fn boxed(v: rusqlite::types::Value) -> Box<dyn ToSql> {
    Box::new(v)
}

fn query_sessions(
    c: &Connection,
    sql: &str,
    args: Vec<impl ToSql>,
) -> Result<Vec<Session>, DbError> {
    let mut stmt = c.prepare_cached(sql)?;
    let cols = Cols::of(&stmt)?;
    collect(stmt.query_map(rusqlite::params_from_iter(args), |r| from_row(r, &cols))?)
}

pub fn count_admin(
    c: &Connection,
    f: &AdminFilter,
    now: i64,
    except: i64,
) -> Result<(i64, i64), DbError> {
    let (cond, args) = admin_where(f, now);
    let sql = format!("SELECT count(*), coalesce(sum(s.id != ?), 0) FROM sessions s WHERE {cond}");
    let mut all = vec![rusqlite::types::Value::Integer(except)];
    all.extend(args);
    Ok(c.prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(all), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
}

/// Ends every active session matching `f` except `keep`.
pub fn end_admin(
    c: &Connection,
    f: &AdminFilter,
    keep: i64,
    now: i64,
    by: UserId,
    reason: EndReason,
) -> Result<usize, DbError> {
    let (cond, mut args) = admin_where(f, now);
    let sql = format!(
        "UPDATE sessions SET ended_at = ?, ended_by = ?, end_reason = ?
         WHERE id IN (SELECT s.id FROM sessions s WHERE {cond} AND s.id != ?)"
    );
    use rusqlite::types::Value;
    let mut all = vec![
        Value::Integer(now),
        Value::Integer(by.0),
        Value::Text(reason.as_str().into()),
    ];
    all.append(&mut args);
    all.push(Value::Integer(keep));
    Ok(c.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(all))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::users::NewUser;
    use crate::db::{accounts, migrate, users};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::init_connection(&mut c).unwrap();
        migrate::apply(&mut c).unwrap();
        c
    }

    fn user(c: &Connection, account: AccountId, email: &str) -> UserId {
        users::insert(
            c,
            &NewUser {
                account_id: account,
                email,
                name: "n",
                role: Role::User,
                password_hash: "x",
                now: 0,
            },
        )
        .unwrap()
    }

    /// Sessions of `user`, last active at `at[i]` each.
    fn sessions(c: &Connection, user: UserId, account: AccountId, at: &[i64]) -> Vec<i64> {
        let device = Device::default();
        let location = Location::default();
        at.iter()
            .map(|&t| {
                let id = format!("{}-{t}", user.0);
                insert(
                    c,
                    &NewSession {
                        public_id: &id,
                        token_hash: id.as_bytes(),
                        user_id: user,
                        account_id: account,
                        application: "web",
                        device_id: "d",
                        user_agent: "ua",
                        device: &device,
                        ip: "192.0.2.1",
                        location: &location,
                        now: t,
                        expires_at: 1_000_000,
                    },
                )
                .unwrap()
                .pk
            })
            .collect()
    }

    fn search(c: &Connection, q: &str, cursor: Option<Cursor>) -> Vec<i64> {
        let f = AdminFilter {
            email_contains: Some(q.into()),
            ..Default::default()
        };
        let page = list_admin(c, &f, cursor, 50, 10).unwrap();
        page.iter().map(|s| s.pk).collect()
    }

    #[test]
    fn email_search_gives_the_newest_matches_by_every_path() {
        let c = db();
        let acme = accounts::insert(&c, "Acme", 0).unwrap();
        let one_each = |prefix: &str, n: i64, first_at: i64| -> Vec<i64> {
            (0..n)
                .map(|i| {
                    let u = user(&c, acme, &format!("{prefix}{i}"));
                    sessions(&c, u, acme, &[first_at + i])[0]
                })
                .collect()
        };
        // Newest: 250 users at Big (more than FEW_USERS, a page in the recent window);
        // then Bob's 3000 sessions fill the rest of the window; older still, 210 users at
        // Far (too many for the few-users path, none in the window) and Cy.
        let big = one_each("Member", 250, 10_000);
        let big: Vec<i64> = big.into_iter().rev().collect();
        let far = one_each("z", 210, 300);
        let far: Vec<i64> = far.into_iter().rev().collect();
        // Emails: "Member0" … are not emails, but any text is searchable.
        let bob = user(&c, acme, "bob@other.test");
        sessions(&c, bob, acme, &(1_000..4_000).collect::<Vec<_>>());
        let cy = user(&c, acme, "cy_100%@acme.test");
        let cy_pks = sessions(&c, cy, acme, &[100, 300, 200]);

        // Window path, then its next page.
        let page1 = search(&c, "MEMBER", None);
        assert_eq!(page1, big[..50]);
        let cursor = Cursor {
            last_active_at: 10_000 + 200,
            pk: page1[49],
        };
        assert_eq!(search(&c, "member", Some(cursor)), big[50..100]);
        // Many users, none in the window: every matching user's own sessions.
        assert_eq!(search(&c, "z", None), far[..50]);
        // Few users; `_` and `%` are literal characters, not wildcards.
        assert_eq!(
            search(&c, "_100%", None),
            vec![cy_pks[1], cy_pks[2], cy_pks[0]]
        );
        assert!(search(&c, "y_1_0", None).is_empty());
        assert!(search(&c, "nobody", None).is_empty());

        // The email copied into sessions follows a change of the user's email.
        c.execute(
            "UPDATE users SET email = 'yo@x.test', email_lower = 'yo@x.test' WHERE id = ?1",
            [cy.0],
        )
        .unwrap();
        assert!(search(&c, "_100%", None).is_empty());
        assert_eq!(search(&c, "yo@x", None).len(), 3);
        assert_eq!(
            c.query_row(
                "SELECT count(*) FROM sessions WHERE email_lower = 'yo@x.test'",
                [],
                |r| r.get::<_, i64>(0)
            )
            .unwrap(),
            3
        );
    }
}
