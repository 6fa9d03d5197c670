//! The session check's recall: the rows it read, kept only while the database is
//! unchanged since (SPEC §3: no cache may serve a stale "valid").
//!
//! Every check of a token still asks SQLite, but when the token's row was read before,
//! it asks one question instead of reading the row again: has anything been committed
//! since? `PRAGMA data_version` answers for commits by every other connection, in this
//! process or another (the CLI, Litestream); a commit hook counts the connection's own.
//! The first time any pooled connection sees a change, everything kept is forgotten at
//! once (the epoch moves on). A row is kept under the epoch read before the check read
//! anything, so a commit the row does not show moves the epoch on before the row can be
//! recalled:
//! - another connection's commit is seen by each connection's next look, a read that
//!   begins after the commit;
//! - a connection's own commit is seen by its next look, which comes after the statement
//!   that committed has returned.
//!
//! A row read inside a transaction is kept under the epoch read before the transaction
//! began ([`super::OneRead`]), as its snapshot may be older than a later epoch says; in
//! any other transaction, not at all. `/api/v1/me` keeps the session as shown beside the
//! check's row, and My Sessions each person's active sessions as listed, under the same
//! rule.
//!
//! What is recalled is the row, never the answer: the check still judges it against the
//! clock and the policy on every request (expiry, the person's status, second factors),
//! and a listing leaves out the sessions that have expired since it was read. A look
//! costs a statement and SQLite's read lock, as a read does; what it saves is the row's
//! three seeks, its columns and their copies (for a listing, fifty rows of them).

use std::cell::Cell;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use super::DbError;
use super::sessions::TokenMatch;
use crate::model::{
    AppUse, AuthMethods, Device, Location, PlaceRef, Principal, SessionView, SignedInApp,
};

/// Rows kept at most. Past it, rows of earlier epochs are dropped, then all of them.
const KEPT: usize = 4096;

/// Listed sessions kept at most, all people's together (a few megabytes), dropped as
/// [`KEPT`]'s rows are.
const KEPT_LISTED: usize = 8192;

/// The rows the check has read, shared by the pool's connections.
pub(super) struct Memory {
    /// Moves on whenever a connection sees a change: rows kept under an earlier epoch are
    /// never recalled.
    epoch: AtomicU64,
    rows: Mutex<HashMap<[u8; 32], Kept>>,
    /// Each person's active sessions as My Sessions lists them, by user id.
    lists: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    by_user: HashMap<i64, Listed>,
    /// The sessions of all of them.
    sessions: usize,
}

/// A person's active sessions, most recently active first, as read at `read_at`: all of
/// them, none cut off by a limit.
struct Listed {
    epoch: u64,
    read_at: i64,
    sessions: Arc<[Shown]>,
}

struct Kept {
    epoch: u64,
    row: TokenMatch,
    /// The session as a listing shows it, when `/api/v1/me` read it.
    shown: Option<Arc<Shown>>,
}

