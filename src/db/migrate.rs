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
    apply_until(conn, i64::MAX)
}

/// Applies the pending migrations up to `last` only (the schema an older Doorman left
/// behind, for the upgrade tests); [`apply`] applies them all.
///
/// Foreign keys are off while migrations run, as SQLite's table rebuild (create the new
/// table, copy, drop the old, rename) needs: the pragma cannot change inside a
/// transaction, and with it on, dropping a table that others refer to would delete or
/// refuse their rows. Each migration is checked with `PRAGMA foreign_key_check` before it
/// commits, so none can leave a dangling reference behind.
pub fn apply_until(conn: &mut Connection, last: i64) -> Result<(), DbError> {
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
    let pending: Vec<Migration> = all
        .into_iter()
        .filter(|m| m.version > current && m.version <= last)
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let foreign_keys: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let applied = pending.into_iter().try_for_each(|m| apply_one(conn, m));
    if foreign_keys {
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    applied
}

fn apply_one(conn: &mut Connection, m: Migration) -> Result<(), DbError> {
    let Migration { version, name, sql } = m;
    let tx = conn.transaction()?;
    tx.execute_batch(&sql)?;
    let dangling: Vec<String> = tx
        .prepare("PRAGMA foreign_key_check")?
        .query_map([], |r| {
            Ok(format!(
                "{} row {} → {}",
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?.unwrap_or_default(),
                r.get::<_, String>(2)?
            ))
        })?
        .take(5)
        .collect::<Result<_, _>>()?;
    if !dangling.is_empty() {
        return Err(DbError::Refused(format!(
            "migration {version} ({name}) would leave rows referring to rows that do not \
             exist ({}); nothing was changed",
            dangling.join(", ")
        )));
    }
    tx.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
        params![version, name, now()],
    )?;
    tx.commit()?;
    tracing::info!(version, name, "applied migration");
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

    /// A table's or index's SQL without comments, spaces, quotes or AUTOINCREMENT.
    fn normalized(sql: &str) -> String {
        sql.lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<String>()
            .replace(['"', ' ', '\t'], "")
            .to_lowercase()
            .replace("autoincrement", "")
    }

    fn schema(c: &Connection, tables: &[&str]) -> Vec<(String, String, String)> {
        let mut stmt = c
            .prepare(
                "SELECT type, name, sql FROM sqlite_master
                 WHERE tbl_name IN (SELECT value FROM json_each(?1)) AND sql IS NOT NULL
                 ORDER BY type, name",
            )
            .unwrap();
        let list = serde_json::to_string(tables).unwrap();
        stmt.query_map([list], |r| {
            Ok((r.get(0)?, r.get(1)?, normalized(&r.get::<_, String>(2)?)))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn the_id_rebuild_keeps_every_column_check_reference_index_and_trigger() {
        let rebuilt = ["users", "sessions", "alerts", "events", "links"];
        let mut c = Connection::open_in_memory().unwrap();
        apply_until(&mut c, 11).unwrap();
        let before = schema(&c, &rebuilt);
        // The rebuild alone: later migrations change these tables on their own.
        apply_until(&mut c, 12).unwrap();
        let after = schema(&c, &rebuilt);
        let expected: Vec<_> = before
            .into_iter()
            .map(|(kind, name, sql)| {
                let sql = if name == "links" {
                    sql.replace("'email'))", "'email','email_cancel'))")
                } else {
                    sql
                };
                (kind, name, sql)
            })
            .collect();
        assert_eq!(after, expected);
        for table in ["users", "sessions", "alerts", "events"] {
            let sql: String = c
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(sql.contains("AUTOINCREMENT"), "{table}");
        }
    }

    #[test]
    fn foreign_keys_are_back_on_after_migrating() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        apply(&mut c).unwrap();
        let on: bool = c
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(on);
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
