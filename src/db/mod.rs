//! SQLite storage: a pool of connections. [`Db::run`] runs a closure on a pooled
//! connection on the blocking pool; [`Db::read_or_block`] runs a short read at once on
//! the async worker when a connection is idle (cheaper than the hand-off) and on the
//! blocking pool otherwise. SQL lives in this module's children, one per table. The
//! session check's rows are recalled while the database is unchanged (`recall`).

pub mod accounts;
pub mod alert_prefs;
pub mod alerts;
pub mod backup;
pub mod challenges;
pub mod devices;
pub mod events;
pub mod links;
pub mod lock;
pub mod login_records;
pub mod migrate;
pub mod oidc_grants;
pub mod oidc_keys;
pub mod oidc_logouts;
pub mod oidc_tokens;
mod recall;
pub mod second_factors;
pub mod session_search;
pub mod sessions;
pub mod users;
pub mod webhooks;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode};
use tokio::sync::Semaphore;

pub use recall::Pooled;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("storage task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Refused(String),
}

impl DbError {
    /// Faults of the storage itself (full disk, read-only file, lock held too long): the
    /// request may succeed later, so they answer 503 rather than 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                ErrorCode::DiskFull
                    | ErrorCode::ReadOnly
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::SystemIoFailure
            ),
            DbError::Pool(_) => true,
            _ => false,
        }
    }

    /// Another connection holds the write lock (and the busy timeout ran out).
    pub fn is_busy(&self) -> bool {
        matches!(self, DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.code == ErrorCode::ConstraintViolation)
    }
}

/// Creates the database file 0600 before SQLite opens it (SQLite gives its `-wal` and
/// `-shm` files the database file's mode), and takes group and other access away from
/// files an older version created readable by all.
fn make_private(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        crate::files::private_file(std::fs::OpenOptions::new().write(true)).open(path)?;
    }
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            let file = Path::new(&file);
            match std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700)) {
                Ok(()) => tracing::info!(file = %file.display(), "database file made private"),
                Err(err) => {
                    tracing::warn!(file = %file.display(), %err, "database file is readable by others")
                }
            }
        }
    }
    Ok(())
}

/// A parsed device from its five columns, by index or by name: sessions and login
/// records keep it the same way, and are read through this one mapping.
pub(crate) fn device<I: rusqlite::RowIndex>(
    r: &rusqlite::Row<'_>,
    [category, browser, browser_version, os, os_version]: [I; 5],
) -> rusqlite::Result<crate::model::Device> {
    Ok(crate::model::Device {
        category: r.get(category)?,
        browser: r.get(browser)?,
        browser_version: r.get(browser_version)?,
        os: r.get(os)?,
        os_version: r.get(os_version)?,
    })
}

/// A location from its columns (see [`device`]): country code, country name, city,
/// latitude, longitude, accuracy, trusted network.
pub(crate) fn location<I: rusqlite::RowIndex>(
    r: &rusqlite::Row<'_>,
    [
        country_code,
        country,
        city,
        latitude,
        longitude,
        accuracy_km,
        network,
    ]: [I; 7],
) -> rusqlite::Result<crate::model::Location> {
    let coords = match (r.get(latitude)?, r.get(longitude)?) {
        (Some(latitude), Some(longitude)) => Some(crate::model::Coords {
            latitude,
            longitude,
            accuracy_km: r.get(accuracy_km)?,
        }),
        _ => None,
    };
    Ok(crate::model::Location {
        country_code: r.get(country_code)?,
        country: r.get(country)?,
        city: r.get(city)?,
        coords,
        network: r.get(network)?,
    })
}

/// A place as the security log keeps it: country code, country name, city (no
/// coordinates, no network).
pub(crate) fn place<I: rusqlite::RowIndex>(
    r: &rusqlite::Row<'_>,
    [country_code, country, city]: [I; 3],
) -> rusqlite::Result<crate::model::Location> {
    Ok(crate::model::Location {
        country_code: r.get(country_code)?,
        country: r.get(country)?,
        city: r.get(city)?,
        coords: None,
        network: None,
    })
}

/// The cheapest query that proves the database answers.
pub fn ping(c: &Connection) -> Result<(), DbError> {
    c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
    Ok(())
}

/// How long a statement waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many prepared statements each connection keeps (see `init_connection`): more than
/// a request mixes, so that the hot ones are never compiled twice; rarely used ones may
/// be, which keeps each connection's share of memory small.
const STATEMENT_CACHE: usize = 64;

