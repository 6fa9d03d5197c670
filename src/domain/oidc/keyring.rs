//! The signing keys as the running server holds them (read from `oidc_keys`), and the
//! key of the opaque `sub`: a leaf the state holds, which knows nothing of the state.

use std::sync::{Arc, RwLock};

use compact_jwt::crypto::JwsRs256Signer;
use compact_jwt::{JwsEs256Signer, JwsSigner};
use rusqlite::Connection;

use crate::config::{Config, SigningAlg};
use crate::db::{self, oidc_keys::KeyRow};
use crate::error::{Error, Result};

/// How often, at most, the running server reads the keys again.
pub(super) const RELOAD_EVERY: i64 = 10;

/// Logout tokens (SPEC §21) live at most this long; keys outlive them too.
pub(super) const LOGOUT_TOKEN_TTL: i64 = 120;

#[derive(Clone)]
pub(super) enum Signer {
    Es(JwsEs256Signer),
    Rs(Box<JwsRs256Signer>),
}

#[derive(Clone)]
pub(super) struct Loaded {
    pub(super) row: KeyRow,
    pub(super) signer: Signer,
}

impl Loaded {
    /// The kid its signatures carry.
    pub(super) fn kid(&self) -> &str {
        match &self.signer {
            Signer::Es(s) => s.get_kid(),
            Signer::Rs(s) => s.get_kid(),
        }
    }
}

/// The keys as last read, and when.
pub(super) struct Ring {
    pub(super) keys: Vec<Loaded>,
    pub(super) read_at: i64,
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

pub(super) fn load(rows: Vec<KeyRow>, now: i64) -> Ring {
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

pub(super) fn generate(alg: SigningAlg, now: i64, active_from: i64) -> Result<KeyRow> {
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
pub(super) fn algs_needed(config: &Config) -> Vec<SigningAlg> {
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

    pub(super) fn ring(&self) -> Arc<Ring> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(super) fn replace(&self, ring: Ring) {
        match self.ring.write() {
            Ok(mut r) => *r = Arc::new(ring),
            Err(p) => *p.into_inner() = Arc::new(ring),
        }
    }

    /// The opaque, stable `sub` of a person: an HMAC of their id, never their email.
    pub fn subject(&self, user: crate::model::UserId) -> String {
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
