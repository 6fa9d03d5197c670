//! `doorman restore PATH`: puts a backup (one of ours, `.sqlite3.zst`, or a plain SQLite
//! file) in place of the database, for a server that is stopped.
//!
//! Nothing is replaced until everything is checked: no server holds the database's lock
//! (and none can start while the restore holds it), the file unpacks, is SQLite, passes
//! the integrity check, and was not written by a newer Doorman. The database it replaces
//! is kept beside it as `<database>.before-restore-<UTC time>`, its write-ahead log
//! folded in first so that the kept file is whole.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::clock;
use crate::db;
use crate::error::{Error, Result};
use crate::files::{private_file, sync_dir};

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// Where the replaced database now is; None when there was none.
    pub kept: Option<PathBuf>,
    pub schema_version: i64,
}

/// The first four bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fn refused(message: String) -> Error {
    Error::invalid("restore_refused", message)
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Replaces the database at `database` with the backup at `source` (see the module
/// comment). Runs on the calling thread; meant for the CLI.
pub fn restore(database: &Path, source: &Path) -> Result<Restored> {
    let meta = std::fs::metadata(source)
        .map_err(|e| refused(format!("cannot read {}: {e}", source.display())))?;
    if !meta.is_file() {
        return Err(refused(format!("{} is not a file", source.display())));
    }
    let _lock = db::lock::lock_exclusive(database).map_err(|e| refused(e.to_string()))?;
    let candidate = with_suffix(database, ".restoring");
    // A leftover of an interrupted restore; nothing else uses this name.
    let _ = std::fs::remove_file(&candidate);
    let result = prepare(source, &candidate).and_then(|version| {
        let kept = swap(database, &candidate)?;
        Ok(Restored {
            kept,
            schema_version: version,
        })
    });
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(&candidate, suffix));
    }
    result
}

/// Copies or unpacks `source` into `candidate` (0600) and checks it; its schema version.
fn prepare(source: &Path, candidate: &Path) -> Result<i64> {
    let mut magic = [0u8; 4];
    let read = File::open(source)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| refused(format!("cannot read {}: {e}", source.display())))?;
    if read == 4 && magic == ZSTD_MAGIC {
        super::backup::decompress(source, candidate).map_err(|e| refused(e.to_string()))?;
    } else {
        let mut from = File::open(source)
            .map_err(|e| refused(format!("cannot read {}: {e}", source.display())))?;
        let mut to = private_file(OpenOptions::new().write(true).create_new(true))
            .open(candidate)
            .map_err(|e| Error::Internal(format!("cannot create {}: {e}", candidate.display())))?;
        std::io::copy(&mut from, &mut to)
            .map_err(|e| Error::Internal(format!("cannot copy {}: {e}", source.display())))?;
    }
    let shown = source.display();
    let check = db::backup::inspect(candidate).map_err(|e| match e {
        db::DbError::Refused(why) => refused(format!("{shown}: {why}")),
        other => refused(format!("{shown} cannot be read as a database: {other}")),
    })?;
    if check.integrity != "ok" {
        return Err(refused(format!(
            "{shown} fails SQLite's integrity check: {}",
            check.integrity
        )));
    }
    let latest = db::migrate::latest_version();
    match check.schema_version {
        None => Err(refused(format!(
            "{shown} is a SQLite database but not Doorman's (it has no schema_migrations)"
        ))),
        Some(v) if v > latest => Err(refused(format!(
            "{shown} is at schema version {v}, written by a newer Doorman; this one knows \
             up to version {latest}"
        ))),
        Some(v) => Ok(v),
    }
}

/// Moves the current database (if any) aside and the checked candidate into its place.
fn swap(database: &Path, candidate: &Path) -> Result<Option<PathBuf>> {
    let kept = if database.exists() {
        // No server runs (we hold the lock): fold its log into the file, so the kept
        // copy is whole and no stale -wal is left for the restored file to pick up.
        if let Err(err) = db::backup::settle_wal(database) {
            tracing::warn!(%err, "the replaced database's log could not be folded in; it is kept beside it");
        }
        let kept = with_suffix(
            database,
            &format!(".before-restore-{}", clock::compact_utc(clock::now())),
        );
        if kept.exists() {
            return Err(refused(format!(
                "{} already exists; wait a second and try again",
                kept.display()
            )));
        }
        rename(database, &kept)?;
        // Whatever log is still there belongs to the kept file, and goes with it.
        for suffix in ["-wal", "-shm"] {
            let log = with_suffix(database, suffix);
            if log.exists() {
                rename(&log, &with_suffix(&kept, suffix))?;
            }
        }
        Some(kept)
    } else {
        None
    };
    if let Err(err) = rename(candidate, database) {
        if let Some(kept) = &kept {
            let _ = std::fs::rename(kept, database);
        }
        return Err(err);
    }
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(err) = sync_dir(dir)
    {
        tracing::warn!(%err, dir = %dir.display(), "the restore is done but may not be on disk yet");
    }
    Ok(kept)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        Error::Internal(format!(
            "cannot move {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}
