//! `accounts` table.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::DbError;
use crate::model::{Account, AccountId};

fn from_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let domains: String = r.get("email_domains")?;
    Ok(Account {
        id: r.get("id")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
        email_domains: domains
            .split(',')
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

pub fn find_by_name(c: &Connection, name: &str) -> Result<Option<Account>, DbError> {
    Ok(c.query_row(
        "SELECT id, name, created_at, email_domains FROM accounts WHERE name = ?1",
        [name],
        from_row,
    )
    .optional()?)
}

pub fn find_by_id(c: &Connection, id: AccountId) -> Result<Option<Account>, DbError> {
    Ok(c.query_row(
        "SELECT id, name, created_at, email_domains FROM accounts WHERE id = ?1",
        [id],
        from_row,
    )
    .optional()?)
}

pub fn list(c: &Connection) -> Result<Vec<Account>, DbError> {
    let mut stmt =
        c.prepare_cached("SELECT id, name, created_at, email_domains FROM accounts ORDER BY name")?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert(c: &Connection, name: &str, now: i64) -> Result<AccountId, DbError> {
    c.execute(
        "INSERT INTO accounts (name, created_at) VALUES (?1, ?2)",
        params![name, now],
    )?;
    Ok(AccountId(c.last_insert_rowid()))
}

pub fn update_name(c: &Connection, id: AccountId, name: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE accounts SET name = ?2 WHERE id = ?1",
        params![id, name],
    )? == 1)
}

/// Sets the email domains of an account (lower-case, no commas: checked by the caller).
pub fn update_email_domains(
    c: &Connection,
    id: AccountId,
    domains: &[String],
) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE accounts SET email_domains = ?2 WHERE id = ?1",
        params![id, domains.join(",")],
    )? == 1)
}
