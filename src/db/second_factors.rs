//! `second_factors`, `recovery_codes`, and the second-factor policy columns of `users`
//! and `accounts`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::DbError;
use crate::model::{AccountId, UserId};

/// A factor as stored. `secret` (TOTP) and `credential` (WebAuthn) are secrets: this
/// type is never logged, and its `Debug` leaves them out.
#[derive(Clone)]
pub struct FactorRow {
    pub id: i64,
    pub user_id: UserId,
    pub kind: String,
    pub name: String,
    pub secret: Option<Vec<u8>>,
    pub credential: Option<String>,
    pub active: bool,
    pub last_step: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for FactorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactorRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, user_id, kind, name, secret, credential, active, last_step, created_at,
    last_used_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<FactorRow> {
    Ok(FactorRow {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        kind: r.get("kind")?,
        name: r.get("name")?,
        secret: r.get("secret")?,
        credential: r.get("credential")?,
        active: r.get("active")?,
        last_step: r.get("last_step")?,
        created_at: r.get("created_at")?,
        last_used_at: r.get("last_used_at")?,
    })
}

/// A user's factors, oldest first.
pub fn list_for_user(c: &Connection, user: UserId) -> Result<Vec<FactorRow>, DbError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM second_factors WHERE user_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn find(c: &Connection, user: UserId, id: i64) -> Result<Option<FactorRow>, DbError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM second_factors WHERE id = ?1 AND user_id = ?2"
    ))?
    .query_row(params![id, user], from_row)
    .optional()?)
}

/// The passkey with this credential id, whoever's it is (passwordless sign-in).
pub fn find_by_credential_id(c: &Connection, cred: &[u8]) -> Result<Option<FactorRow>, DbError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM second_factors WHERE credential_id = ?1 AND active = 1"
    ))?
    .query_row([cred], from_row)
    .optional()?)
}

pub struct NewFactor<'a> {
    pub user_id: UserId,
    pub kind: &'a str,
    pub name: &'a str,
    pub secret: Option<&'a [u8]>,
    pub credential_id: Option<&'a [u8]>,
    pub credential: Option<&'a str>,
    pub active: bool,
    pub now: i64,
}

pub fn insert(c: &Connection, f: &NewFactor<'_>) -> Result<i64, DbError> {
    c.prepare_cached(
        "INSERT INTO second_factors (user_id, kind, name, secret, credential_id, credential,
            active, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        f.user_id,
        f.kind,
        f.name,
        f.secret,
        f.credential_id,
        f.credential,
        f.active,
        f.now
    ])?;
    Ok(c.last_insert_rowid())
}

/// Activates a factor; false when it is not the user's or already active.
pub fn activate(c: &Connection, user: UserId, id: i64) -> Result<bool, DbError> {
    Ok(c.prepare_cached(
        "UPDATE second_factors SET active = 1 WHERE id = ?1 AND user_id = ?2 AND active = 0",
    )?
    .execute(params![id, user])?
        == 1)
}

/// Takes a TOTP time step for the factor: true only when it is later than the last one
/// accepted, so two requests racing with one code cannot both have it.
pub fn take_step(c: &Connection, id: i64, step: i64, now: i64) -> Result<bool, DbError> {
    Ok(c.prepare_cached(
        "UPDATE second_factors SET last_step = ?2, last_used_at = ?3
             WHERE id = ?1 AND (last_step IS NULL OR last_step < ?2)",
    )?
    .execute(params![id, step, now])?
        == 1)
}

/// Records a use of a passkey, with the credential as it is after the use (its counter).
pub fn record_use(
    c: &Connection,
    id: i64,
    credential: Option<&str>,
    now: i64,
) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE second_factors SET last_used_at = ?2, credential = coalesce(?3, credential)
         WHERE id = ?1",
    )?
    .execute(params![id, now, credential])?;
    Ok(())
}

pub fn rename(c: &Connection, user: UserId, id: i64, name: &str) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("UPDATE second_factors SET name = ?3 WHERE id = ?1 AND user_id = ?2")?
            .execute(params![id, user, name])?
            == 1,
    )
}

pub fn delete(c: &Connection, user: UserId, id: i64) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("DELETE FROM second_factors WHERE id = ?1 AND user_id = ?2")?
            .execute(params![id, user])?
            == 1,
    )
}

/// Inactive TOTP factors left by enrolments never finished, created before `cutoff`.
pub fn delete_inactive_before(c: &Connection, cutoff: i64) -> Result<usize, DbError> {
    Ok(c.execute(
        "DELETE FROM second_factors WHERE active = 0 AND created_at < ?1",
        [cutoff],
    )?)
}

/// Every factor and recovery code of a user (an admin's reset, erasure); returns how
/// many factors there were.
pub fn delete_all_for_user(c: &Connection, user: UserId) -> Result<usize, DbError> {
    c.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user])?;
    c.execute("DELETE FROM login_challenges WHERE user_id = ?1", [user])?;
    let active: i64 = c.query_row(
        "SELECT count(*) FROM second_factors WHERE user_id = ?1 AND active = 1",
        [user],
        |r| r.get(0),
    )?;
    c.execute("DELETE FROM second_factors WHERE user_id = ?1", [user])?;
    Ok(active as usize)
}

/// Replaces the user's recovery codes with these hashes.
pub fn replace_recovery_codes(
    c: &Connection,
    user: UserId,
    hashes: &[[u8; 32]],
) -> Result<(), DbError> {
    c.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user])?;
    let mut stmt =
        c.prepare_cached("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)")?;
    for h in hashes {
        stmt.execute(params![user, &h[..]])?;
    }
    Ok(())
}

/// Uses up a recovery code: true when it was the user's and unused.
pub fn use_recovery_code(
    c: &Connection,
    user: UserId,
    hash: &[u8; 32],
    now: i64,
) -> Result<bool, DbError> {
    Ok(c.prepare_cached(
        "UPDATE recovery_codes SET used_at = ?3
             WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
    )?
    .execute(params![user, &hash[..], now])?
        == 1)
}

pub fn count_unused_recovery_codes(c: &Connection, user: UserId) -> Result<i64, DbError> {
    Ok(c.prepare_cached(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
    )?
    .query_row([user], |r| r.get(0))?)
}

/// Whether a second factor is required of the user: by the user's own flag or their
/// account's (the install-wide setting is the caller's).
pub fn required_of(c: &Connection, user: UserId) -> Result<bool, DbError> {
    Ok(c.prepare_cached(
        "SELECT u.require_second_factor OR a.require_second_factor
             FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.id = ?1",
    )?
    .query_row([user], |r| r.get::<_, bool>(0))
    .optional()?
    .unwrap_or(false))
}

/// Whether the user's own flag requires a second factor (not their account's).
pub fn required_of_user_alone(c: &Connection, user: UserId) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("SELECT require_second_factor FROM users WHERE id = ?1")?
            .query_row([user], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false),
    )
}

pub fn set_required_for_user(c: &Connection, user: UserId, on: bool) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE users SET require_second_factor = ?2 WHERE id = ?1",
        params![user, on],
    )? == 1)
}

pub fn set_required_for_account(
    c: &Connection,
    account: AccountId,
    on: bool,
) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE accounts SET require_second_factor = ?2 WHERE id = ?1",
        params![account, on],
    )? == 1)
}

pub fn required_for_account(c: &Connection, account: AccountId) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT require_second_factor FROM accounts WHERE id = ?1",
        [account],
        |r| r.get::<_, bool>(0),
    )
    .optional()?
    .unwrap_or(false))
}
