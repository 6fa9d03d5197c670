//! argon2id password hashing, off the async runtime, and the password policy (SPEC §11):
//! a minimum length and zxcvbn's strength estimate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::Argon2Config;
pub use crate::config::{MAX_PASSWORD, MIN_PASSWORD};
use crate::error::{Error, Result};

/// zxcvbn's score a password needs: 3 is "safely unguessable: moderate protection from
/// an offline slow-hash scenario" (10^10 guesses), which is what argon2id protects.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;
/// zxcvbn reads only this much of a password: its matching grows quickly with length,
/// and a password whose first 64 characters are strong is strong.
const SCORED_CHARS: usize = 64;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// `security.password_min_length`.
    min_length: usize,
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
            min_length: MIN_PASSWORD,
            dummy: String::new(),
            blocks: Arc::new(Mutex::new(Vec::new())),
        };
        hasher.dummy = hasher.hash_now(&super::tokens::new_token())?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The same hasher with another minimum password length.
    pub fn with_min_length(mut self, min_length: usize) -> Self {
        self.min_length = min_length;
        self
    }

    /// The password policy, applied wherever a password is set (pages, API, CLI, setup):
    /// at least `min_length` characters and a zxcvbn score of at least 3. `context` is
    /// what the person is known by (email, name), which a password must not lean on.
    /// The refusal says why, in words a person can act on.
    pub fn check_policy(&self, password: &str, context: &[&str]) -> Result<()> {
        check_policy(password, self.min_length, context)
    }
}

/// [`Hasher::check_policy`] with the minimum length given.
pub fn check_policy(password: &str, min_length: usize, context: &[&str]) -> Result<()> {
    let n = password.chars().count();
    if n < min_length {
        return Err(Error::invalid(
            "weak_password",
            format!("The password must have at least {min_length} characters."),
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(Error::invalid(
            "password_too_long",
            format!("The password must be at most {MAX_PASSWORD} bytes."),
        ));
    }
    let scored: String = password.chars().take(SCORED_CHARS).collect();
    let mut inputs: Vec<&str> = Vec::new();
    for c in context {
        inputs.push(c);
        // The parts of an email count on their own: "ann" of ann@acme.test.
        inputs.extend(c.split(['@', '.', ' ', '-', '_']).filter(|p| p.len() >= 3));
    }
    let estimate = zxcvbn::zxcvbn(&scored, &inputs);
    if estimate.score() >= MIN_SCORE {
        return Ok(());
    }
    let mut why = String::from("This password is too easy to guess.");
    let feedback = estimate.feedback();
    if let Some(warning) = feedback.and_then(|f| f.warning()) {
        why.push(' ');
        why.push_str(&warning.to_string());
    }
    match feedback.and_then(|f| f.suggestions().first()) {
        Some(hint) => {
            why.push(' ');
            why.push_str(&hint.to_string());
        }
        None => why.push_str(" A few unrelated words make a strong password."),
    }
    Err(Error::invalid("weak_password", why))
}

impl Hasher {
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
    }

    fn refusal(password: &str) -> Option<String> {
        match check_policy(password, 10, &["ann@acme.test", "Ann Smith"]) {
            Ok(()) => None,
            Err(Error::Invalid { message, .. }) => Some(message),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn the_policy_says_why() {
        assert_eq!(
            refusal("short").as_deref(),
            Some("The password must have at least 10 characters.")
        );
        let common = refusal("password123").unwrap();
        assert!(common.contains("too easy to guess"), "{common}");
        assert!(refusal("qwertyuiop").is_some(), "a keyboard row");
        assert!(refusal("ann@acme.test").is_some(), "the person's own email");
        assert!(refusal("aaaaaaaaaaaaaaaa").is_some(), "repeats");
        assert_eq!(refusal("correct horse battery"), None);
        assert_eq!(refusal("violet tractor umbrella"), None);
        assert!(refusal(&"x".repeat(2000)).is_some(), "too long");
        // A long strong password is not slowed down by its length.
        let long: String = "violet tractor umbrella ".repeat(40);
        let started = std::time::Instant::now();
        assert_eq!(refusal(&long), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
