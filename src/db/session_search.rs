//! The admin search over active sessions (SPEC §6, §7): filters, keyset paging, and an
//! email search that stays fast over a million sessions.

use std::rc::Rc;

use rusqlite::{Connection, ToSql};

use super::DbError;
use super::sessions::{COLUMNS, Cols, FROM, JOINED, collect, from_row};
use crate::model::{AccountId, EndReason, Session, UserId};

/// Filters of the admin listing; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct AdminFilter {
    pub account: Option<AccountId>,
    pub user: Option<UserId>,
    pub application: Option<String>,
    /// Case-insensitive substring of the user's email.
    pub email_contains: Option<String>,
    /// Leave out the sessions of owners (they rank above the caller).
    pub hide_owners: bool,
}

/// Keyset position: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub last_active_at: i64,
    pub pk: i64,
}

/// The WHERE clause and parameters for active sessions matching `f`. Only the filters
/// given appear in the SQL, so SQLite can pick the index that fits.
fn admin_where(f: &AdminFilter, now: i64) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = String::from("s.ended_at IS NULL AND s.expires_at > ?");
    let mut args = vec![Value::Integer(now)];
    if let Some(a) = f.account {
        sql.push_str(" AND s.account_id = ?");
        args.push(Value::Integer(a.0));
    }
    if let Some(u) = f.user {
        sql.push_str(" AND s.user_id = ?");
        args.push(Value::Integer(u.0));
    }
    if let Some(app) = &f.application {
        // The application signed in to, or one the session has been used with.
        sql.push_str(
            " AND (s.application = ? OR EXISTS (SELECT 1 FROM json_each(s.applications_used)
                   WHERE json_extract(value, '$.name') = ?))",
        );
        args.push(Value::Text(app.clone()));
        args.push(Value::Text(app.clone()));
    }
    if f.hide_owners {
        // A handful of ids, from the partial index of owners.
        sql.push_str(" AND s.user_id NOT IN (SELECT id FROM users WHERE role = 'owner')");
    }
    if let Some(q) = &f.email_contains {
        sql.push_str(
            " AND s.user_id IN (SELECT id FROM users WHERE email_lower LIKE ? ESCAPE '\\')",
        );
        args.push(Value::Text(format!("%{}%", escape_like(&q.to_lowercase()))));
    }
    (sql, args)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// An email search matching at most this many users goes straight to those users' own
/// sessions.
const FEW_USERS: usize = 200;
/// How many of the most recently active sessions in scope a broader email search looks
/// at first: one matching more than one session in 40 (an account's domain, a common
/// name) fills its page from these.
const RECENT_WINDOW: i64 = 2_000;

