//! `users` table.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::DbError;
use crate::model::{AccountId, Role, User, UserId, UserStatus};

const SELECT: &str = "SELECT u.id, u.account_id, a.name AS account_name, u.email, u.name,
    u.role, u.status, u.invited_at, u.created_at, u.email_verified FROM users u JOIN accounts a ON a.id = u.account_id";

/// An invited user is stored as `active` with `invited_at` set; they read as `invited`
/// (and as `disabled` when an admin disabled the invitation's user).
fn from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let status: UserStatus = r.get("status")?;
    let invited: Option<i64> = r.get("invited_at")?;
    let status = match (status, invited) {
        (UserStatus::Active, Some(_)) => UserStatus::Invited,
        (s, _) => s,
    };
    Ok(User {
        id: r.get("id")?,
        account_id: r.get("account_id")?,
        account_name: r.get("account_name")?,
        email: r.get("email")?,
        name: r.get("name")?,
        role: r.get("role")?,
        status,
        created_at: r.get("created_at")?,
        email_verified: r.get("email_verified")?,
    })
}

pub struct NewUser<'a> {
    pub account_id: AccountId,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    pub now: i64,
    /// An invitation: the user reads as `invited` until they accept it.
    pub invited: bool,
    /// The address is taken as proven (the operator's own additions).
    pub email_verified: bool,
}

pub fn insert(c: &Connection, u: &NewUser<'_>) -> Result<UserId, DbError> {
    c.execute(
        "INSERT INTO users (account_id, email, email_lower, name, role, status, password_hash, created_at, invited_at, email_verified)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, CASE WHEN ?8 THEN ?7 END, ?9)",
        params![u.account_id, u.email, u.email.to_lowercase(), u.name, u.role, u.password_hash, u.now, u.invited, u.email_verified],
    )?;
    Ok(UserId(c.last_insert_rowid()))
}

pub fn find_by_id(c: &Connection, id: UserId) -> Result<Option<User>, DbError> {
    Ok(
        c.query_row(&format!("{SELECT} WHERE u.id = ?1"), [id], from_row)
            .optional()?,
    )
}

/// The active admins of an account and the owners of the install, but `except`: who is
/// told when one of the account's people reports a sign-in as not theirs.
pub fn find_admins_of(
    c: &Connection,
    account: AccountId,
    except: UserId,
) -> Result<Vec<User>, DbError> {
    let mut stmt = c.prepare_cached(&format!(
        "{SELECT} WHERE u.status = 'active' AND u.id != ?2
           AND ((u.role = 'admin' AND u.account_id = ?1) OR u.role = 'owner')
         ORDER BY u.id"
    ))?;
    let rows = stmt.query_map(params![account, except], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn find_by_email(c: &Connection, email: &str) -> Result<Option<User>, DbError> {
    Ok(c.query_row(
        &format!("{SELECT} WHERE u.email_lower = ?1"),
        [email.to_lowercase()],
        from_row,
    )
    .optional()?)
}

/// What a sign-in verifies: the password hash and the credentials version it belongs to.
pub struct Credentials {
    pub hash: String,
    pub version: i64,
}

/// The user and their credentials, for sign-in only.
pub fn find_credentials(
    c: &Connection,
    email: &str,
) -> Result<Option<(User, Credentials)>, DbError> {
    let sql = "SELECT u.id, u.account_id, a.name AS account_name, u.email, u.name, u.role,
               u.status, u.invited_at, u.created_at, u.email_verified, u.password_hash,
               u.credentials_version
        FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.email_lower = ?1";
    Ok(c.prepare_cached(sql)?
        .query_row([email.to_lowercase()], |r| {
            Ok((
                from_row(r)?,
                Credentials {
                    hash: r.get("password_hash")?,
                    version: r.get("credentials_version")?,
                },
            ))
        })
        .optional()?)
}

/// Whether the user is active and still has the credentials version a sign-in verified;
/// asked in the transaction that inserts the session.
pub fn credentials_current(c: &Connection, id: UserId, version: i64) -> Result<bool, DbError> {
    let found: Option<(UserStatus, i64)> = c
        .prepare_cached("SELECT status, credentials_version FROM users WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(found.is_some_and(|(status, v)| status == UserStatus::Active && v == version))
}

pub fn password_hash(c: &Connection, id: UserId) -> Result<Option<String>, DbError> {
    Ok(
        c.query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?,
    )
}

pub fn count_by_role(c: &Connection, role: Role) -> Result<i64, DbError> {
    Ok(
        c.query_row("SELECT count(*) FROM users WHERE role = ?1", [role], |r| {
            r.get(0)
        })?,
    )
}

/// A user as the Users page lists them: with their last successful sign-in and how
/// many sessions they have active.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub user: User,
    pub last_sign_in_at: Option<i64>,
    pub active_sessions: i64,
    /// An active authenticator app or passkey.
    pub second_factor: bool,
}

/// Users visible to an admin, narrowed by a case-insensitive substring of the email or
/// the name; `below_owner` leaves the owners out (they rank above an admin).
pub fn list_matching(
    c: &Connection,
    account: Option<AccountId>,
    contains: Option<&str>,
    below_owner: bool,
    now: i64,
) -> Result<Vec<UserSummary>, DbError> {
    let mut stmt = c.prepare_cached(&format!(
        "{SELECT} WHERE (?1 IS NULL OR u.account_id = ?1)
           AND (?2 IS NULL OR instr(u.email_lower, ?2) > 0 OR instr(lower(u.name), ?2) > 0)
           AND (NOT ?3 OR u.role != 'owner')
         ORDER BY u.email_lower LIMIT 10000"
    ))?;
    let needle = contains.map(str::to_lowercase);
    let users: Vec<User> = stmt
        .query_map(params![account, needle, below_owner], from_row)?
        .collect::<Result<_, _>>()?;
    users.into_iter().map(|u| summary_of(c, u, now)).collect()
}

/// One user's [`UserSummary`].
pub fn find_summary(c: &Connection, id: UserId, now: i64) -> Result<Option<UserSummary>, DbError> {
    find_by_id(c, id)?
        .map(|u| summary_of(c, u, now))
        .transpose()
}

fn summary_of(c: &Connection, user: User, now: i64) -> Result<UserSummary, DbError> {
    let last_sign_in_at: Option<i64> = c
        .prepare_cached("SELECT max(at) FROM login_records WHERE user_id = ?1 AND success = 1")?
        .query_row([user.id], |r| r.get(0))?;
    let active_sessions: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM sessions WHERE user_id = ?1 AND ended_at IS NULL AND expires_at > ?2",
        )?
        .query_row(params![user.id, now], |r| r.get(0))?;
    let second_factor: bool = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM second_factors WHERE user_id = ?1 AND active = 1)",
        )?
        .query_row([user.id], |r| r.get(0))?;
    Ok(UserSummary {
        user,
        last_sign_in_at,
        active_sessions,
        second_factor,
    })
}

