//! argon2id password hashing, off the async runtime.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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
}

impl Hasher {
    pub fn new(cfg: &Argon2Config) -> Result<Self> {
        let params = Params::new(cfg.m, cfg.t, cfg.p, None)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let mut hasher = Hasher {
            params,
            dummy: String::new(),
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
    /// cases cost the same.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let real = hash.is_some();
            let stored = hash.unwrap_or_else(|| this.dummy.clone());
            let ok = PasswordHash::new(&stored)
                .map(|parsed| {
                    this.argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false);
            real && ok
        })
        .await
        .unwrap_or(false)
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
        assert!(h.verify("correct horse".into(), Some(stored.clone())).await);
        assert!(!h.verify("wrong horse".into(), Some(stored)).await);
        assert!(!h.verify("anything".into(), None).await);
        assert!(Hasher::check_policy("short").is_err());
    }
}