/// One page of active sessions matching `f`, newest activity first, after `cursor`.
///
/// An email search is answered so that neither a search matching a handful of people
/// nor one matching nearly everyone reads a million rows:
/// 1. the trigram index of emails finds the matching users, up to [`FEW_USERS`] + 1;
/// 2. for at most [`FEW_USERS`] users, the page is the newest of their sessions, from
///    the per-user index (index entries only);
/// 3. for more, the page is looked for among the [`RECENT_WINDOW`] most recent sessions
///    in scope (index entries only: the listing index carries each session's email),
///    and when that window holds less than a page, comes from the per-user index of
///    every matching user.
pub fn list_admin(
    c: &Connection,
    f: &AdminFilter,
    cursor: Option<Cursor>,
    limit: i64,
    now: i64,
) -> Result<Vec<Session>, DbError> {
    use rusqlite::types::Value;
    let Some(q) = &f.email_contains else {
        let (cond, args) = page_where(admin_where(f, now), cursor);
        let sql = format!(
            "SELECT {COLUMNS}, {JOINED} {FROM} WHERE {cond} ORDER BY s.last_active_at DESC, s.id DESC LIMIT {limit}"
        );
        return query_sessions(c, &sql, args);
    };
    let unfiltered = AdminFilter {
        email_contains: None,
        ..f.clone()
    };
    let (cond, args) = page_where(admin_where(&unfiltered, now), cursor);
    let q = q.to_lowercase();
    let exact = Value::Text(format!("%{}%", escape_like(&q)));
    // The trigram index proposes users whose email matches `q` with `_` and `%` read as
    // wildcards (a superset); the LIKE with ESCAPE keeps exactly the substring matches.
    let candidates = Value::Text(format!("%{q}%"));
    let matching_users = "SELECT u.id FROM users u
         WHERE u.id IN (SELECT rowid FROM users_email_trigram WHERE email_lower LIKE ?)
           AND u.email_lower LIKE ? ESCAPE '\\'";
    let by_user = |users: &str, extra: Vec<Box<dyn ToSql>>| {
        let sql = format!(
            "SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.id IN (
               SELECT s.id FROM sessions s INDEXED BY sessions_user_recent
               WHERE {cond} AND s.user_id IN ({users})
               ORDER BY s.last_active_at DESC, s.id DESC LIMIT {limit})
             ORDER BY s.last_active_at DESC, s.id DESC"
        );
        let mut all: Vec<Box<dyn ToSql>> = args.iter().cloned().map(boxed).collect();
        all.extend(extra);
        query_sessions(c, &sql, all)
    };

    // Driven by the trigram index (CROSS JOIN keeps it the outer loop), so that the
    // LIMIT stops a broad search after FEW_USERS + 1 users instead of after all of them.
    let few: Vec<Value> = c
        .prepare_cached(&format!(
            "SELECT u.id FROM users_email_trigram t CROSS JOIN users u ON u.id = t.rowid
             WHERE t.email_lower LIKE ? AND u.email_lower LIKE ? ESCAPE '\\' LIMIT {}",
            FEW_USERS + 1
        ))?
        .query_map([&candidates, &exact], |r| r.get::<_, i64>(0))?
        .map(|id| id.map(Value::Integer))
        .collect::<Result<_, _>>()?;
    if few.is_empty() {
        return Ok(Vec::new());
    }
    if few.len() <= FEW_USERS {
        return by_user("SELECT value FROM rarray(?)", vec![Box::new(Rc::new(few))]);
    }

    let sql = format!(
        "SELECT {COLUMNS}, {JOINED} {FROM} WHERE s.id IN (
           SELECT r.id FROM (
             SELECT s.id, s.last_active_at, s.email_lower FROM sessions s INDEXED BY sessions_recent
             WHERE {cond} ORDER BY s.last_active_at DESC, s.id DESC LIMIT {RECENT_WINDOW}) r
           WHERE r.email_lower LIKE ? ESCAPE '\\'
           ORDER BY r.last_active_at DESC, r.id DESC LIMIT {limit})
         ORDER BY s.last_active_at DESC, s.id DESC"
    );
    let mut recent_args = args.clone();
    recent_args.push(exact.clone());
    let page = query_sessions(c, &sql, recent_args)?;
    if page.len() as i64 >= limit {
        return Ok(page);
    }
    by_user(matching_users, vec![boxed(candidates), boxed(exact)])
}

/// Adds the keyset condition: rows strictly after `cursor` in (last_active_at, id)
/// descending order. Written as a row value so SQLite can start the index walk there.
fn page_where(
    (mut cond, mut args): (String, Vec<rusqlite::types::Value>),
    cursor: Option<Cursor>,
) -> (String, Vec<rusqlite::types::Value>) {
    if let Some(cur) = cursor {
        cond.push_str(" AND (s.last_active_at, s.id) < (?, ?)");
        args.extend([cur.last_active_at, cur.pk].map(rusqlite::types::Value::Integer));
    }
    (cond, args)
}

fn boxed(v: rusqlite::types::Value) -> Box<dyn ToSql> {
    Box::new(v)
}

fn query_sessions(
    c: &Connection,
    sql: &str,
    args: Vec<impl ToSql>,
) -> Result<Vec<Session>, DbError> {
    let mut stmt = c.prepare_cached(sql)?;
    let cols = Cols::of(&stmt)?;
    collect(stmt.query_map(rusqlite::params_from_iter(args), |r| from_row(r, &cols))?)
}