/// How many users hold `role` and are active (the "never without an owner" rule).
pub fn count_active_by_role(c: &Connection, role: Role) -> Result<i64, DbError> {
    Ok(c.query_row(
        "SELECT count(*) FROM users WHERE role = ?1 AND status = 'active' AND invited_at IS NULL",
        [role],
        |r| r.get(0),
    )?)
}

pub fn update_name(c: &Connection, id: UserId, name: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET name = ?2 WHERE id = ?1",
        params![id, name],
    )? == 1)
}

pub fn update_password(c: &Connection, id: UserId, hash: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET password_hash = ?2, credentials_version = credentials_version + 1
         WHERE id = ?1",
        params![id, hash],
    )? == 1)
}

pub fn update_status(c: &Connection, id: UserId, status: UserStatus) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET status = ?2,
           credentials_version = credentials_version + (?2 = 'disabled')
         WHERE id = ?1",
        params![id, status],
    )? == 1)
}

pub fn update_role(c: &Connection, id: UserId, role: Role) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET role = ?2 WHERE id = ?1",
        params![id, role],
    )? == 1)
}

/// Deletes the user's row (erasure; everything referencing it goes first).
pub fn delete(c: &Connection, id: UserId) -> Result<bool, DbError> {
    Ok(c.execute("DELETE FROM users WHERE id = ?1", [id])? == 1)
}

/// Changes a user's email (unique in the install, compared case-insensitively).
pub fn update_email(c: &Connection, id: UserId, email: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET email = ?2, email_lower = ?3 WHERE id = ?1",
        params![id, email, email.to_lowercase()],
    )? == 1)
}

/// An invitation was accepted: the user is no longer `invited`.
pub fn update_accepted(c: &Connection, id: UserId) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET invited_at = NULL WHERE id = ?1 AND invited_at IS NOT NULL",
        [id],
    )? == 1)
}

/// Records whether the person has proven their address (SPEC §19).
pub fn update_email_verified(c: &Connection, id: UserId, verified: bool) -> Result<(), DbError> {
    c.execute(
        "UPDATE users SET email_verified = ?2 WHERE id = ?1",
        params![id, verified],
    )?;
    Ok(())
}
