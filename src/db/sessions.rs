//! `sessions` table.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{LazyLock, OnceLock};

use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::recall::Shown;
use super::{DbError, Pooled};
use crate::model::{
    AccountId, AppUse, AuthMethods, CurrentSession, Device, DeviceRef, EndReason, Location, Moved,
    PlaceRef, Principal, Role, Session, SessionId, SessionView, SignedInApp, UserId, UserStatus,
};

/// The session's own columns.
macro_rules! own_columns {
    () => {
        "s.id AS pk, s.public_id, s.user_id, s.account_id, s.application,
    s.device_id, s.user_agent, s.device_category, s.browser_name, s.browser_version, s.os_name,
    s.os_version, s.ip, s.country_code, s.country_name, s.city, s.latitude, s.longitude,
    s.accuracy_km, s.network, s.moved_country_code, s.moved_country_name, s.moved_city,
    s.moved_at, s.created_at, s.last_active_at, s.expires_at, s.ended_at, s.end_reason,
    s.end_note, s.applications_used, s.auth_methods,
    s.verified_at"
    };
}
/// The applications signed in to with the session (SPEC §20), one per client, each with
/// where its sign-out stands (SPEC §21): live grant, else its latest logout's status,
/// else (no logout row) told long ago by a back-channel client, or left to its next
/// check. Read with the row (one query per page, not one per session).
macro_rules! signed_in_to {
    () => {
        // Most sessions hold no grant: one index probe answers `[]` for them, and only the
        // others pay for the grouping.
        ", CASE WHEN EXISTS (SELECT 1 FROM oidc_grants g WHERE g.session_id = s.id)
           THEN (SELECT json_group_array(json_object('name', a.application,
                        'client_id', a.client_id,
                        'status', CASE
                            WHEN a.live THEN 'signed_in'
                            WHEN l.status = 'pending' THEN 'signing_out'
                            WHEN l.status = 'delivered' THEN 'signed_out'
                            WHEN l.status = 'failed' THEN 'logout_failed'
                            WHEN b.client_id IS NOT NULL THEN 'signed_out'
                            ELSE 'at_next_check' END,
                        'at', CASE WHEN a.live THEN NULL
                            WHEN l.id IS NOT NULL THEN l.delivered_at
                            ELSE a.ended END))
                 FROM (SELECT g.client_id, max(g.ended_at IS NULL) AS live,
                              max(g.ended_at) AS ended, g.application
                       FROM oidc_grants g WHERE g.session_id = s.id GROUP BY g.client_id) a
                 LEFT JOIN oidc_logouts l ON l.id = (SELECT max(id) FROM oidc_logouts
                       WHERE sid = s.public_id AND client_id = a.client_id)
                 LEFT JOIN oidc_backchannel_clients b ON b.client_id = a.client_id)
           ELSE '[]' END AS signed_in_to"
    };
}
/// A session row, by name: every session-reading statement selects these, plus
/// [`JOINED`] (or the same two names from the caller, as `list_active_for_user` does).
pub(super) const COLUMNS: &str = concat!(own_columns!(), signed_in_to!());
/// [`COLUMNS`] for someone who holds no OpenID grant (see [`holds_grants`]): signed in to
/// no application.
const COLUMNS_NO_GRANTS: &str = concat!(own_columns!(), ", '[]' AS signed_in_to");
macro_rules! listed_columns {
    () => {
        "s.id AS pk, s.public_id, s.application, s.device_category,
    s.browser_name, s.browser_version, s.os_name, s.os_version, s.ip, s.country_code,
    s.country_name, s.city, s.network, s.moved_country_code, s.moved_country_name,
    s.moved_city, s.moved_at, s.created_at, s.last_active_at, s.expires_at,
    s.applications_used, s.auth_methods"
    };
}
/// What a listing shows of a session ([`SessionView`]): [`COLUMNS`] without what only
/// the check, the pages' details and the exports read (the User-Agent, coordinates,
/// how it ended), and without whose it is (the same on every row: the caller knows).
const LISTED: &str = concat!(listed_columns!(), signed_in_to!());
/// [`LISTED`] for someone who holds no OpenID grant: signed in to no application, which
/// the reader knows without a column.
const LISTED_NO_GRANTS: &str = listed_columns!();
/// The session's user email and account name, from the joins of [`FROM`].
pub(super) const JOINED: &str = "u.email AS user_email, a.name AS account_name";
pub(super) const FROM: &str =
    "FROM sessions s JOIN users u ON u.id = s.user_id JOIN accounts a ON a.id = s.account_id";

