//! argon2id password hashing, off the async runtime.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::Argon2Config;
use crate::error::{Error, Result};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest: argon2 would take anything, but a megabyte "password" is an attack.
pub const MAX_PASSWORD: usize = 1024;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// A hash of a random password, checked when the email is unknown so that the answer
    /// takes as long as for a real user.
    dummy: String,
    /// argon2's working memory (19 MiB by default), kept for the next sign-in. Allocated
    /// afresh each time, glibc keeps such blocks in a per-thread arena after they are
    /// freed: a few dozen sign-ins left the server hundreds of MB larger.
    blocks: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// Working memories kept: one per core is as many as hash at once.
const KEPT_BLOCKS: usize = 2;

impl Hasher {
    pub fn new(cfg: &Argon2Config) -> Result<Self> {
        let params = Params::new(cfg.m, cfg.t, cfg.p, None)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let mut hasher = Hasher {
            params,
            dummy: String::new(),
            blocks: Arc::new(Mutex::new(Vec::new())),
        };
        hasher.dummy = hasher.hash_now(&super::tokens::new_token())?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn check_policy(password: &str) -> Result<()> {
        let n = password.chars().count();
        if n < MIN_PASSWORD {
            return Err(Error::invalid(
                "weak_password",
                format!("The password must have at least {MIN_PASSWORD} characters."),
            ));
        }
        if password.len() > MAX_PASSWORD {
            return Err(Error::invalid(
                "password_too_long",
                format!("The password must be at most {MAX_PASSWORD} bytes."),
            ));
        }
        Ok(())
    }

    /// Hashes on the calling thread (CLI, or inside spawn_blocking).
    pub fn hash_now(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| Error::Internal(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(e.to_string()))?;
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("argon2: {e}")))
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.hash_now(&password))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// Verifies against `hash`, or against the dummy hash when there is no user, so both
    /// cases cost the same. Also says how long the hash itself took.
    pub async fn verify(&self, password: String, hash: Option<String>) -> (bool, Duration) {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let real = hash.is_some();
            let stored = hash.unwrap_or_else(|| this.dummy.clone());
            let ok = this.verify_now(password.as_bytes(), &stored);
            (real && ok, started.elapsed())
        })
        .await
        .unwrap_or((false, Duration::ZERO))
    }
}

impl Hasher {
    /// What argon2's `verify_password` does, with reused working memory: recompute the
    /// hash with the stored algorithm, version, parameters and salt, and compare in
    /// constant time.
    fn verify_now(&self, password: &[u8], stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let (Ok(params), Ok(algorithm)) = (
            Params::try_from(&parsed),
            Algorithm::try_from(parsed.algorithm),
        ) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let mut blocks = self.take_blocks(params.block_count());
        let argon2 = Argon2::new(algorithm, version, params);
        let done = argon2
            .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..])
            .is_ok();
        self.give_back(blocks);
        done && super::tokens::constant_time_eq(&out, expected.as_bytes())
    }

    fn take_blocks(&self, n: usize) -> Vec<Block> {
        let kept = match self.blocks.lock() {
            Ok(mut kept) => kept
                .iter()
                .position(|b| b.len() == n)
                .map(|i| kept.swap_remove(i)),
            Err(_) => None,
        };
        kept.unwrap_or_else(|| vec![Block::default(); n])
    }

    fn give_back(&self, blocks: Vec<Block>) {
        if let Ok(mut kept) = self.blocks.lock()
            && kept.len() < KEPT_BLOCKS
        {
            kept.push(blocks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::new(&Argon2Config {
            m: 1024,
            t: 1,
            p: 1,
        })
        .unwrap();
        let stored = h.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            h.verify("correct horse".into(), Some(stored.clone()))
                .await
                .0
        );
        assert!(!h.verify("wrong horse".into(), Some(stored)).await.0);
        assert!(!h.verify("anything".into(), None).await.0);
        assert!(Hasher::check_policy("short").is_err());
    }
}