/// Connections in the pool, and so the most storage calls that run at once.
const POOL_SIZE: u32 = 8;

/// One read transaction around several statements run inline: they see one snapshot and
/// take SQLite's read lock once, not once each (a lock and its release cost more than a
/// short indexed read). Ended when dropped, on every path out, a panic's included, so
/// that no connection goes back to the pool holding an old snapshot (SPEC §3: an ended
/// session must be refused on its very next request).
///
/// Storage may keep what is read inside it ([`recall`]): the epoch is read before it
/// begins.
pub struct OneRead<'c>(&'c Pooled);

impl<'c> OneRead<'c> {
    pub fn begin(c: &'c Pooled) -> Result<Self, DbError> {
        c.begin_read()?;
        Ok(OneRead(c))
    }
}

impl Drop for OneRead<'_> {
    fn drop(&mut self) {
        self.0.end_read();
    }
}

/// Where a [`Db::read_or_block`] read runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// On the async worker, at once: keep it short and never wait.
    Inline,
    /// On the blocking pool: anything goes.
    Blocking,
}

#[derive(Clone)]
pub struct Db {
    pool: Pool<recall::Manager>,
    /// One permit per pooled connection. [`Db::run`] waits for a permit on the runtime
    /// before it takes a blocking thread, so under load requests queue as cheap futures
    /// instead of as dozens of blocking threads contending for eight connections (which
    /// cost more in futex wake-ups and context switches than the queries themselves).
    permits: Arc<Semaphore>,
}

impl Db {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::private_dir(dir).map_err(|e| {
                DbError::Refused(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        make_private(path).map_err(|e| describe_open_error(path, &e.to_string()))?;
        // One plain connection first: a file that is not a database, or cannot be
        // opened, is reported at once instead of after the pool's retries.
        let mut first =
            Connection::open(path).map_err(|e| describe_open_error(path, &e.to_string()))?;
        init_connection(&mut first).map_err(|e| describe_open_error(path, &e.to_string()))?;
        migrate::apply(&mut first)?;
        drop(first);
        let manager = recall::Manager::new(
            SqliteConnectionManager::file(path).with_init(init_pooled),
            Arc::new(recall::Memory::new()),
        );
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| describe_open_error(path, &e.to_string()))?;
        Ok(Db {
            pool,
            permits: Arc::new(Semaphore::new(POOL_SIZE as usize)),
        })
    }

    /// Runs `f` on a pooled connection on the blocking thread pool. A panic inside `f`
    /// comes back as an error instead of tearing down the request. `f` fails with any
    /// error a storage error converts into (the domain's own, so that a rule broken
    /// inside a transaction is simply returned), or with [`DbError`].
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        self.run_pooled(move |c| f(c)).await
    }

    /// [`Db::run`], handing `f` the pooled connection itself.
    async fn run_pooled<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Pooled) -> Result<T, E> + Send + 'static,
    {
        // Held by the blocking task, not by this future: a request that goes away does
        // not free the connection before its query is done.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| DbError::Task(e.to_string()))?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.get().map_err(DbError::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// A short read on the request path: run at once on this thread when a pooled
    /// connection is idle (the hand-off to a blocking thread and back costs more than an
    /// indexed read of a few rows), otherwise on the blocking pool as [`Db::run`] does.
    ///
    /// `f` is told where it runs. Inline, it answers `None` for anything that may wait
    /// (a write, which may wait for SQLite's one writer or checkpoint the log) or read
    /// too much; it is then run again on the blocking pool, where it must answer. A
    /// panic inside `f` comes back as an error, as with [`Db::run`].
    pub async fn read_or_block<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: Fn(&mut Pooled, Place) -> Result<Option<T>, E> + Send + 'static,
    {
        if let Some(done) = self.try_inline(|c| f(c, Place::Inline))
            && let Some(value) = done?
        {
            return Ok(value);
        }
        self.run_pooled(move |c| {
            f(c, Place::Blocking)?.ok_or_else(|| {
                DbError::Task("a read on the blocking pool asked to wait".into()).into()
            })
        })
        .await
    }

    /// `f` at once on this thread when a connection is idle; `None` (and `f` not run)
    /// when none is.
    fn try_inline<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut Pooled) -> Result<T, E>,
    ) -> Option<Result<T, E>> {
        let _permit = self.permits.try_acquire().ok()?;
        let mut conn = self.pool.try_get()?;
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn)));
        Some(ran.unwrap_or_else(|_| Err(DbError::Task("storage call panicked".into()).into())))
    }

    /// Same as [`Db::run`] for callers already off the runtime (the CLI).
    pub fn blocking<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.pool.get().map_err(DbError::from)?;
        f(&mut conn)
    }

    /// Online backup to `dest`, a new file created 0600, while the server may keep
    /// writing: the copy is the database as one moment saw it.
    pub fn backup(&self, dest: &Path) -> Result<(), DbError> {
        crate::files::private_file(std::fs::OpenOptions::new().write(true).create_new(true))
            .open(dest)
            .map_err(|e| DbError::Refused(format!("cannot create {}: {e}", dest.display())))?;
        let conn = self.pool.get()?;
        backup::copy_to(&conn, dest)
    }
}