impl Memory {
    pub(super) fn new() -> Self {
        Memory {
            epoch: AtomicU64::new(0),
            rows: Mutex::new(HashMap::new()),
            lists: Mutex::new(Lists::default()),
        }
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// What `pick` takes of the row kept for `hash` under `epoch`.
    fn recall<R>(
        &self,
        hash: &[u8; 32],
        epoch: u64,
        pick: impl FnOnce(&Kept) -> Option<R>,
    ) -> Option<R> {
        let rows = self.rows.lock().ok()?;
        rows.get(hash).filter(|k| k.epoch == epoch).and_then(pick)
    }

    fn keep(&self, hash: &[u8; 32], epoch: u64, row: &TokenMatch, shown: Option<Shown>) {
        let Ok(mut rows) = self.rows.lock() else {
            return;
        };
        let mut shown = shown.map(Arc::new);
        match rows.get(hash) {
            Some(k) if k.epoch > epoch => return,
            // A check keeps what `/api/v1/me` read of the same row.
            Some(k) if k.epoch == epoch && shown.is_none() => shown = k.shown.clone(),
            _ => {}
        }
        if rows.len() >= KEPT && !rows.contains_key(hash) {
            let now = self.epoch();
            rows.retain(|_, k| k.epoch == now);
            if rows.len() >= KEPT {
                rows.clear();
            }
        }
        let row = row.recalled(true);
        rows.insert(*hash, Kept { epoch, row, shown });
    }

    /// The sessions of `user` kept under `epoch`, as a listing at `now` would read them:
    /// none kept is `None`, as is a list read later than `now` (the clock went back, and
    /// a session it left out as expired might be active again).
    fn listed(&self, user: i64, epoch: u64, now: i64) -> Option<Arc<[Shown]>> {
        let lists = self.lists.lock().ok()?;
        let l = lists.by_user.get(&user)?;
        (l.epoch == epoch && l.read_at <= now).then(|| Arc::clone(&l.sessions))
    }

    fn keep_listed(&self, user: i64, epoch: u64, read_at: i64, sessions: Vec<Shown>) {
        let Ok(mut lists) = self.lists.lock() else {
            return;
        };
        if lists.by_user.get(&user).is_some_and(|l| l.epoch > epoch) || sessions.len() > KEPT_LISTED
        {
            return;
        }
        if let Some(old) = lists.by_user.remove(&user) {
            lists.sessions -= old.sessions.len();
        }
        if lists.sessions + sessions.len() > KEPT_LISTED {
            let now = self.epoch();
            lists.by_user.retain(|_, l| l.epoch == now);
            lists.sessions = lists.by_user.values().map(|l| l.sessions.len()).sum();
            if lists.sessions + sessions.len() > KEPT_LISTED {
                lists.by_user.clear();
                lists.sessions = 0;
            }
        }
        lists.sessions += sessions.len();
        let sessions = sessions.into();
        lists.by_user.insert(
            user,
            Listed {
                epoch,
                read_at,
                sessions,
            },
        );
    }
}

/// A session as a listing shows it, owned: kept beside the check's row for
/// `/api/v1/me`, which shows it.
pub struct Shown {
    pk: i64,
    id: String,
    application: String,
    device: Device,
    ip: String,
    /// Only what a listing shows of it (no coordinates).
    place: Location,
    created_at: i64,
    last_active_at: i64,
    expires_at: i64,
    applications_used: Vec<AppUse>,
    signed_in_to: Vec<SignedInApp>,
    auth_methods: AuthMethods,
    moved_to: Option<(Location, i64)>,
}

impl Shown {
    /// What `v` shows of the session's row (its person is the check's).
    pub(super) fn of(v: &SessionView<'_>) -> Shown {
        let owned = |t: Option<&str>| t.map(str::to_string);
        let place = |p: &PlaceRef<'_>| Location {
            country_code: owned(p.country_code),
            country: owned(p.country),
            city: owned(p.city),
            network: owned(p.network),
            ..Location::default()
        };
        let d = &v.device;
        Shown {
            pk: v.pk,
            id: v.id.to_string(),
            application: v.application.to_string(),
            device: Device {
                category: d.category.to_string(),
                browser: d.browser.to_string(),
                browser_version: d.browser_version.to_string(),
                os: d.os.to_string(),
                os_version: d.os_version.to_string(),
            },
            ip: v.ip.to_string(),
            place: place(&v.place),
            created_at: v.created_at,
            last_active_at: v.last_active_at,
            expires_at: v.expires_at,
            applications_used: v.applications_used.to_vec(),
            signed_in_to: v.signed_in_to.to_vec(),
            auth_methods: v.auth_methods,
            moved_to: v.moved_to.map(|(p, at)| (place(&p), at)),
        }
    }

    pub(super) fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The session, as `owner`'s.
    pub(super) fn view<'a>(&'a self, owner: &'a Principal) -> SessionView<'a> {
        SessionView {
            pk: self.pk,
            id: &self.id,
            user_id: owner.user_id.0,
            user_email: &owner.email,
            account_id: owner.account_id.0,
            account_name: &owner.account_name,
            application: &self.application,
            device: self.device.as_ref(),
            ip: &self.ip,
            place: PlaceRef::of(&self.place),
            created_at: self.created_at,
            last_active_at: self.last_active_at,
            expires_at: self.expires_at,
            applications_used: std::borrow::Cow::Borrowed(&self.applications_used),
            signed_in_to: std::borrow::Cow::Borrowed(&self.signed_in_to),
            auth_methods: self.auth_methods,
            moved_to: self.moved_to.as_ref().map(|(l, at)| (PlaceRef::of(l), *at)),
        }
    }
}

