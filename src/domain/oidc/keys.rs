//! The keys id tokens are signed with (SPEC §20), signed and exported by `compact_jwt`.
//!
//! Kept in the database (`oidc_keys`), created at first start: an ES256 key always, an
//! RS256 key when a client asks for RS256 (generating one takes a while, so an install
//! without such a client never pays for it). `doorman oidc rotate-keys` publishes a new
//! key at once, signs with it after `oidc.key_publish_delay`, and keeps the old one in
//! the JWKS for the tokens' lifetimes after that. The running server reads the keys
//! again every [`RELOAD_EVERY`] seconds, so a rotation made by the command line reaches
//! it without a restart.

use compact_jwt::jws::JwsBuilder;
use compact_jwt::traits::JwsVerifiable;
use compact_jwt::{Jwk, JwsCompact, JwsSigner, JwsSignerToVerifier, JwsVerifier};

pub use super::keyring::Keys;
use super::keyring::{LOGOUT_TOKEN_TTL, RELOAD_EVERY, Signer, algs_needed, generate, load};
use crate::config::SigningAlg;
use crate::db::{self, DbError, oidc_keys::KeyRow};
use crate::error::{Error, Result};
use crate::state::AppState;

/// Reads the keys again when the last read is older than [`RELOAD_EVERY`].
pub async fn refresh(state: &AppState) -> Result<()> {
    let now = crate::clock::now();
    if now - state.oidc_keys.ring().read_at < RELOAD_EVERY {
        return Ok(());
    }
    let rows = state.db.run(|c| db::oidc_keys::list(c)).await?;
    state.oidc_keys.replace(load(rows, now));
    Ok(())
}

/// How long a retired key stays published: the longest a token it signed lives.
fn keep_after_retired(state_ttl: i64) -> i64 {
    state_ttl.max(LOGOUT_TOKEN_TTL)
}

/// The public keys to publish at `/oidc/jwks`: every key that signs, will sign, or
/// signed a token that may still be alive.
pub fn jwks(state: &AppState) -> Vec<Jwk> {
    let now = crate::clock::now();
    let keep = keep_after_retired(state.config.oidc.access_token_ttl.as_secs() as i64);
    state
        .oidc_keys
        .ring()
        .keys
        .iter()
        .filter(|k| k.row.retired_at.is_none_or(|t| t + keep > now))
        .filter_map(|k| match &k.signer {
            Signer::Es(s) => s.public_key_as_jwk().ok(),
            Signer::Rs(s) => s.public_key_as_jwk().ok(),
        })
        .collect()
}

/// Signs `claims` as a JWS of type `typ` with the key of `alg` that signs now: the
/// newest one whose time has come and that is not retired.
pub fn sign(
    state: &AppState,
    alg: SigningAlg,
    typ: &str,
    claims: &serde_json::Value,
) -> Result<String> {
    let now = crate::clock::now();
    let ring = state.oidc_keys.ring();
    let key = ring
        .keys
        .iter()
        .filter(|k| k.row.alg == alg.as_str() && k.row.active_from <= now)
        .filter(|k| k.row.retired_at.is_none_or(|t| t > now))
        .max_by_key(|k| k.row.active_from)
        .ok_or_else(|| Error::Internal(format!("no {} key signs now", alg.as_str())))?;
    let jws = JwsBuilder::into_json(claims)
        .map_err(|e| Error::Internal(e.to_string()))?
        .set_typ(Some(typ))
        .build();
    let failed = |e: compact_jwt::JwtError| Error::Internal(format!("signing: {e:?}"));
    let signed = match &key.signer {
        Signer::Es(s) => s.sign(&jws).map_err(failed)?,
        Signer::Rs(s) => s.sign(&jws).map_err(failed)?,
    };
    Ok(signed.to_string())
}

/// The claims of a JWS this server signed with a key it still publishes (the
/// `id_token_hint` of an end-session request); its expiry is not checked.
pub fn verify(state: &AppState, token: &str) -> Option<serde_json::Value> {
    let compact: JwsCompact = token.parse().ok()?;
    let kid = compact.kid()?.to_string();
    let ring = state.oidc_keys.ring();
    let key = ring.keys.iter().find(|k| k.kid() == kid)?;
    let jws = match &key.signer {
        Signer::Es(s) => s.get_verifier().ok()?.verify(&compact).ok()?,
        Signer::Rs(s) => s.get_verifier().ok()?.verify(&compact).ok()?,
    };
    jws.from_json().ok()
}

/// `doorman oidc rotate-keys`: a new key for each algorithm in use, published now and
/// signing after `oidc.key_publish_delay`, when the keys it replaces stop signing. Keys
/// retired long enough ago are forgotten. Returns the new keys' (kid, alg, from).
pub async fn rotate(state: &AppState) -> Result<Vec<(String, String, i64)>> {
    let now = crate::clock::now();
    let from = now + state.config.oidc.key_publish_delay.as_secs() as i64;
    let keep = keep_after_retired(state.config.oidc.access_token_ttl.as_secs() as i64);
    let mut algs = algs_needed(&state.config);
    for k in &state.oidc_keys.ring().keys {
        if let Some(alg) = SigningAlg::parse(&k.row.alg)
            && !algs.contains(&alg)
        {
            algs.push(alg);
        }
    }
    let mut fresh = Vec::new();
    for alg in algs {
        fresh.push(
            tokio::task::spawn_blocking(move || generate(alg, now, from))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??,
        );
    }
    let made: Vec<(String, String, i64)> = fresh
        .iter()
        .map(|k| (k.kid.clone(), k.alg.clone(), k.active_from))
        .collect();
    let rows = state
        .db
        .run(move |c| -> std::result::Result<Vec<KeyRow>, DbError> {
            let tx = c.transaction()?;
            db::oidc_keys::delete_retired_before(&tx, now - keep)?;
            for k in &fresh {
                db::oidc_keys::retire(&tx, &k.alg, from)?;
                db::oidc_keys::insert(&tx, k)?;
            }
            tx.commit()?;
            db::oidc_keys::list(c)
        })
        .await?;
    state.oidc_keys.replace(load(rows, now));
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_sign_and_export_a_jwk() {
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let row = generate(alg, 0, 0).unwrap();
            let ring = load(vec![row.clone()], 0);
            assert_eq!(ring.keys.len(), 1, "{}", row.alg);
            let jwk = match &ring.keys[0].signer {
                Signer::Es(s) => s.public_key_as_jwk().unwrap(),
                Signer::Rs(s) => s.public_key_as_jwk().unwrap(),
            };
            let text = serde_json::to_string(&jwk).unwrap();
            assert!(text.contains(&row.kid), "{text}");
        }
    }
}