/// Declares where each named column of a row is in a statement's result, found by name
/// once per statement instead of at every row (or kept by hand as positions).
macro_rules! columns {
    ($(#[$doc:meta])* $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$doc])*
        pub(super) struct $name {
            $(pub(super) $field: usize,)*
        }

        impl $name {
            pub(super) fn of(stmt: &rusqlite::Statement<'_>) -> rusqlite::Result<Self> {
                Ok($name {
                    $($field: stmt.column_index(stringify!($field))?,)*
                })
            }
        }
    };
}

/// Where a statement whose text never changes has its columns (`find`), found once per
/// process and kept in `cell`.
fn found_once<T>(
    cell: &'static OnceLock<T>,
    find: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<&'static T> {
    if let Some(found) = cell.get() {
        return Ok(found);
    }
    let found = find()?;
    Ok(cell.get_or_init(|| found))
}

columns!(
    /// The columns of [`COLUMNS`] and [`JOINED`].
    Cols {
        pk, public_id, user_id, user_email, account_id, account_name, application, device_id,
        user_agent, device_category, browser_name, browser_version, os_name, os_version, ip,
        country_code, country_name, city, latitude, longitude, accuracy_km, network,
        moved_country_code, moved_country_name, moved_city, moved_at, created_at,
        last_active_at, expires_at, ended_at, end_reason, end_note, applications_used, auth_methods, verified_at,
        signed_in_to,
    }
);

pub(super) fn from_row(r: &Row<'_>, c: &Cols) -> rusqlite::Result<Session> {
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
        location: super::location(
            r,
            [
                c.country_code,
                c.country_name,
                c.city,
                c.latitude,
                c.longitude,
                c.accuracy_km,
                c.network,
            ],
        )?,
        moved_to: moved(r, c)?,
        created_at: r.get(c.created_at)?,
        last_active_at: r.get(c.last_active_at)?,
        expires_at: r.get(c.expires_at)?,
        ended_at: r.get(c.ended_at)?,
        end_reason: r.get(c.end_reason)?,
        end_note: r.get(c.end_note)?,
        applications_used: applications_used(r.get_ref(c.applications_used)?.as_str()?),
        auth_methods: AuthMethods::parse_list(r.get_ref(c.auth_methods)?.as_str()?),
        verified_at: r.get(c.verified_at)?,
        signed_in_to: signed_in_to(r.get_ref(c.signed_in_to)?.as_str()?),
    })
}

/// The `signed_in_to` column; most sessions have none, and their `[]` is not parsed.
fn signed_in_to(json: &str) -> Vec<SignedInApp> {
    if json == "[]" {
        return Vec::new();
    }
    serde_json::from_str(json).unwrap_or_default()
}

/// Where a moved session is now seen from; most sessions never move, and their NULL
/// `moved_at` is all that is read.
fn moved(r: &Row<'_>, c: &Cols) -> rusqlite::Result<Option<Moved>> {
    let Some(at) = r.get::<_, Option<i64>>(c.moved_at)? else {
        return Ok(None);
    };
    Ok(Some(Moved {
        location: Location {
            country_code: r.get(c.moved_country_code)?,
            country: r.get(c.moved_country_name)?,
            city: r.get(c.moved_city)?,
            ..Location::default()
        },
        at,
    }))
}

/// The `applications_used` column, most recent first; most sessions have none, and
/// their `[]` is not parsed. A value that does not parse is read as none (it is
/// bookkeeping, and the next use writes it whole again).
fn applications_used(json: &str) -> Vec<AppUse> {
    if json == "[]" {
        return Vec::new();
    }
    let mut used: Vec<AppUse> = serde_json::from_str(json).unwrap_or_default();
    used.sort_by_key(|u| std::cmp::Reverse(u.last_used_at));
    used
}

/// Records that the session was used with `application` at `now`, unless another
/// connection holds the write lock (see [`touch_unless_busy`]: the use is recorded by
/// a later request instead).
pub fn record_application_use(
    c: &Connection,
    pk: i64,
    application: &str,
    now: i64,
) -> Result<(), DbError> {
    c.busy_timeout(std::time::Duration::ZERO)?;
    let written = c
        .prepare_cached(
            "UPDATE sessions SET applications_used = (
               SELECT json_group_array(json(v)) FROM (
                 SELECT value AS v FROM json_each(sessions.applications_used)
                 WHERE json_extract(value, '$.name') != ?2
                 UNION ALL SELECT json_object('name', ?2, 'last_used_at', ?3)))
             WHERE id = ?1 AND ended_at IS NULL",
        )
        .and_then(|mut stmt| stmt.execute(params![pk, application, now]));
    c.busy_timeout(super::BUSY_TIMEOUT)?;
    match written.map_err(DbError::from) {
        Ok(_) => Ok(()),
        Err(err) if err.is_busy() || err.is_unavailable() => {
            tracing::debug!(%err, "application use not recorded");
            Ok(())
        }
        Err(err) => Err(err),
    }
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
    pub auth_methods: AuthMethods,
}

