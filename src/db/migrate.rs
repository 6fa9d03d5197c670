//! Forward-only schema migrations, embedded in the binary and applied in order at start.
//! Each applied version is recorded; a database that has versions this binary does not
//! know was written by a newer Doorman, and is refused rather than misread.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;
use crate::clock::now;

/// The files of `migrations/`, embedded: `NNNN_name.sql`, applied in the order of NNNN.
/// A new migration is a new file there, nothing else; shipped files are never edited.
#[derive(rust_embed::RustEmbed)]
#[folder = "migrations/"]
struct Files;

/// One migration: its version (the file's number), name and SQL.
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub sql: String,
}

/// Every embedded migration, in order. A file not named `NNNN_name.sql` is a build
/// mistake, caught by the unit tests below.
pub fn migrations() -> Vec<Migration> {
    let mut all: Vec<Migration> = Files::iter()
        .filter_map(|file| {
            let stem = file.strip_suffix(".sql")?;
            let (number, name) = stem.split_once('_')?;
            let content = Files::get(&file)?;
            Some(Migration {
                version: number.parse().ok()?,
                name: name.to_string(),
                sql: String::from_utf8_lossy(&content.data).into_owned(),
            })
        })
        .collect();
    all.sort_by_key(|m| m.version);
    all
}

pub fn latest_version() -> i64 {
    migrations().last().map(|m| m.version).unwrap_or(0)
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
    let all = migrations();
    let latest = all.last().map_or(0, |m| m.version);
    if current > latest {
        return Err(DbError::Refused(format!(
            "the database is at schema version {current}, but this Doorman knows only up to \
             version {latest}; it was written by a newer Doorman. Run that version, or restore a backup."
        )));
    }
    for Migration { version, name, sql } in all.into_iter().filter(|m| m.version > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(&sql)?;
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
        assert_eq!(n, migrations().len() as i64);
    }

    #[test]
    fn every_file_is_a_numbered_migration_in_sequence() {
        let files = Files::iter().filter(|f| f.ends_with(".sql")).count();
        let all = migrations();
        assert_eq!(all.len(), files, "every file is named NNNN_name.sql");
        for (i, m) in all.iter().enumerate() {
            assert_eq!(
                m.version,
                i as i64 + 1,
                "{} is not numbered in sequence",
                m.name
            );
            assert!(!m.sql.trim().is_empty(), "{} is empty", m.name);
        }
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