/// A pooled connection: SQLite's, and what it last saw of the database's version.
pub struct Pooled {
    conn: Connection,
    memory: Arc<Memory>,
    /// Transactions committed on this connection (its commit hook counts them).
    commits: Arc<AtomicU64>,
    /// `data_version` and [`Pooled::commits`] at this connection's last look; `None`
    /// before its first.
    seen: Cell<Option<(i64, u64)>>,
    /// The epoch read before the read transaction open on this connection began, when
    /// [`Pooled::begin_read`] began it.
    began: Cell<Option<u64>>,
}

impl Deref for Pooled {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Pooled {
    /// The row of the token whose hash is `hash`: recalled when it is kept and nothing
    /// has been committed since, else `read` on this connection (and then kept).
    pub(super) fn recall_or_read(
        &self,
        hash: &[u8; 32],
        uses: bool,
        read: impl FnOnce(&Connection) -> Result<Option<TokenMatch>, DbError>,
    ) -> Result<Option<TokenMatch>, DbError> {
        // With the applications it was used with when `uses` asks for them, and without
        // them otherwise, as a read would answer.
        let pick = |k: &Kept| {
            (!uses || k.row.session.applications_used.is_some()).then(|| k.row.recalled(uses))
        };
        let before = match self.recall(|m, epoch| m.recall(hash, epoch, pick))? {
            Ok(row) => return Ok(Some(row)),
            Err(before) => before,
        };
        let found = read(&self.conn)?;
        if let Some(row) = &found {
            self.keep(hash, before, row, None);
        }
        Ok(found)
    }

    /// [`Pooled::recall_or_read`] with the session as shown: recalled, or the epoch a
    /// read must then be [`Pooled::keep`]-ed under.
    pub(super) fn recall_shown(
        &self,
        hash: &[u8; 32],
    ) -> Result<Result<(TokenMatch, Arc<Shown>), u64>, DbError> {
        self.recall(|m, epoch| {
            m.recall(hash, epoch, |k| {
                Some((k.row.recalled(false), k.shown.clone()?))
            })
        })
    }

    /// The active sessions of `user` as a listing at `now` reads them, most recently
    /// active first, when they are kept and nothing has been committed since; else the
    /// epoch a read must be [`Pooled::keep_listed`] under. Those that have expired since
    /// are still among them: the caller leaves them out.
    pub(super) fn recall_listed(
        &self,
        user: i64,
        now: i64,
    ) -> Result<Result<Arc<[Shown]>, u64>, DbError> {
        self.recall(|m, epoch| m.listed(user, epoch, now))
    }

    /// What `find` finds kept under the current epoch, when nothing has been committed
    /// since it was kept; else the epoch a read made instead must be kept under.
    fn recall<R>(
        &self,
        find: impl FnOnce(&Memory, u64) -> Option<R>,
    ) -> Result<Result<R, u64>, DbError> {
        // Read before anything of this check is, even the look (which begins the
        // snapshot of a transaction the check runs in): see the module comment.
        let before = self.memory.epoch();
        let Some(found) = find(&self.memory, before) else {
            return Ok(Err(before));
        };
        // Taken before the look, and good only if the look saw no change. Else a read
        // made after the look is kept under the epoch the look left.
        self.look()?;
        Ok(match self.memory.epoch() {
            now if now == before => Ok(found),
            now => Err(now),
        })
    }

    /// Keeps a row read under `before` (from [`Pooled::recall_shown`]): see
    /// [`Pooled::kept_under`].
    pub(super) fn keep(
        &self,
        hash: &[u8; 32],
        before: u64,
        row: &TokenMatch,
        shown: Option<Shown>,
    ) {
        if let Some(epoch) = self.kept_under(before) {
            self.memory.keep(hash, epoch, row, shown);
        }
    }