/// Inserts a session and reads it back as it is stored.
pub fn insert(c: &Connection, s: &NewSession<'_>) -> Result<Session, DbError> {
    c.prepare_cached(
        "INSERT INTO sessions (public_id, token_hash, user_id, account_id, application, device_id,
            user_agent, device_category, browser_name, browser_version, os_name, os_version, ip,
            country_code, country_name, city, created_at, last_active_at, expires_at, email_lower,
            latitude, longitude, accuracy_km, network, auth_methods, verified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18,
            (SELECT email_lower FROM users WHERE id = ?3), ?19, ?20, ?21, ?22, ?23, ?17)",
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
        s.location.coords.map(|p| p.latitude),
        s.location.coords.map(|p| p.longitude),
        s.location.coords.and_then(|p| p.accuracy_km),
        s.location.network,
        s.auth_methods.to_text(),
    ])?;
    find_by_pk(c, c.last_insert_rowid())?
        .ok_or_else(|| DbError::Refused("a session vanished as it was inserted".into()))
}

pub fn find_by_pk(c: &Connection, pk: i64) -> Result<Option<Session>, DbError> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.id = ?1"));
    static COLS: OnceLock<Cols> = OnceLock::new();
    let mut stmt = c.prepare_cached(&SQL)?;
    let cols = found_once(&COLS, || Cols::of(&stmt))?;
    Ok(stmt.query_row([pk], |r| from_row(r, cols)).optional()?)
}

fn query_one(c: &Connection, sql: &str, key: impl ToSql) -> Result<Option<Session>, DbError> {
    let mut stmt = c.prepare_cached(sql)?;
    let cols = Cols::of(&stmt)?;
    Ok(stmt.query_row([key], |r| from_row(r, &cols)).optional()?)
}

/// What every authenticated request needs about its session and user, in one lookup:
/// the few columns the decision, the identity headers and the pages' "this session"
/// read, not the whole row (device, place, apps: who shows them reads them by pk).
pub struct TokenMatch {
    pub session: CurrentSession,
    pub user_email: String,
    pub user_name: String,
    pub role: Role,
    pub status: UserStatus,
    pub email_verified: bool,
    /// The person's account or the person requires a second factor.
    pub factor_required: bool,
    pub account_name: String,
}

impl TokenMatch {
    /// A copy, with the applications the session was used with only when `uses` asks
    /// for them (as [`find_by_token_hash`] reads them).
    pub(super) fn recalled(&self, uses: bool) -> TokenMatch {
        TokenMatch {
            session: CurrentSession {
                id: self.session.id.clone(),
                device_id: self.session.device_id.clone(),
                applications_used: match uses {
                    true => self.session.applications_used.clone(),
                    false => None,
                },
                ..self.session
            },
            user_email: self.user_email.clone(),
            user_name: self.user_name.clone(),
            role: self.role,
            status: self.status,
            email_verified: self.email_verified,
            factor_required: self.factor_required,
            account_name: self.account_name.clone(),
        }
    }
}

/// The session check's one lookup, on every authenticated request (`uses`: with the
/// applications the session was used with, for a forward-auth request for one): the
/// row recalled when nothing has been committed since it was read ([`super::recall`]),
/// else read. Columns by position: the statement reads one of two views
/// ([`CHECK_VIEWS`]).
pub fn find_by_token_hash(
    c: &Pooled,
    hash: &[u8; 32],
    uses: bool,
) -> Result<Option<TokenMatch>, DbError> {
    c.recall_or_read(hash, uses, |c| read_by_token_hash(c, hash, uses))
}

/// [`find_by_token_hash`]'s read.
pub(super) fn read_by_token_hash(
    c: &Connection,
    hash: &[u8; 32],
    uses: bool,
) -> Result<Option<TokenMatch>, DbError> {
    let sql = if uses {
        "SELECT * FROM temp.session_check_uses WHERE token_hash = ?1"
    } else {
        "SELECT * FROM temp.session_check WHERE token_hash = ?1"
    };
    let mut stmt = c.prepare_cached(sql)?;
    Ok(stmt
        .query_row([hash], |r| token_match(r, uses.then_some(19)))
        .optional()?)
}

