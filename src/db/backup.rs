//! SQLite specifics of backups and restores: checking a copy and settling a stopped
//! database's write-ahead log. The online copy itself is [`super::Db::backup`].

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::DbError;

/// Copies the database of `src` into the (new or empty) file `dest` in one step: the
/// copy holds one read transaction, so it is consistent, and in WAL mode writers go on
/// meanwhile. (Copying a few pages at a time would start over after every write made
/// between two steps, and might never finish on a busy server.)
pub fn copy_to(src: &Connection, dest: &Path) -> Result<(), DbError> {
    let mut dst = Connection::open(dest)?;
    let backup = rusqlite::backup::Backup::new(src, &mut dst)?;
    match backup.step(-1)? {
        rusqlite::backup::StepResult::Done => Ok(()),
        other => Err(DbError::Task(format!(
            "the backup did not finish: {other:?}"
        ))),
    }
}

/// What a database file holds, as far as a restore cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// `PRAGMA integrity_check`'s answer: "ok", or the problems found.
    pub integrity: String,
    /// The newest applied migration; None when the file has no `schema_migrations`.
    pub schema_version: Option<i64>,
}

/// Opens an existing file without creating one.
fn open_existing(path: &Path) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Ok(Connection::open_with_flags(path, flags)?)
}

fn refuse_not_a_database(e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => DbError::Refused("it is not a SQLite database".into()),
        Some(ErrorCode::DatabaseCorrupt) => {
            DbError::Refused(format!("it fails SQLite's integrity check ({e})"))
        }
        _ => DbError::Sqlite(e),
    }
}

/// `PRAGMA integrity_check` on the file at `path`: "ok" or the problems, one a line.
pub fn integrity_check(path: &Path) -> Result<String, DbError> {
    let conn = open_existing(path)?;
    integrity(&conn)
}

fn integrity(conn: &Connection) -> Result<String, DbError> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check(20)")
        .map_err(refuse_not_a_database)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(refuse_not_a_database)?;
    let mut lines = Vec::new();
    for row in rows {
        lines.push(row.map_err(refuse_not_a_database)?);
    }
    Ok(lines.join("\n"))
}

/// Integrity and schema version of a candidate for a restore. A file that is not a
/// database, or is damaged beyond reading, is [`DbError::Refused`].
pub fn inspect(path: &Path) -> Result<FileCheck, DbError> {
    let conn = open_existing(path)?;
    let integrity = integrity(&conn)?;
    if integrity != "ok" {
        return Ok(FileCheck {
            integrity,
            schema_version: None,
        });
    }
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .map_err(refuse_not_a_database)?;
    let schema_version = if has_table {
        conn.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()
        .map_err(refuse_not_a_database)?
        .flatten()
    } else {
        None
    };
    Ok(FileCheck {
        integrity,
        schema_version,
    })
}

/// Folds a stopped database's write-ahead log into the file and lets SQLite remove the
/// `-wal` and `-shm` files as the last connection closes, so that the file alone holds
/// every committed transaction. Only for a database no server has open.
pub fn settle_wal(path: &Path) -> Result<(), DbError> {
    let conn = open_existing(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(refuse_not_a_database)?;
    conn.close().map_err(|(_, e)| DbError::Sqlite(e))
}
