//! `oidc_keys`: the keys id tokens are signed with (SPEC §20).

use rusqlite::{Connection, params};

use super::DbError;

#[derive(Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub private_der: Vec<u8>,
    pub created_at: i64,
    pub active_from: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("active_from", &self.active_from)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// Every stored key, oldest first.
pub fn list(c: &Connection) -> Result<Vec<KeyRow>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT kid, alg, private_der, created_at, active_from, retired_at FROM oidc_keys
         ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(KeyRow {
            kid: r.get("kid")?,
            alg: r.get("alg")?,
            private_der: r.get("private_der")?,
            created_at: r.get("created_at")?,
            active_from: r.get("active_from")?,
            retired_at: r.get("retired_at")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert(c: &Connection, k: &KeyRow) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO oidc_keys (kid, alg, private_der, created_at, active_from, retired_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        k.kid,
        k.alg,
        k.private_der,
        k.created_at,
        k.active_from,
        k.retired_at
    ])?;
    Ok(())
}

/// The keys of `alg` not yet retired stop signing at `at`.
pub fn retire(c: &Connection, alg: &str, at: i64) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "UPDATE oidc_keys SET retired_at = ?2 WHERE alg = ?1 AND retired_at IS NULL",
    )?
    .execute(params![alg, at])?)
}

/// Forgets keys retired before `cutoff` (no token they signed is still alive).
pub fn delete_retired_before(c: &Connection, cutoff: i64) -> Result<usize, DbError> {
    Ok(
        c.prepare_cached("DELETE FROM oidc_keys WHERE retired_at < ?1")?
            .execute([cutoff])?,
    )
}