/// The check's statement: [`token_match`]'s columns, then `$extra`.
macro_rules! check_select {
    ($extra:expr) => {
        concat!(
            "SELECT s.id, s.public_id, s.user_id, s.account_id, s.device_id,
                s.created_at, s.last_active_at, s.expires_at, s.ended_at, s.end_reason,
                s.auth_methods, s.verified_at,
                u.email, u.name, u.role, u.status, u.email_verified,
                u.require_second_factor OR a.require_second_factor, a.name",
            $extra,
            ", s.token_hash AS token_hash FROM sessions s JOIN users u ON u.id = s.user_id
                JOIN accounts a ON a.id = s.account_id"
        )
    };
}

/// The session check's three statements read three views of the connection's own
/// (`temp`, made when the pool opens it, after the migrations), each [`check_select`]
/// with some columns more, so that they are found in the statement cache by a few words
/// instead of a kilobyte or two: rusqlite finds a cached statement by its text, and
/// hashes all of it twice a use. SQLite reads each view as the SELECT it stands for,
/// through the token's index. The view's duplicate column names (a listed column the
/// check reads too) are told apart by SQLite with a suffix; either holds the same value.
pub(super) const CHECK_VIEWS: &str = concat!(
    "CREATE TEMP VIEW session_check AS ",
    check_select!(""),
    ";\nCREATE TEMP VIEW session_check_uses AS ",
    check_select!(", s.applications_used"),
    ";\nCREATE TEMP VIEW session_check_shown AS ",
    check_select!(concat!(", ", listed_columns!(), signed_in_to!())),
    ";"
);

/// The first nineteen columns of [`check_select`]'s statement, and the applications the
/// session was used with when `uses` says where they are.
fn token_match(r: &Row<'_>, uses: Option<usize>) -> rusqlite::Result<TokenMatch> {
    Ok(TokenMatch {
        session: CurrentSession {
            pk: r.get(0)?,
            id: SessionId(r.get(1)?),
            user_id: r.get(2)?,
            account_id: r.get(3)?,
            device_id: r.get(4)?,
            created_at: r.get(5)?,
            last_active_at: r.get(6)?,
            expires_at: r.get(7)?,
            ended_at: r.get(8)?,
            end_reason: r.get(9)?,
            auth_methods: AuthMethods::parse_list(r.get_ref(10)?.as_str()?),
            verified_at: r.get(11)?,
            applications_used: match uses {
                Some(i) => Some(applications_used(r.get_ref(i)?.as_str()?)),
                None => None,
            },
        },
        user_email: r.get(12)?,
        user_name: r.get(13)?,
        role: r.get(14)?,
        status: r.get(15)?,
        email_verified: r.get(16)?,
        factor_required: r.get(17)?,
        account_name: r.get(18)?,
    })
}

/// A session as a listing shows it: its row still being read, or kept
/// ([`super::recall`]). [`ShownRow::view`] borrows from it.
pub struct ShownRow<'r>(Shows<'r>);

#[allow(
    clippy::large_enum_variant,
    reason = "one per `/api/v1/me` request, on its stack: a box would cost an allocation"
)]
enum Shows<'r> {
    /// The row, and a copy of what a view of it showed, to keep.
    Read {
        row: &'r Row<'r>,
        cols: &'static ListedAt,
        copy: RefCell<Option<Shown>>,
    },
    Kept(&'r Shown),
}

impl<'r> ShownRow<'r> {
    /// The session, as `owner`'s (whose it is was read by the check, not again here).
    pub fn view<'a>(&'a self, owner: &'a Principal) -> rusqlite::Result<SessionView<'a>> {
        match &self.0 {
            Shows::Read { row, cols, copy } => {
                let view = view_of_row(row, cols, owner)?;
                copy.replace(Some(Shown::of(&view)));
                Ok(view)
            }
            Shows::Kept(shown) => Ok(shown.view(owner)),
        }
    }
}