pub fn count_admin(
    c: &Connection,
    f: &AdminFilter,
    now: i64,
    except: i64,
) -> Result<(i64, i64), DbError> {
    let (cond, args) = admin_where(f, now);
    let sql = format!("SELECT count(*), coalesce(sum(s.id != ?), 0) FROM sessions s WHERE {cond}");
    let mut all = vec![rusqlite::types::Value::Integer(except)];
    all.extend(args);
    Ok(c.prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(all), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
}

/// Ends every active session matching `f` except `keep`.
pub fn end_admin(
    c: &Connection,
    f: &AdminFilter,
    keep: i64,
    now: i64,
    by: UserId,
    reason: EndReason,
    note: Option<&str>,
) -> Result<Vec<super::sessions::Ended>, DbError> {
    let (cond, mut args) = admin_where(f, now);
    let sql = format!(
        "UPDATE sessions SET ended_at = ?, ended_by = ?, end_reason = ?, end_note = ?
         WHERE id IN (SELECT s.id FROM sessions s WHERE {cond} AND s.id != ?)
         {}",
        super::sessions::RETURNING_ENDED
    );
    use rusqlite::types::Value;
    let mut all = vec![
        Value::Integer(now),
        Value::Integer(by.0),
        Value::Text(reason.as_str().into()),
        note.map_or(Value::Null, |n| Value::Text(n.into())),
    ];
    all.append(&mut args);
    all.push(Value::Integer(keep));
    let mut stmt = c.prepare_cached(&sql)?;
    super::sessions::ended_rows(&mut stmt, rusqlite::params_from_iter(all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sessions::{NewSession, insert};
    use crate::db::users::NewUser;
    use crate::db::{accounts, migrate, users};
    use crate::model::{AccountId, Device, Location, Role, UserId};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::init_connection(&mut c).unwrap();
        migrate::apply(&mut c).unwrap();
        c
    }

    fn user(c: &Connection, account: AccountId, email: &str) -> UserId {
        users::insert(
            c,
            &NewUser {
                account_id: account,
                email,
                name: "n",
                role: Role::User,
                password_hash: "x",
                now: 0,
                invited: false,
                email_verified: false,
            },
        )
        .unwrap()
    }

    /// Sessions of `user`, last active at `at[i]` each.
    fn sessions(c: &Connection, user: UserId, account: AccountId, at: &[i64]) -> Vec<i64> {
        let device = Device::default();
        let location = Location::default();
        at.iter()
            .map(|&t| {
                let id = format!("{}-{t}", user.0);
                insert(
                    c,
                    &NewSession {
                        public_id: &id,
                        token_hash: id.as_bytes(),
                        user_id: user,
                        account_id: account,
                        application: "web",
                        device_id: "d",
                        user_agent: "ua",
                        device: &device,
                        ip: "192.0.2.1",
                        location: &location,
                        now: t,
                        expires_at: 1_000_000,
                        auth_methods: crate::model::AuthMethods::PASSWORD,
                    },
                )
                .unwrap()
                .pk
            })
            .collect()
    }

    fn search(c: &Connection, q: &str, cursor: Option<Cursor>) -> Vec<i64> {
        let f = AdminFilter {
            email_contains: Some(q.into()),
            ..Default::default()
        };
        let page = list_admin(c, &f, cursor, 50, 10).unwrap();
        page.iter().map(|s| s.pk).collect()
    }

    #[test]
    fn email_search_gives_the_newest_matches_by_every_path() {
        let c = db();
        let acme = accounts::insert(&c, "Acme", 0).unwrap();
        let one_each = |prefix: &str, n: i64, first_at: i64| -> Vec<i64> {
            (0..n)
                .map(|i| {
                    let u = user(&c, acme, &format!("{prefix}{i}"));
                    sessions(&c, u, acme, &[first_at + i])[0]
                })
                .collect()
        };
        // Newest: 250 users at Big (more than FEW_USERS, a page in the recent window);
        // then Bob's 3000 sessions fill the rest of the window; older still, 210 users at
        // Far (too many for the few-users path, none in the window) and Cy.
        let big = one_each("Member", 250, 10_000);
        let big: Vec<i64> = big.into_iter().rev().collect();
        let far = one_each("z", 210, 300);
        let far: Vec<i64> = far.into_iter().rev().collect();
        // Emails: "Member0" … are not emails, but any text is searchable.
        let bob = user(&c, acme, "bob@other.test");
        sessions(&c, bob, acme, &(1_000..4_000).collect::<Vec<_>>());
        let cy = user(&c, acme, "cy_100%@acme.test");
        let cy_pks = sessions(&c, cy, acme, &[100, 300, 200]);

        // Window path, then its next page.
        let page1 = search(&c, "MEMBER", None);
        assert_eq!(page1, big[..50]);
        let cursor = Cursor {
            last_active_at: 10_000 + 200,
            pk: page1[49],
        };
        assert_eq!(search(&c, "member", Some(cursor)), big[50..100]);
        // Many users, none in the window: every matching user's own sessions.
        assert_eq!(search(&c, "z", None), far[..50]);
        // Few users; `_` and `%` are literal characters, not wildcards.
        assert_eq!(
            search(&c, "_100%", None),
            vec![cy_pks[1], cy_pks[2], cy_pks[0]]
        );
        assert!(search(&c, "y_1_0", None).is_empty());
        assert!(search(&c, "nobody", None).is_empty());

        // The email copied into sessions follows a change of the user's email.
        c.execute(
            "UPDATE users SET email = 'yo@x.test', email_lower = 'yo@x.test' WHERE id = ?1",
            [cy.0],
        )
        .unwrap();
        assert!(search(&c, "_100%", None).is_empty());
        assert_eq!(search(&c, "yo@x", None).len(), 3);
        assert_eq!(
            c.query_row(
                "SELECT count(*) FROM sessions WHERE email_lower = 'yo@x.test'",
                [],
                |r| r.get::<_, i64>(0)
            )
            .unwrap(),
            3
        );
    }
}