    /// Keeps the active sessions of `user` that a listing read at `read_at` (all of
    /// them: none cut off by a limit), under `epoch` (from [`Pooled::kept_under`]).
    pub(super) fn keep_listed(&self, user: i64, epoch: u64, read_at: i64, sessions: Vec<Shown>) {
        self.memory.keep_listed(user, epoch, read_at, sessions);
    }

    /// The epoch to keep what was read under, `before` having been read before the read:
    /// inside a transaction, the epoch read before the transaction began (its snapshot
    /// may have begun before `before` was read); in one that [`Pooled::begin_read`] did
    /// not begin, none (nothing read there is kept).
    pub(super) fn kept_under(&self, before: u64) -> Option<u64> {
        if self.conn.is_autocommit() {
            Some(before)
        } else {
            self.began.get()
        }
    }

    /// Begins a read transaction ([`super::OneRead`]), the epoch read first: what is
    /// read inside it may be kept under that epoch.
    pub(super) fn begin_read(&self) -> Result<(), DbError> {
        let before = self.memory.epoch();
        self.conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        self.began.set(Some(before));
        Ok(())
    }

    /// Ends [`Pooled::begin_read`]'s transaction, on every path out.
    pub(super) fn end_read(&self) {
        self.began.set(None);
        // A read has nothing to keep: ROLLBACK ends it whatever was read.
        let ended = self
            .conn
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute([]));
        if ended.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Forgets every kept row when something was committed since this connection last
    /// looked, by another connection or by this one.
    fn look(&self) -> Result<(), DbError> {
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        let now = (version, self.commits.load(Ordering::SeqCst));
        if self.seen.replace(Some(now)) != Some(now) {
            self.memory.forget_all();
        }
        Ok(())
    }
}

/// The pool's connections: SQLite's manager's, each with a hook counting its commits.
pub(super) struct Manager {
    inner: SqliteConnectionManager,
    memory: Arc<Memory>,
}

impl Manager {
    pub(super) fn new(inner: SqliteConnectionManager, memory: Arc<Memory>) -> Self {
        Manager { inner, memory }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Pooled, rusqlite::Error> {
        let conn = r2d2::ManageConnection::connect(&self.inner)?;
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&commits);
        conn.commit_hook(Some(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            false
        }));
        Ok(Pooled {
            conn,
            memory: Arc::clone(&self.memory),
            commits,
            seen: Cell::new(None),
            began: Cell::new(None),
        })
    }

    fn is_valid(&self, c: &mut Pooled) -> Result<(), rusqlite::Error> {
        self.inner.is_valid(&mut c.conn)
    }

    fn has_broken(&self, c: &mut Pooled) -> bool {
        self.inner.has_broken(&mut c.conn)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use rusqlite::Connection;

    use super::Pooled;
    use crate::db::sessions::{NewSession, TokenMatch, insert, read_by_token_hash};
    use crate::db::users::NewUser;
    use crate::db::{Db, accounts, users};
    use crate::model::Principal;
    use crate::model::{AuthMethods, Device, Location, Role};

    const HASH: [u8; 32] = [7; 32];

    /// A database with one session (token hash [`HASH`]) and two pooled connections
    /// that have each looked once, so that what follows starts from a settled epoch.
    fn setup() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
        let c = db.pool.get().unwrap();
        let account = accounts::insert(&c, "Acme", 0).unwrap();
        users::insert(
            &c,
            &NewUser {
                account_id: account,
                email: "ann@acme.test",
                name: "Ann",
                role: Role::User,
                password_hash: "x",
                now: 0,
                invited: false,
                email_verified: true,
            },
        )
        .unwrap();
        add_session(&c, "s1", &HASH, i64::MAX);
        drop(c);
        (dir, db)
    }

    /// The check's lookup on `c`, counting the reads that went to the row.
    fn find(c: &Pooled, uses: bool, reads: &Cell<u32>) -> TokenMatch {
        c.recall_or_read(&HASH, uses, |c| {
            reads.set(reads.get() + 1);
            read_by_token_hash(c, &HASH, uses)
        })
        .unwrap()
        .unwrap()
    }