/// [`find_by_token_hash`] and, in the same lookup, the session as a listing shows it:
/// `judge` is handed both while the row is read (for `/api/v1/me`), or as kept when
/// nothing has been committed since they were. `None` when no session has the token.
pub fn with_token_shown<T>(
    c: &Pooled,
    hash: &[u8; 32],
    judge: impl FnOnce(TokenMatch, &ShownRow<'_>) -> T,
) -> Result<Option<T>, DbError> {
    const SQL: &str = "SELECT * FROM temp.session_check_shown WHERE token_hash = ?1";
    static COLS: OnceLock<ListedAt> = OnceLock::new();
    let before = match c.recall_shown(hash)? {
        Ok((m, shown)) => return Ok(Some(judge(m, &ShownRow(Shows::Kept(&shown))))),
        Err(before) => before,
    };
    let mut stmt = c.prepare_cached(SQL)?;
    let cols = found_once(&COLS, || ListedAt::of(&stmt))?;
    let mut rows = stmt.query([hash])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let m = token_match(row, None)?;
    let kept = m.recalled(false);
    let shown = ShownRow(Shows::Read {
        row,
        cols,
        copy: RefCell::new(None),
    });
    let judged = judge(m, &shown);
    if let Shows::Read { copy, .. } = shown.0
        && let Some(copy) = copy.into_inner()
    {
        c.keep(hash, before, &kept, Some(copy));
    }
    Ok(Some(judged))
}

pub fn find_by_public_id(c: &Connection, id: &str) -> Result<Option<Session>, DbError> {
    query_one(
        c,
        &format!("SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.public_id = ?1"),
        id,
    )
}

/// Moves last activity forward; a no-op on an ended session.
fn update_last_active(c: &Connection, pk: i64, now: i64, expires_at: i64) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE sessions SET last_active_at = ?2, expires_at = ?3 WHERE id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![pk, now, expires_at])?;
    Ok(())
}

/// Records that the session's person proved it was them just now (a step-up).
pub fn update_verified_at(c: &Connection, pk: i64, now: i64) -> Result<(), DbError> {
    c.prepare_cached("UPDATE sessions SET verified_at = ?2 WHERE id = ?1 AND ended_at IS NULL")?
        .execute(params![pk, now])?;
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

/// A session just ended, as its security event tells of it.
#[derive(Debug, Clone)]
pub struct Ended {
    pub public_id: String,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub ip: String,
    pub location: Location,
    pub device: Device,
    pub reason: EndReason,
    pub by: Option<UserId>,
    /// The reason an administrator gave, if any.
    pub note: Option<String>,
}

/// What every ending statement returns, read by [`ended_rows`].
pub(super) const RETURNING_ENDED: &str = "RETURNING public_id, user_id, account_id, ip,
    country_code, country_name, city, device_category, browser_name, browser_version, os_name,
    os_version, end_reason, ended_by, end_note";

pub(super) fn ended_rows(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Ended>, DbError> {
    let rows = stmt.query_map(params, |r| {
        Ok(Ended {
            public_id: r.get("public_id")?,
            user_id: r.get("user_id")?,
            account_id: r.get("account_id")?,
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
            reason: r.get("end_reason")?,
            by: r.get("ended_by")?,
            note: r.get("end_note")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ends one live session; `None` when it had already ended.
pub fn end(
    c: &Connection,
    pk: i64,
    now: i64,
    by: Option<UserId>,
    reason: EndReason,
) -> Result<Option<Ended>, DbError> {
    end_with_note(c, pk, now, by, reason, None)
}

/// [`end`], with the reason an administrator gave (shown to the session's person).
pub fn end_with_note(
    c: &Connection,
    pk: i64,
    now: i64,
    by: Option<UserId>,
    reason: EndReason,
    note: Option<&str>,
) -> Result<Option<Ended>, DbError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE sessions SET ended_at = ?2, ended_by = ?3, end_reason = ?4, end_note = ?5
             WHERE id = ?1 AND ended_at IS NULL {RETURNING_ENDED}"
        )
    });
    let mut stmt = c.prepare_cached(&SQL)?;
    Ok(ended_rows(&mut stmt, params![pk, now, by, reason, note])?.pop())
}

/// A session's public id, who ended it (their email) and the reason they gave, by the
/// session's token:
/// read only when a request presents a session an administrator ended.
pub fn find_end_note(
    c: &Connection,
    hash: &[u8],
) -> Result<Option<(String, String, Option<String>)>, DbError> {
    Ok(c.prepare_cached(
        "SELECT s.public_id, e.email, s.end_note FROM sessions s
         JOIN users e ON e.id = s.ended_by
         WHERE s.token_hash = ?1 AND s.ended_at IS NOT NULL",
    )?
    .query_row([hash], |r| {
        Ok((r.get("public_id")?, r.get("email")?, r.get("end_note")?))
    })
    .optional()?)
}

/// The session is used from the country it signed in from again.
pub fn clear_move(c: &Connection, pk: i64) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE sessions SET moved_country_code = NULL, moved_country_name = NULL,
            moved_city = NULL, moved_at = NULL WHERE id = ?1",
    )?
    .execute([pk])?;
    Ok(())
}

/// Records that a live session is now used from `place` (another country than it
/// signed in from). True the first time the session is seen in that country.
pub fn record_move(c: &Connection, pk: i64, place: &Location, now: i64) -> Result<bool, DbError> {
    c.prepare_cached(
        "UPDATE sessions SET moved_country_code = ?2, moved_country_name = ?3, moved_city = ?4,
            moved_at = ?5 WHERE id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![
        pk,
        place.country_code,
        place.country,
        place.city,
        now
    ])?;
    let first = c
        .prepare_cached(
            "INSERT OR IGNORE INTO session_moves (session_id, country_code, at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![pk, place.country_code, now])?;
    Ok(first == 1)
}

/// Ends every live session of a user except `keep`.
pub fn end_all_for_user(
    c: &Connection,
    user: UserId,
    keep: Option<i64>,
    now: i64,
    by: Option<UserId>,
    reason: EndReason,
) -> Result<Vec<Ended>, DbError> {
    end_all_for_user_with_note(c, user, keep, now, by, reason, None)
}

/// [`end_all_for_user`], with the reason an administrator gave.
pub fn end_all_for_user_with_note(
    c: &Connection,
    user: UserId,
    keep: Option<i64>,
    now: i64,
    by: Option<UserId>,
    reason: EndReason,
    note: Option<&str>,
) -> Result<Vec<Ended>, DbError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE sessions SET ended_at = ?3, ended_by = ?4, end_reason = ?5, end_note = ?6
             WHERE user_id = ?1 AND ended_at IS NULL AND expires_at > ?3 AND id IS NOT ?2
             {RETURNING_ENDED}"
        )
    });
    let mut stmt = c.prepare_cached(&SQL)?;
    ended_rows(&mut stmt, params![user, keep, now, by, reason, note])
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
    static SQL: LazyLock<[String; 2]> =
        LazyLock::new(|| [COLUMNS, COLUMNS_NO_GRANTS].map(active_of_user));
    static COLS: [OnceLock<Cols>; 2] = [OnceLock::new(), OnceLock::new()];
    let which = usize::from(!holds_grants(c, user)?);
    let mut stmt = c.prepare_cached(&SQL[which])?;
    let cols = found_once(&COLS[which], || Cols::of(&stmt))?;
    // A negative LIMIT is none in SQLite.
    let limit = limit.map_or(-1, i64::from);
    collect(
        stmt.query_map(params![user, now, email, account_name, limit], |r| {
            from_row(r, cols)
        })?,
    )
}

