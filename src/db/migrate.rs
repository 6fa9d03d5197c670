//! Forward-only schema migrations, embedded in the binary and applied in order at start.
//! Each applied version is recorded; a database that has versions this binary does not
//! know was written by a newer Doorman, and is refused rather than misread.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;
use crate::clock::now;

/// (version, name, SQL) in order. New migrations go at the end, never edited once shipped.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "alerts",
        include_str!("../../migrations/0002_alerts.sql"),
    ),
    (
        3,
        "session_search",
        include_str!("../../migrations/0003_session_search.sql"),
    ),
    (
        4,
        "session_email",
        include_str!("../../migrations/0004_session_email.sql"),
    ),
    (
        5,
        "hardening",
        include_str!("../../migrations/0005_hardening.sql"),
    ),
];

pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

pub fn apply(conn: &mut Connection) -> Result<(), DbError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     INTEGER PRIMARY KEY,
             name        TEXT NOT NULL,
             applied_at  INTEGER NOT NULL
         );",
    )
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            DbError::Refused("the file is not a SQLite database".into())
        }
        _ => DbError::Sqlite(e),
    })?;
    let current: i64 = conn
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0);
    if current > latest_version() {
        return Err(DbError::Refused(format!(
            "the database is at schema version {current}, but this Doorman knows only up to \
             version {}; it was written by a newer Doorman. Run that version, or restore a backup.",
            latest_version()
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, now()],
        )?;
        tx.commit()?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_recorded() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?1, 'future', 0)",
            [latest_version() + 1],
        )
        .unwrap();
        let err = apply(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer Doorman"), "{err}");
    }
}
