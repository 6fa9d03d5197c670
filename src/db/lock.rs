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

fn open(db_path: &Path) -> Result<(File, PathBuf), DbError> {
    let path = lock_path(db_path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::private_dir(dir).map_err(|e| {
            DbError::Refused(format!("cannot create directory {}: {e}", dir.display()))
        })?;
    }
    let file = crate::files::private_file(OpenOptions::new().read(true).write(true))
        .truncate(false)
        .open(&path)
        .map_err(|e| DbError::Refused(format!("cannot open {}: {e}", path.display())))?;
    Ok((file, path))
}

/// The server's lock: several servers may share it, a restore may not.
pub fn lock_shared(db_path: &Path) -> Result<DbLock, DbError> {
    let (file, path) = open(db_path)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(DbLock { _file: file, path }),
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
    let (file, path) = open(db_path)?;
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