columns!(
    /// The columns of [`LISTED_NO_GRANTS`].
    ListedCols {
        pk, public_id, application, device_category, browser_name, browser_version,
        os_name, os_version, ip, country_code, country_name, city, network,
        moved_country_code, moved_country_name, moved_city, moved_at, created_at,
        last_active_at, expires_at, applications_used, auth_methods,
    }
);

/// Where a statement that selects [`LISTED`] or [`LISTED_NO_GRANTS`] has each listed
/// column: "signed in to" is a column of the first only.
struct ListedAt {
    cols: ListedCols,
    signed_in_to: Option<usize>,
}

impl ListedAt {
    fn of(stmt: &rusqlite::Statement<'_>) -> rusqlite::Result<Self> {
        Ok(ListedAt {
            cols: ListedCols::of(stmt)?,
            signed_in_to: stmt
                .column_names()
                .iter()
                .position(|n| *n == "signed_in_to"),
        })
    }
}

/// [`list_active_for_user`], each session handed to `each` as it is read, borrowed from
/// its row, instead of collected: a listing's JSON is written straight from the rows.
/// Whose the sessions are (`owner`) is not read again on every row. The sessions are
/// recalled instead of read while nothing has been committed since they were
/// ([`super::recall`]). Answers how many there were.
pub fn each_active_for_user(
    c: &Pooled,
    owner: &Principal,
    now: i64,
    limit: Option<u32>,
    mut each: impl FnMut(&SessionView<'_>),
) -> Result<usize, DbError> {
    let limit = limit.map_or(usize::MAX, |l| l as usize);
    let before = match c.recall_listed(owner.user_id.0, now)? {
        Ok(kept) => {
            let active = kept.iter().filter(|s| s.expires_at() > now).take(limit);
            return Ok(active.map(|s| each(&s.view(owner))).count());
        }
        Err(before) => before,
    };
    // Copied as they are read only when they may be kept.
    let mut kept = c.kept_under(before).map(|epoch| (epoch, Vec::new()));
    let n = read_active_for_user(c, owner, now, limit, |s| {
        each(s);
        if let Some((_, copies)) = &mut kept {
            copies.push(Shown::of(s));
        }
    })?;
    // Kept only when none was cut off by the limit: a recall answers every limit.
    if let Some((epoch, copies)) = kept.filter(|_| n < limit) {
        c.keep_listed(owner.user_id.0, epoch, now, copies);
    }
    Ok(n)
}

/// [`each_active_for_user`]'s read, at most `limit` sessions.
fn read_active_for_user(
    c: &Connection,
    owner: &Principal,
    now: i64,
    limit: usize,
    mut each: impl FnMut(&SessionView<'_>),
) -> Result<usize, DbError> {
    static SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
        [LISTED, LISTED_NO_GRANTS].map(|columns| {
            format!(
                "SELECT {columns} FROM sessions s
                 WHERE s.user_id = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2
                 ORDER BY s.last_active_at DESC, s.id DESC LIMIT ?3"
            )
        })
    });
    static COLS: [OnceLock<ListedAt>; 2] = [OnceLock::new(), OnceLock::new()];
    let which = usize::from(!holds_grants(c, owner.user_id)?);
    let mut stmt = c.prepare_cached(&SQL[which])?;
    let cols = found_once(&COLS[which], || ListedAt::of(&stmt))?;
    // A negative LIMIT is none in SQLite.
    let limit = i64::try_from(limit).unwrap_or(-1);
    let mut rows = stmt.query(params![owner.user_id, now, limit])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        each(&view_of_row(r, cols, owner)?);
        n += 1;
    }
    Ok(n)
}

