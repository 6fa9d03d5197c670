//! The keys id tokens are signed with (SPEC §20), signed and exported by `compact_jwt`.
//!
//! Kept in the database (`oidc_keys`), created at first start: an ES256 key always, an
//! RS256 key when a client asks for RS256 (generating one takes a while, so an install
//! without such a client never pays for it). `doorman oidc rotate-keys` publishes a new
//! key at once, signs with it after `oidc.key_publish_delay`, and keeps the old one in
//! the JWKS for the tokens' lifetimes after that. The running server reads the keys
//! again every [`RELOAD_EVERY`] seconds, so a rotation made by the command line reaches
//! it without a restart.

use std::sync::{Arc, RwLock};

use compact_jwt::crypto::JwsRs256Signer;
use compact_jwt::jws::JwsBuilder;
use compact_jwt::traits::JwsVerifiable;
use compact_jwt::{Jwk, JwsCompact, JwsEs256Signer, JwsSigner, JwsSignerToVerifier, JwsVerifier};
use rusqlite::Connection;

use crate::config::{Config, SigningAlg};
use crate::db::{self, DbError, oidc_keys::KeyRow};
use crate::error::{Error, Result};
use crate::state::AppState;

/// How often, at most, the running server reads the keys again.
pub const RELOAD_EVERY: i64 = 10;

/// Logout tokens (SPEC §21) live at most this long; keys outlive them too.
const LOGOUT_TOKEN_TTL: i64 = 120;

#[derive(Clone)]
enum Signer {
    Es(JwsEs256Signer),
    Rs(Box<JwsRs256Signer>),
}

#[derive(Clone)]
struct Loaded {
    row: KeyRow,
    signer: Signer,
}

impl Loaded {
    /// The kid its signatures carry.
    fn kid(&self) -> &str {
        match &self.signer {
            Signer::Es(s) => s.get_kid(),
            Signer::Rs(s) => s.get_kid(),
        }
    }
}

/// The keys as last read, and when.
struct Ring {
    keys: Vec<Loaded>,
    read_at: i64,
}

/// The signing keys of a running server and the key of the `sub` values.
pub struct Keys {
    ring: RwLock<Arc<Ring>>,
    /// HMAC key of the opaque per-user `sub`.
    subject_key: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

fn load(rows: Vec<KeyRow>, now: i64) -> Ring {
    let keys = rows
        .into_iter()
        .filter_map(|row| {
            let signer = match row.alg.as_str() {
                "ES256" => JwsEs256Signer::from_es256_der(&row.private_der)
                    .ok()
                    .map(Signer::Es),
                "RS256" => JwsRs256Signer::from_rs256_der(&row.private_der)
                    .ok()
                    .map(|s| Signer::Rs(Box::new(s))),
                _ => None,
            };
            if signer.is_none() {
                tracing::error!(kid = %row.kid, "a stored signing key cannot be read");
            }
            Some(Loaded {
                signer: signer?,
                row,
            })
        })
        .collect();
    Ring { keys, read_at: now }
}

fn generate(alg: SigningAlg, now: i64, active_from: i64) -> Result<KeyRow> {
    let failed = |e: compact_jwt::JwtError| Error::Internal(format!("key generation: {e:?}"));
    // The kid is the one the key has when read back from its DER (which is how it
    // signs): for RSA keys, a freshly generated signer names itself otherwise.
    let (kid, der) = match alg {
        SigningAlg::ES256 => {
            let der = JwsEs256Signer::generate_es256()
                .and_then(|s| s.private_key_to_der())
                .map_err(failed)?;
            let s = JwsEs256Signer::from_es256_der(&der).map_err(failed)?;
            (s.get_kid().to_string(), der)
        }
        SigningAlg::RS256 => {
            let der = JwsRs256Signer::generate_legacy_rs256()
                .and_then(|s| s.private_key_to_der())
                .map_err(failed)?;
            let s = JwsRs256Signer::from_rs256_der(&der).map_err(failed)?;
            (s.get_kid().to_string(), der)
        }
    };
    Ok(KeyRow {
        kid,
        alg: alg.as_str().to_string(),
        private_der: der,
        created_at: now,
        active_from,
        retired_at: None,
    })
}

/// The algorithms this configuration signs with.
fn algs_needed(config: &Config) -> Vec<SigningAlg> {
    let mut algs = vec![SigningAlg::ES256];
    let rs = config
        .applications
        .iter()
        .filter_map(|a| a.oidc.as_ref())
        .any(|c| c.id_token_signed_response_alg == SigningAlg::RS256);
    if rs {
        algs.push(SigningAlg::RS256);
    }
    algs
}

impl Keys {
    /// At start: creates the keys this configuration needs and has not got, then reads
    /// them all.
    pub fn open(c: &Connection, config: &Config) -> Result<Keys> {
        let now = crate::clock::now();
        let mut rows = db::oidc_keys::list(c)?;
        for alg in algs_needed(config) {
            if !rows.iter().any(|r| r.alg == alg.as_str()) {
                let row = generate(alg, now, now)?;
                db::oidc_keys::insert(c, &row)?;
                tracing::info!(kid = %row.kid, alg = alg.as_str(), "created a signing key");
                rows.push(row);
            }
        }
        let subject_key = db::alerts::secret(c, "oidc_subject_key", || {
            crate::domain::tokens::new_token().into_bytes()
        })?;
        Ok(Keys {
            ring: RwLock::new(Arc::new(load(rows, now))),
            subject_key,
        })
    }

    fn ring(&self) -> Arc<Ring> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn replace(&self, ring: Ring) {
        match self.ring.write() {
            Ok(mut r) => *r = Arc::new(ring),
            Err(p) => *p.into_inner() = Arc::new(ring),
        }
    }

    /// The opaque, stable `sub` of a person: an HMAC of their id, never their email.
    pub fn subject(&self, user: crate::domain::model::UserId) -> String {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&self.subject_key) else {
            return String::new();
        };
        mac.update(b"sub:");
        mac.update(user.0.to_string().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

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