/// Per-connection settings: WAL, foreign keys, and waiting (not failing) on a lock.
/// Transactions take the write lock when they begin (IMMEDIATE): a deferred one that
/// reads first and then writes fails at once with "database is locked" when another
/// connection wrote in between, and the busy timeout cannot help it.
fn init_connection(c: &mut Connection) -> rusqlite::Result<()> {
    c.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    // `rarray(?)`: a list of ids bound as one parameter (the admin email search).
    rusqlite::vtab::array::load_module(c)?;
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;",
    )?;
    // One plan per statement whatever its bound values: without it, a statement whose
    // LIMIT is a parameter (every listing's) is compiled again at each run, for a plan
    // that cannot change (there are no per-value statistics): a quarter of a listing's
    // time.
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // Room for the statements in use (rusqlite keeps 16 by default): past it, the least
    // recent is dropped and compiled again at its next use, which a mix of pages, checks
    // and background work did on many requests.
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    c.busy_timeout(BUSY_TIMEOUT)
}

/// [`init_connection`], and the session check's views in the connection's own schema
/// (`temp`): for the pool's connections, opened once the migrations are applied. A
/// migration's connection has none, as SQLite checks every view when a table changes.
fn init_pooled(c: &mut Connection) -> rusqlite::Result<()> {
    init_connection(c)?;
    c.execute_batch(sessions::CHECK_VIEWS)
}

fn describe_open_error(path: &Path, text: &str) -> DbError {
    let hint = if text.contains("not a database") {
        "the file is not a SQLite database"
    } else if text.contains("unable to open") {
        "the file cannot be opened (check the path and permissions)"
    } else {
        text
    };
    DbError::Refused(format!("cannot open database {}: {hint}", path.display()))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::OneRead;

    /// A connection goes back to the pool out of its read, however the read ended: else
    /// it would keep answering from an old snapshot.
    #[test]
    fn one_read_ends_on_every_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let db = super::Db::open(&path).unwrap();
        let c = db.pool.get().unwrap();
        c.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let other = Connection::open(&path).unwrap();
        let read = |c: &Connection| -> i64 {
            c.query_row("SELECT max(v) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        {
            let _one = OneRead::begin(&c).unwrap();
            assert!(!c.is_autocommit());
            assert_eq!(read(&c), 1);
            other.execute("INSERT INTO t VALUES (2)", []).unwrap();
            assert_eq!(read(&c), 1, "one snapshot inside the read");
        }
        assert!(c.is_autocommit());
        assert_eq!(read(&c), 2, "the next read sees what was written meanwhile");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _one = OneRead::begin(&c).unwrap();
            read(&c);
            panic!("inside the read");
        }));
        assert!(panicked.is_err());
        assert!(c.is_autocommit(), "a panic ends the read too");
        other.execute("INSERT INTO t VALUES (3)", []).unwrap();
        assert_eq!(read(&c), 3);
    }

    /// The pool's connections read the session check through views: on a file the
    /// migrations have just made, each view is found by the token's index (a lookup, not
    /// a scan of every session), and the migrations, run before the pool opens, are not
    /// held up by views naming tables they have yet to make.
    #[test]
    fn the_checks_views_are_read_through_the_tokens_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::Db::open(&dir.path().join("t.sqlite3")).unwrap();
        let c = db.pool.get().unwrap();
        for view in ["session_check", "session_check_uses", "session_check_shown"] {
            let mut stmt = c
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT * FROM temp.{view} WHERE token_hash = ?1"
                ))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map([[0u8; 32]], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter()
                    .any(|step| step.starts_with("SEARCH s USING INDEX")
                        && step.contains("(token_hash=?)")),
                "{view}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN s")),
                "{view}: {plan:?}"
            );
        }
    }
}