/// The session `pk` of `owner`'s as a listing shows it, handed to `show` borrowed from
/// its row (for `/api/v1/me`, after the check found it on the same connection).
pub fn with_shown<T>(
    c: &Connection,
    pk: i64,
    owner: &Principal,
    show: impl FnOnce(&SessionView<'_>) -> T,
) -> Result<Option<T>, DbError> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {LISTED} FROM sessions s WHERE s.id = ?1"));
    static COLS: OnceLock<ListedAt> = OnceLock::new();
    let mut stmt = c.prepare_cached(&SQL)?;
    let cols = found_once(&COLS, || ListedAt::of(&stmt))?;
    let mut rows = stmt.query([pk])?;
    match rows.next()? {
        Some(r) => Ok(Some(show(&view_of_row(r, cols, owner)?))),
        None => Ok(None),
    }
}

/// The active sessions of user `?1` (`?2` is now, `?5` the limit), most recently active
/// first, with `columns` and the caller's user email `?3` and account name `?4`.
fn active_of_user(columns: &str) -> String {
    format!(
        "SELECT {columns}, ?3 AS user_email, ?4 AS account_name FROM sessions s
         WHERE s.user_id = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2
         ORDER BY s.last_active_at DESC, s.id DESC LIMIT ?5"
    )
}

/// Whether `user` holds any OpenID grant, live or ended: a listing asks once for the
/// person instead of once per session, and most people hold none.
fn holds_grants(c: &Connection, user: UserId) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("SELECT EXISTS (SELECT 1 FROM oidc_grants WHERE user_id = ?1)")?
            .query_row([user], |r| r.get(0))?,
    )
}