    fn end(c: &Connection) {
        c.execute(
            "UPDATE sessions SET ended_at = 1, end_reason = 'terminated'",
            [],
        )
        .unwrap();
    }

    fn reopen(c: &Connection) {
        c.execute("UPDATE sessions SET ended_at = NULL, end_reason = NULL", [])
            .unwrap();
    }

    /// Two pooled connections, each having looked once.
    fn two(
        db: &Db,
    ) -> (
        r2d2::PooledConnection<super::Manager>,
        r2d2::PooledConnection<super::Manager>,
    ) {
        let (a, b) = (db.pool.get().unwrap(), db.pool.get().unwrap());
        a.look().unwrap();
        b.look().unwrap();
        (a, b)
    }

    #[test]
    fn a_row_is_recalled_while_nothing_is_committed() {
        let (_dir, db) = setup();
        let (a, b) = two(&db);
        let reads = Cell::new(0);
        assert!(find(&a, false, &reads).session.ended_at.is_none());
        assert_eq!(reads.get(), 1);
        find(&a, false, &reads);
        find(&b, false, &reads);
        assert_eq!(reads.get(), 1, "recalled on either connection");
        // Kept without the applications it was used with: a check that needs them reads.
        assert!(find(&a, true, &reads).session.applications_used.is_some());
        assert_eq!(reads.get(), 2);
        assert!(find(&b, true, &reads).session.applications_used.is_some());
        assert!(find(&b, false, &reads).session.applications_used.is_none());
        assert_eq!(reads.get(), 2);
    }

    /// Ended by another pooled connection, by the very connection that recalls, and by
    /// a connection outside the pool (as the CLI's, in another process): the next
    /// lookup on any connection reads the ended row.
    #[test]
    fn every_commit_is_seen_by_the_next_lookup() {
        let (dir, db) = setup();
        let (a, b) = two(&db);
        let outside = Connection::open(dir.path().join("t.sqlite3")).unwrap();
        let reads = Cell::new(0);
        let list: [(&str, &Connection); 3] = [
            ("another pooled", &b),
            ("the same", &a),
            ("outside", &outside),
        ];
        for (who, by) in list {
            for c in [&a, &b] {
                // Kept, and recalled.
                find(c, false, &reads);
                find(c, false, &reads);
            }
            end(by);
            assert!(
                find(&a, false, &reads).session.ended_at.is_some(),
                "{who}: a"
            );
            assert!(
                find(&b, false, &reads).session.ended_at.is_some(),
                "{who}: b"
            );
            reopen(by);
            assert!(
                find(&a, false, &reads).session.ended_at.is_none(),
                "{who}: a"
            );
            assert!(
                find(&b, false, &reads).session.ended_at.is_none(),
                "{who}: b"
            );
        }
    }

    /// A commit made while the row is being read, and seen at once by another
    /// connection, is not hidden by the row kept from the read.
    #[test]
    fn a_commit_during_the_read_is_not_hidden() {
        let (_dir, db) = setup();
        let (a, b) = two(&db);
        let read = a
            .recall_or_read(&HASH, false, |c| {
                let row = read_by_token_hash(c, &HASH, false);
                end(&b);
                b.look()?;
                row
            })
            .unwrap()
            .unwrap();
        assert!(read.session.ended_at.is_none());
        let reads = Cell::new(0);
        assert!(find(&b, false, &reads).session.ended_at.is_some());
        assert!(find(&a, false, &reads).session.ended_at.is_some());
    }

    /// Inside a read transaction, whose snapshot may have begun before the check, a row
    /// is kept under the epoch read before the transaction began, not the one read
    /// before the check: it may be older than that one says.
    #[test]
    fn a_row_read_in_a_transaction_is_kept_under_the_epoch_before_it() {
        let (_dir, db) = setup();
        let (a, b) = two(&db);
        let reads = Cell::new(0);
        {
            let _one = crate::db::OneRead::begin(&a).unwrap();
            a.look().unwrap();
            // Committed after the snapshot began; b sees it first and moves the epoch on.
            end(&b);
            b.look().unwrap();
            assert!(
                find(&a, false, &reads).session.ended_at.is_none(),
                "the snapshot"
            );
        }
        assert!(find(&b, false, &reads).session.ended_at.is_some());
        assert!(find(&a, false, &reads).session.ended_at.is_some());
    }

