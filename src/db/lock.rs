//! The advisory lock on `<database>.lock` that tells a running server from a stopped
//! one: `serve` holds it shared for its lifetime, `doorman restore` takes it exclusively
//! while it checks and swaps the file. The operating system drops the lock when the
//! process ends, however it ends, so a crash leaves nothing stale behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::DbError;

/// Held while alive; dropping it releases the lock.
#[derive(Debug)]
pub struct DbLock {
    _file: File,
    pub path: PathBuf,
}

/// `<database>.lock`, beside the database.
pub fn lock_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Opens (creating, 0600) the lock file. An existing one is opened read-only when it
/// cannot be opened for writing (a volume remounted read-only): a lock needs no more.
fn open(db_path: &Path) -> std::io::Result<(File, PathBuf)> {
    let path = lock_path(db_path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::private_dir(dir)?;
    }
    let file = crate::files::private_file(OpenOptions::new().read(true).write(true))
        .truncate(false)
        .open(&path)
        .or_else(|e| File::open(&path).map_err(|_| e))?;
    Ok((file, path))
}

fn cannot_open(db_path: &Path, e: &std::io::Error) -> DbError {
    DbError::Refused(format!("cannot open {}: {e}", lock_path(db_path).display()))
}

/// The server's lock: several servers may share it, a restore may not. On a read-only
/// volume where the lock file was never made, the server runs without it (with a
/// warning): nothing can restore into a read-only volume either.
pub fn lock_shared(db_path: &Path) -> Result<Option<DbLock>, DbError> {
    let (file, path) = match open(db_path) {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
            tracing::warn!(file = %lock_path(db_path).display(), err = %e, "read-only volume: running without the database's lock");
            return Ok(None);
        }
        Err(e) => return Err(cannot_open(db_path, &e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(DbLock { _file: file, path })),
        Err(TryLockError::WouldBlock) => Err(DbError::Refused(format!(
            "the database {} is being restored (`doorman restore` holds {}); start the \
             server when it is done",
            db_path.display(),
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(DbError::Refused(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// The restore's lock: refused while any server holds the shared one.
pub fn lock_exclusive(db_path: &Path) -> Result<DbLock, DbError> {
    let (file, path) = open(db_path).map_err(|e| cannot_open(db_path, &e))?;
    match file.try_lock() {
        Ok(()) => Ok(DbLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(DbError::Refused(format!(
            "a Doorman server has the database {} open (it holds {}); stop it first",
            db_path.display(),
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(DbError::Refused(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_share_and_exclude_the_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d.sqlite3");
        let a = lock_shared(&db).unwrap();
        let b = lock_shared(&db).unwrap();
        let err = lock_exclusive(&db).unwrap_err().to_string();
        assert!(err.contains("stop it first"), "{err}");
        drop((a, b));
        let x = lock_exclusive(&db).unwrap();
        assert!(
            lock_shared(&db)
                .unwrap_err()
                .to_string()
                .contains("restored")
        );
        drop(x);
        assert!(lock_shared(&db).is_ok());
    }
}
