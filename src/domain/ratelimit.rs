//! Failed sign-in limits per email and per IP (SPEC §8 `security.login_rate_limit`).
//!
//! An attempt takes a slot *before* the password is checked and gives it back on
//! success, so a burst of concurrent guesses cannot all slip past the check while their
//! hashes are being computed. Counts live in memory: a restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Keys tracked at most; past this the oldest-looking entries are pruned.
const MAX_KEYS: usize = 100_000;

pub struct RateLimiter {
    limit: usize,
    window: i64,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

/// A reserved attempt; give it back with [`RateLimiter::release`] when it succeeds.
pub struct Reservation {
    keys: [String; 2],
    at: i64,
}

impl RateLimiter {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self {
            limit: limit as usize,
            window: window_secs.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, ip: &str) -> [String; 2] {
        [format!("e:{}", email.to_lowercase()), format!("i:{ip}")]
    }

    /// Takes a slot for this attempt, or answers how many seconds to wait.
    pub fn reserve(&self, email: &str, ip: &str, now: i64) -> Result<Reservation, u64> {
        let keys = Self::keys(email, ip);
        let mut map = match self.failures.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() > MAX_KEYS {
            let cutoff = now - self.window;
            map.retain(|_, v| v.back().is_some_and(|t| *t > cutoff));
        }
        let mut wait = 0;
        for key in &keys {
            if let Some(times) = map.get_mut(key) {
                while times.front().is_some_and(|t| *t <= now - self.window) {
                    times.pop_front();
                }
                if times.len() >= self.limit {
                    let oldest = times.front().copied().unwrap_or(now);
                    wait = wait.max((oldest + self.window - now).max(1) as u64);
                }
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for key in &keys {
            map.entry(key.clone()).or_default().push_back(now);
        }
        Ok(Reservation { keys, at: now })
    }

    /// The attempt succeeded: it does not count as a failure.
    pub fn release(&self, r: Reservation) {
        let mut map = match self.failures.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        for key in &r.keys {
            if let Some(times) = map.get_mut(key) {
                if let Some(pos) = times.iter().rposition(|t| *t == r.at) {
                    times.remove(pos);
                }
                if times.is_empty() {
                    map.remove(key);
                }
            }
        }
    }

    /// Drops expired entries (called by the sweeper).
    pub fn prune(&self, now: i64) {
        if let Ok(mut map) = self.failures.lock() {
            let cutoff = now - self.window;
            map.retain(|_, v| v.back().is_some_and(|t| *t > cutoff));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_email_and_per_ip() {
        let rl = RateLimiter::new(3, 60);
        for _ in 0..3 {
            rl.reserve("A@x", "1.1.1.1", 100).unwrap();
        }
        assert!(
            rl.reserve("a@x", "2.2.2.2", 100).is_err(),
            "email limit, any case"
        );
        assert!(rl.reserve("b@x", "1.1.1.1", 100).is_err(), "ip limit");
        assert!(rl.reserve("b@x", "2.2.2.2", 100).is_ok());
        assert!(rl.reserve("a@x", "3.3.3.3", 161).is_ok(), "window passed");
    }

    #[test]
    fn success_gives_the_slot_back() {
        let rl = RateLimiter::new(1, 60);
        let r = rl.reserve("a@x", "1.1.1.1", 100).unwrap();
        rl.release(r);
        assert!(rl.reserve("a@x", "1.1.1.1", 100).is_ok());
    }
}