    /// `/api/v1/me`'s lookup: the session as shown, recalled, is the session as read.
    #[test]
    fn the_session_shown_is_recalled_as_it_was_read() {
        let (_dir, db) = setup();
        let (a, b) = two(&db);
        b.execute(
            "UPDATE sessions SET moved_country_code = 'FR', moved_country_name = 'France',
                moved_city = 'Lyon', moved_at = 5, country_code = 'DE', city = 'Berlin',
                applications_used = '[{\"name\":\"Grafana\",\"last_used_at\":3}]'",
            [],
        )
        .unwrap();
        let shown = |c: &Pooled| {
            crate::db::sessions::with_token_shown(c, &HASH, |m, row| {
                let owner = Principal {
                    user_id: m.session.user_id,
                    email: m.user_email,
                    name: m.user_name,
                    role: m.role,
                    account_id: m.session.account_id,
                    account_name: m.account_name,
                    email_verified: m.email_verified,
                };
                format!("{:?}", row.view(&owner).unwrap())
            })
            .unwrap()
            .unwrap()
        };
        let read = shown(&a);
        assert!(read.contains("Lyon") && read.contains("Grafana"), "{read}");
        let epoch = a.memory.epoch();
        let kept = a.memory.recall(&HASH, epoch, |k| k.shown.clone());
        assert!(kept.is_some(), "kept");
        assert_eq!(shown(&a), read);
        assert_eq!(shown(&b), read);
        // And no longer once changed.
        b.execute("UPDATE sessions SET city = 'Hamburg'", [])
            .unwrap();
        assert!(shown(&a).contains("Hamburg"));
    }

    /// Both connections look, so that what they keep next is recalled.
    fn settle(a: &Pooled, b: &Pooled) {
        a.look().unwrap();
        b.look().unwrap();
    }

    /// Ann, the owner of every session in [`setup`]'s database.
    fn ann(c: &Connection) -> Principal {
        c.query_row(
            "SELECT u.id, u.account_id FROM users u WHERE u.email = 'ann@acme.test'",
            [],
            |r| {
                Ok(Principal {
                    user_id: crate::model::UserId(r.get(0)?),
                    email: "ann@acme.test".into(),
                    name: "Ann".into(),
                    role: Role::User,
                    account_id: crate::model::AccountId(r.get(1)?),
                    account_name: "Acme".into(),
                    email_verified: true,
                })
            },
        )
        .unwrap()
    }

    /// A token hash for session `id`: any 32 bytes do here, the id's, padded.
    fn hash_of(id: &str) -> [u8; 32] {
        let mut hash = [0u8; 32];
        hash[..id.len()].copy_from_slice(id.as_bytes());
        hash
    }

    /// A session of Ann's, `id`, with token hash `hash`, expiring at `expires_at`.
    fn add_session(c: &Connection, id: &str, hash: &[u8; 32], expires_at: i64) {
        let owner = ann(c);
        insert(
            c,
            &NewSession {
                public_id: id,
                token_hash: hash,
                user_id: owner.user_id,
                account_id: owner.account_id,
                application: "web",
                device_id: "d",
                user_agent: "ua",
                device: &Device::default(),
                ip: "192.0.2.2",
                location: &Location::default(),
                now: 0,
                expires_at,
                auth_methods: AuthMethods::PASSWORD,
            },
        )
        .unwrap();
    }

    /// My Sessions' listing on `c` at `now`: the public ids listed.
    fn listed(c: &Pooled, now: i64, limit: Option<u32>) -> Vec<String> {
        let mut ids = Vec::new();
        crate::db::sessions::each_active_for_user(c, &ann(c), now, limit, |s| {
            ids.push(s.id.to_string())
        })
        .unwrap();
        ids
    }

    /// Whether Ann's sessions as a listing at `now` reads them are kept, and recalled.
    fn listing_kept(c: &Pooled, now: i64) -> bool {
        let user = ann(c).user_id.0;
        matches!(c.recall_listed(user, now), Ok(Ok(_)))
    }