/// A listed row of `owner`'s. Without a "signed in to" column (they hold no grant), the
/// session is signed in to nothing.
fn view_of_row<'r>(
    r: &'r Row<'_>,
    at: &ListedAt,
    owner: &'r Principal,
) -> rusqlite::Result<SessionView<'r>> {
    let c = &at.cols;
    let text = |i: usize| -> rusqlite::Result<&'r str> { Ok(r.get_ref(i)?.as_str()?) };
    let maybe =
        |i: usize| -> rusqlite::Result<Option<&'r str>> { Ok(r.get_ref(i)?.as_str_or_null()?) };
    let moved_to = match r.get::<_, Option<i64>>(c.moved_at)? {
        None => None,
        Some(at) => Some((
            PlaceRef {
                country_code: maybe(c.moved_country_code)?,
                country: maybe(c.moved_country_name)?,
                city: maybe(c.moved_city)?,
                network: None,
            },
            at,
        )),
    };
    Ok(SessionView {
        pk: r.get(c.pk)?,
        id: text(c.public_id)?,
        user_id: owner.user_id.0,
        user_email: &owner.email,
        account_id: owner.account_id.0,
        account_name: &owner.account_name,
        application: text(c.application)?,
        device: DeviceRef {
            category: text(c.device_category)?,
            browser: text(c.browser_name)?,
            browser_version: text(c.browser_version)?,
            os: text(c.os_name)?,
            os_version: text(c.os_version)?,
        },
        ip: text(c.ip)?,
        place: PlaceRef {
            country_code: maybe(c.country_code)?,
            country: maybe(c.country_name)?,
            city: maybe(c.city)?,
            network: maybe(c.network)?,
        },
        created_at: r.get(c.created_at)?,
        last_active_at: r.get(c.last_active_at)?,
        expires_at: r.get(c.expires_at)?,
        applications_used: Cow::Owned(applications_used(text(c.applications_used)?)),
        signed_in_to: match at.signed_in_to {
            Some(i) => Cow::Owned(signed_in_to(text(i)?)),
            None => Cow::Borrowed(&[]),
        },
        auth_methods: AuthMethods::parse_list(text(c.auth_methods)?),
        moved_to,
    })
}

/// Collects rows into a vector sized for a page up front: growing it row by row costs
/// more than reading the rows (each step copies every session so far).
pub(super) fn collect(
    rows: impl Iterator<Item = rusqlite::Result<Session>>,
) -> Result<Vec<Session>, DbError> {
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
/// time is when they expired, not when the sweeper noticed. At most `limit` at a time.
pub fn end_expired(
    c: &Connection,
    now: i64,
    max_lifetime: i64,
    limit: i64,
) -> Result<Vec<Ended>, DbError> {
    let mut stmt = c.prepare_cached(&format!(
        "UPDATE sessions SET ended_at = expires_at,
            end_reason = CASE WHEN expires_at >= created_at + ?2 THEN 'max_lifetime' ELSE 'idle_timeout' END
         WHERE id IN (SELECT id FROM sessions WHERE ended_at IS NULL AND expires_at <= ?1 LIMIT ?3)
         {RETURNING_ENDED}"
    ))?;
    ended_rows(&mut stmt, params![now, max_lifetime, limit])
}

/// Deletes up to `limit` ended sessions that ended before `cutoff`; returns how many.
/// Callers loop, so that a large backlog never holds the write lock for long.
pub fn delete_ended_before(c: &Connection, cutoff: i64, limit: i64) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "DELETE FROM sessions WHERE id IN (
           SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1 LIMIT ?2)",
    )?
    .execute(params![cutoff, limit])?)
}

/// Up to `limit` sessions created before `cutoff` whose IP is still whole (a shortened
/// one holds a `/`), as (row id, IP).
pub fn find_whole_ips_before(
    c: &Connection,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, ip FROM sessions WHERE created_at < ?1 AND instr(ip, '/') = 0 AND ip != ''
         LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![cutoff, limit], |r| {
        Ok((r.get::<_, i64>("id")?, r.get::<_, String>("ip")?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update_ip(c: &Connection, pk: i64, ip: &str) -> Result<(), DbError> {
    c.prepare_cached("UPDATE sessions SET ip = ?2 WHERE id = ?1")?
        .execute(params![pk, ip])?;
    Ok(())
}

/// Every session of a user, live and ended, newest first (for the data export).
pub fn list_all_for_user(c: &Connection, user: UserId) -> Result<Vec<Session>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.user_id = ?1 ORDER BY s.created_at DESC, s.id DESC"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let cols = Cols::of(&stmt)?;
    let rows = stmt.query_map([user], |r| from_row(r, &cols))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes every session of a user (erasure).
pub fn delete_for_user(c: &Connection, user: UserId) -> Result<usize, DbError> {
    Ok(c.execute("DELETE FROM sessions WHERE user_id = ?1", [user])?)
}

pub fn count_active(c: &Connection, now: i64) -> Result<i64, DbError> {
    Ok(c.query_row(
        "SELECT count(*) FROM sessions WHERE ended_at IS NULL AND expires_at > ?1",
        [now],
        |r| r.get(0),
    )?)
}

/// Adds a sign-in method to a live session (a second factor enrolled from it).
pub fn add_auth_method(c: &Connection, pk: i64, methods: &str) -> Result<(), DbError> {
    c.prepare_cached("UPDATE sessions SET auth_methods = ?2 WHERE id = ?1 AND ended_at IS NULL")?
        .execute(params![pk, methods])?;
    Ok(())
}
