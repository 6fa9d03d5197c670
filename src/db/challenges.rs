//! `login_challenges`: sign-ins waiting for their second step or enrolment, and WebAuthn
//! ceremonies in progress. Only the SHA-256 of a challenge's token is stored.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::DbError;
use crate::model::UserId;

#[derive(Clone)]
pub struct ChallengeRow {
    pub id: i64,
    pub purpose: String,
    pub user_id: Option<UserId>,
    pub credentials_version: i64,
    pub application: String,
    pub device_id: String,
    pub target: String,
    pub factor_id: Option<i64>,
    /// A WebAuthn ceremony's state: secret-ish, never logged.
    pub state: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<ChallengeRow> {
    Ok(ChallengeRow {
        id: r.get("id")?,
        purpose: r.get("purpose")?,
        user_id: r.get("user_id")?,
        credentials_version: r.get("credentials_version")?,
        application: r.get("application")?,
        device_id: r.get("device_id")?,
        target: r.get("target")?,
        factor_id: r.get("factor_id")?,
        state: r.get("state")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
    })
}

pub struct NewChallenge<'a> {
    pub token_hash: &'a [u8],
    pub purpose: &'a str,
    pub user_id: Option<UserId>,
    pub credentials_version: i64,
    pub application: &'a str,
    pub device_id: &'a str,
    pub target: &'a str,
    pub state: Option<&'a str>,
    /// Whose budget of pending challenges it counts against (`ip:…`, `user:…`).
    pub limit_key: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert(c: &Connection, n: &NewChallenge<'_>) -> Result<i64, DbError> {
    c.prepare_cached(
        "INSERT INTO login_challenges (token_hash, purpose, user_id, credentials_version,
            application, device_id, target, state, limit_key, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        n.token_hash,
        n.purpose,
        n.user_id,
        n.credentials_version,
        n.application,
        n.device_id,
        n.target,
        n.state,
        n.limit_key,
        n.now,
        n.expires_at
    ])?;
    Ok(c.last_insert_rowid())
}

/// The live challenge of this token and purpose.
pub fn find(
    c: &Connection,
    hash: &[u8],
    purpose: &str,
    now: i64,
) -> Result<Option<ChallengeRow>, DbError> {
    Ok(c.prepare_cached(
        "SELECT * FROM login_challenges
             WHERE token_hash = ?1 AND purpose = ?2 AND expires_at > ?3",
    )?
    .query_row(params![hash, purpose, now], from_row)
    .optional()?)
}

pub fn set_factor(c: &Connection, id: i64, factor: i64) -> Result<(), DbError> {
    c.prepare_cached("UPDATE login_challenges SET factor_id = ?2 WHERE id = ?1")?
        .execute(params![id, factor])?;
    Ok(())
}

pub fn set_state(c: &Connection, id: i64, state: &str) -> Result<(), DbError> {
    c.prepare_cached("UPDATE login_challenges SET state = ?2 WHERE id = ?1")?
        .execute(params![id, state])?;
    Ok(())
}

/// Deletes a challenge; true when this call did (so only one request completes it).
pub fn delete(c: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(
        c.prepare_cached("DELETE FROM login_challenges WHERE id = ?1")?
            .execute([id])?
            == 1,
    )
}

/// Keeps the newest `per_key` challenges of `purpose` counted against `key`, and the
/// newest `total` of `purpose` in all, deleting the older ones; returns how many went.
pub fn delete_oldest_beyond(
    c: &Connection,
    purpose: &str,
    key: &str,
    per_key: i64,
    total: i64,
) -> Result<usize, DbError> {
    let of_key = c
        .prepare_cached(
            "DELETE FROM login_challenges WHERE id IN (
                 SELECT id FROM login_challenges WHERE purpose = ?1 AND limit_key = ?2
                 ORDER BY id DESC LIMIT -1 OFFSET ?3)",
        )?
        .execute(params![purpose, key, per_key])?;
    let of_all = c
        .prepare_cached(
            "DELETE FROM login_challenges WHERE id IN (
                 SELECT id FROM login_challenges WHERE purpose = ?1
                 ORDER BY id DESC LIMIT -1 OFFSET ?2)",
        )?
        .execute(params![purpose, total])?;
    Ok(of_key + of_all)
}

pub fn delete_expired(c: &Connection, now: i64) -> Result<usize, DbError> {
    Ok(c.execute("DELETE FROM login_challenges WHERE expires_at <= ?1", [now])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrate::apply(&mut c).unwrap();
        c
    }

    fn add(c: &Connection, n: u8, purpose: &str, key: &str) -> i64 {
        insert(
            c,
            &NewChallenge {
                token_hash: &[n],
                purpose,
                user_id: None,
                credentials_version: 0,
                application: "",
                device_id: "",
                target: "",
                state: None,
                limit_key: key,
                now: 0,
                expires_at: 300,
            },
        )
        .unwrap()
    }

    fn ids(c: &Connection, purpose: &str) -> Vec<i64> {
        let mut stmt = c
            .prepare("SELECT id FROM login_challenges WHERE purpose = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([purpose], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn the_oldest_go_first_per_key_and_in_total() {
        let c = db();
        let mut n = 0u8;
        let mut next = |purpose: &str, key: &str| {
            n += 1;
            let id = add(&c, n, purpose, key);
            delete_oldest_beyond(&c, purpose, key, 3, 5).unwrap();
            id
        };
        let a: Vec<i64> = (0..4).map(|_| next("passkey_login", "ip:a")).collect();
        assert_eq!(ids(&c, "passkey_login"), a[1..], "3 per key, newest kept");
        let b: Vec<i64> = (0..3).map(|_| next("passkey_login", "ip:b")).collect();
        // 6 would be pending; the total keeps the newest 5.
        let mut kept = a[2..].to_vec();
        kept.extend(&b);
        assert_eq!(ids(&c, "passkey_login"), kept, "5 in total, oldest dropped");
        // Other kinds of challenge have their own budgets.
        let s = next("second_factor", "ip:a");
        assert_eq!(ids(&c, "second_factor"), vec![s]);
        assert_eq!(ids(&c, "passkey_login"), kept);
    }
}