    /// My Sessions recalls a person's sessions while nothing is committed, on any
    /// connection; a commit from anywhere (another pooled connection, the same one, one
    /// outside the pool) is listed at once.
    #[test]
    fn the_listed_sessions_are_recalled_while_nothing_is_committed() {
        let (dir, db) = setup();
        let (a, b) = two(&db);
        let outside = Connection::open(dir.path().join("t.sqlite3")).unwrap();
        add_session(&b, "s2", &hash_of("s2"), i64::MAX);
        settle(&a, &b);
        assert_eq!(listed(&a, 10, None).len(), 2);
        assert!(listing_kept(&a, 10) && listing_kept(&b, 10), "kept");
        assert_eq!(listed(&b, 10, None).len(), 2);
        let list: [(&str, &Connection); 3] = [
            ("another pooled", &b),
            ("the same", &a),
            ("outside", &outside),
        ];
        for (i, (who, by)) in list.into_iter().enumerate() {
            let before = listed(&a, 10, None).len();
            let id = format!("n{i}");
            add_session(by, &id, &hash_of(&id), i64::MAX);
            assert_eq!(listed(&a, 10, None).len(), before + 1, "{who}: a");
            assert_eq!(listed(&b, 10, None).len(), before + 1, "{who}: b");
            assert!(listing_kept(&a, 10), "{who}: kept again");
            by.execute(
                "UPDATE sessions SET ended_at = 1 WHERE public_id = 's2'",
                [],
            )
            .unwrap();
            assert!(!listed(&b, 10, None).contains(&"s2".into()), "{who}: b");
            assert!(!listed(&a, 10, None).contains(&"s2".into()), "{who}: a");
            by.execute(
                "UPDATE sessions SET ended_at = NULL WHERE public_id = 's2'",
                [],
            )
            .unwrap();
        }
    }

    /// A recalled listing leaves out what has expired since it was read, answers a
    /// limit as a read would, and is not recalled for an earlier time (a clock set
    /// back); a listing cut short by its limit is not kept.
    #[test]
    fn a_recalled_listing_is_the_listing_a_read_would_give() {
        let (_dir, db) = setup();
        let (a, b) = two(&db);
        add_session(&b, "s2", &hash_of("s2"), 100);
        add_session(&b, "s3", &hash_of("s3"), 1_000);
        a.execute_batch(
            "UPDATE sessions SET last_active_at = 2 WHERE public_id = 's2';
             UPDATE sessions SET last_active_at = 1 WHERE public_id = 's3';",
        )
        .unwrap();
        settle(&a, &b);
        assert_eq!(listed(&a, 10, Some(2)), ["s2", "s3"], "cut short");
        assert!(!listing_kept(&a, 10), "not kept when cut short");
        assert_eq!(listed(&a, 10, None), ["s2", "s3", "s1"]);
        assert!(listing_kept(&b, 10));
        assert_eq!(listed(&b, 10, Some(2)), ["s2", "s3"], "a limit");
        assert_eq!(listed(&b, 100, None), ["s3", "s1"], "s2 has expired");
        assert!(listing_kept(&b, 100), "and it was recalled");
        assert!(!listing_kept(&b, 5), "not for an earlier time");
        assert_eq!(listed(&b, 5, None), ["s2", "s3", "s1"]);
    }

    /// A listing read inside a read transaction is kept under the epoch read before the
    /// transaction began: a commit seen after its snapshot began is listed at once.
    #[test]
    fn a_listing_read_in_a_transaction_hides_no_commit() {
        let (_dir, db) = setup();
        let (a, b) = two(&db);
        {
            let _one = crate::db::OneRead::begin(&a).unwrap();
            a.look().unwrap();
            add_session(&b, "s2", &hash_of("s2"), i64::MAX);
            b.look().unwrap();
            assert_eq!(listed(&a, 10, None), ["s1"], "the snapshot");
        }
        assert_eq!(listed(&b, 10, None).len(), 2);
        assert_eq!(listed(&a, 10, None).len(), 2);
    }
}
