//! Failed sign-in limits (SPEC §8 `security.login_rate_limit`, §18).
//!
//! Failures are counted per email and per IP (an IPv6 address by its /64, which one
//! host usually holds whole). A sign-in from a device the user has signed in from before
//! (the device cookie or API `device_id`) is counted under that device instead of the
//! email, so an attacker's failures against an address never lock its owner out of
//! their own devices (OWASP's "device cookies").
//!
//! An attempt takes an *in-flight* slot before its password is checked. Only failures
//! refuse: while failures plus attempts in flight would pass the limit, a new attempt
//! waits for one of those in flight to settle instead of being refused, so a burst of
//! concurrent guesses cannot slip past the limit and concurrent correct sign-ins never
//! refuse each other. Counts live in memory: a restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::model::UserId;

/// Keys tracked at most; past this the oldest-looking entries are pruned.
const MAX_KEYS: usize = 100_000;
/// How long an attempt waits for attempts in flight to settle before it is refused.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// Rate-limited attempts of one (email, IP) leave at most one login record per this
/// many seconds; the others are only counted.
const REFUSAL_RECORD_EVERY: i64 = 60;

pub struct RateLimiter {
    limit: usize,
    window: i64,
    inner: Mutex<Inner>,
    settled: Notify,
}

#[derive(Default)]
struct Inner {
    keys: HashMap<String, Entry>,
    /// (email, IP) → when its last rate-limited attempt was recorded.
    refusals_recorded: HashMap<String, i64>,
    /// User → second steps failed in a row after a correct password (SPEC §19).
    failed_second_steps: HashMap<UserId, u32>,
}

/// Failed second steps in a row after a correct password that tell the person someone
/// knows their password (SPEC §19).
pub const SECOND_STEP_ROW: u32 = 3;

#[derive(Default)]
struct Entry {
    failures: VecDeque<i64>,
    in_flight: usize,
}

/// Whom an attempt is counted against.
pub struct Subject<'a> {
    pub email: &'a str,
    pub ip: IpAddr,
    /// The device id, when the user has signed in from it before.
    pub known_device: Option<&'a str>,
}

impl Subject<'_> {
    fn keys(&self) -> Vec<String> {
        let ip = format!("i:{}", ip_key(self.ip));
        match self.known_device {
            // Not the email's budget, and not the IP's: a shared address (an office, a
            // carrier's NAT) under attack must not lock out known devices either.
            Some(device) => vec![format!("d:{}:{device}", self.email.to_lowercase())],
            None => vec![format!("e:{}", self.email.to_lowercase()), ip],
        }
    }
}

/// An IPv4 address as it is; an IPv6 address by its /64.
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// An attempt in flight. Say how it ended with [`Reservation::succeeded`] or
/// [`Reservation::failed`]; dropped without either, it counts as a failure.
pub struct Reservation {
    limiter: Arc<RateLimiter>,
    keys: Vec<String>,
    at: i64,
    settled: bool,
}

impl Reservation {
    /// The attempt succeeded: it does not count as a failure.
    pub fn succeeded(mut self) {
        self.settle(false);
    }

    pub fn failed(mut self) {
        self.settle(true);
    }

    fn settle(&mut self, failed: bool) {
        if self.settled {
            return;
        }
        self.settled = true;
        {
            let mut inner = self.limiter.lock();
            for key in &self.keys {
                if let Some(e) = inner.keys.get_mut(key) {
                    e.in_flight = e.in_flight.saturating_sub(1);
                    if failed {
                        e.failures.push_back(self.at);
                    }
                    if e.in_flight == 0 && e.failures.is_empty() {
                        inner.keys.remove(key);
                    }
                }
            }
        }
        self.limiter.settled.notify_waiters();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.settle(true);
    }
}

enum Verdict {
    Go,
    Wait,
    Refuse(u64),
}

impl RateLimiter {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self {
            limit: (limit as usize).max(1),
            window: window_secs.max(1),
            inner: Mutex::new(Inner::default()),
            settled: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    /// Takes an in-flight slot for this attempt, or answers how many seconds to wait.
    pub async fn reserve(
        self: &Arc<Self>,
        who: &Subject<'_>,
        now: i64,
    ) -> Result<Reservation, u64> {
        let keys = who.keys();
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self.try_reserve(&keys, now) {
                Verdict::Go => {
                    return Ok(Reservation {
                        limiter: self.clone(),
                        keys,
                        at: now,
                        settled: false,
                    });
                }
                Verdict::Refuse(wait) => return Err(wait),
                Verdict::Wait => {
                    if tokio::time::timeout_at(deadline, settled).await.is_err() {
                        return Err(1);
                    }
                }
            }
        }
    }

    /// Seconds to wait when `who` has used up its failures, without taking a slot: for
    /// checks whose failures are rare and whose successes must not queue behind each
    /// other (an application's client secret at the token endpoint).
    pub fn limited(&self, who: &Subject<'_>, now: i64) -> Option<u64> {
        let cutoff = now - self.window;
        let inner = self.lock();
        who.keys()
            .iter()
            .filter_map(|key| inner.keys.get(key))
            .filter_map(|e| {
                let recent: Vec<i64> = e.failures.iter().copied().filter(|t| *t > cutoff).collect();
                (recent.len() >= self.limit).then(|| {
                    (recent.first().copied().unwrap_or(now) + self.window - now).max(1) as u64
                })
            })
            .max()
    }

    fn try_reserve(&self, keys: &[String], now: i64) -> Verdict {
        let mut inner = self.lock();
        let cutoff = now - self.window;
        if inner.keys.len() > MAX_KEYS {
            inner
                .keys
                .retain(|_, e| e.in_flight > 0 || e.failures.back().is_some_and(|t| *t > cutoff));
        }
        let (mut wait, mut busy) = (0, false);
        for key in keys {
            if let Some(e) = inner.keys.get_mut(key) {
                while e.failures.front().is_some_and(|t| *t <= cutoff) {
                    e.failures.pop_front();
                }
                if e.failures.len() >= self.limit {
                    let oldest = e.failures.front().copied().unwrap_or(now);
                    wait = wait.max((oldest + self.window - now).max(1) as u64);
                } else if e.failures.len() + e.in_flight >= self.limit {
                    busy = true;
                }
            }
        }
        if wait > 0 {
            return Verdict::Refuse(wait);
        }
        if busy {
            return Verdict::Wait;
        }
        for key in keys {
            inner.keys.entry(key.clone()).or_default().in_flight += 1;
        }
        Verdict::Go
    }

    /// Whether a rate-limited attempt of (email, IP) should leave a login record: the
    /// first of each minute does, the rest are only counted, so a flood of refused
    /// attempts cannot grow the database without bound.
    pub fn record_refusal(&self, email: &str, ip: IpAddr, now: i64) -> bool {
        let key = format!("{}\0{}", email.to_lowercase(), ip_key(ip));
        let mut inner = self.lock();
        if inner.refusals_recorded.len() > MAX_KEYS {
            inner
                .refusals_recorded
                .retain(|_, t| *t > now - REFUSAL_RECORD_EVERY);
        }
        match inner.refusals_recorded.get(&key) {
            Some(t) if *t > now - REFUSAL_RECORD_EVERY => false,
            _ => {
                inner.refusals_recorded.insert(key, now);
                true
            }
        }
    }

    /// A second step after a correct password failed for `user`: true when it makes
    /// [`SECOND_STEP_ROW`] in a row (the row then starts again). In memory, like the
    /// limits: a restart starts every row again.
    pub fn second_step_failed(&self, user: UserId) -> bool {
        let mut inner = self.lock();
        if inner.failed_second_steps.len() > MAX_KEYS {
            inner.failed_second_steps.clear();
        }
        let row = inner.failed_second_steps.entry(user).or_default();
        *row += 1;
        if *row >= SECOND_STEP_ROW {
            inner.failed_second_steps.remove(&user);
            return true;
        }
        false
    }

    /// `user` signed in: their row of failed second steps is over.
    pub fn second_step_passed(&self, user: UserId) {
        self.lock().failed_second_steps.remove(&user);
    }

    /// Drops expired entries (called by the sweeper).
    pub fn prune(&self, now: i64) {
        let mut inner = self.lock();
        let cutoff = now - self.window;
        inner
            .keys
            .retain(|_, e| e.in_flight > 0 || e.failures.back().is_some_and(|t| *t > cutoff));
        inner
            .refusals_recorded
            .retain(|_, t| *t > now - REFUSAL_RECORD_EVERY);
    }
}

// "Forgot your password?" requests (SPEC §11).

/// Reset requests per email and per address in an hour; beyond, the same answer and
/// no email.
pub const PER_EMAIL_PER_HOUR: usize = 3;
pub const PER_IP_PER_HOUR: usize = 10;
pub const RESET_WINDOW: i64 = 3600;
/// Keys kept before old ones are dropped, so a flood of made-up addresses cannot grow
/// the limiter without bound.
const RESET_MAX_KEYS: usize = 100_000;

/// The hourly budgets of reset requests, in memory (a restart forgets them, which
/// costs at most one more hour's worth).
#[derive(Default)]
pub struct ResetLimits {
    seen: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl ResetLimits {
    /// Counts a request and says whether it is within both budgets.
    pub fn allow(&self, email: &str, ip: IpAddr, now: i64) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen.len() > RESET_MAX_KEYS {
            seen.retain(|_, times| times.back().is_some_and(|t| *t > now - RESET_WINDOW));
            if seen.len() > RESET_MAX_KEYS {
                seen.clear();
            }
        }
        let mut within = |key: String, limit: usize| {
            let times = seen.entry(key).or_default();
            while times.front().is_some_and(|t| *t <= now - RESET_WINDOW) {
                times.pop_front();
            }
            times.push_back(now);
            times.len() <= limit
        };
        let email_ok = within(
            format!("e:{}", email.trim().to_lowercase()),
            PER_EMAIL_PER_HOUR,
        );
        let ip_ok = within(format!("i:{}", ip_key(ip)), PER_IP_PER_HOUR);
        email_ok && ip_ok
    }
}

/// When each (session, application) refusal was last recorded, so that a proxy asking
/// again for every asset of a page records one `access.denied` per touch interval, not
/// hundreds.
#[derive(Default)]
pub struct Denials(std::sync::Mutex<std::collections::HashMap<(i64, String), i64>>);

impl Denials {
    /// Whether a refusal at `now` is to be recorded (and notes it).
    pub fn first_since(&self, key: (i64, String), now: i64, every: i64) -> bool {
        let Ok(mut seen) = self.0.lock() else {
            return false;
        };
        if seen.len() > 10_000 {
            seen.retain(|_, at| now - *at < every);
        }
        match seen.get(&key) {
            Some(at) if now - *at < every => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who<'a>(email: &'a str, ip: &str, device: Option<&'a str>) -> Subject<'a> {
        Subject {
            email,
            ip: ip.parse().unwrap(),
            known_device: device,
        }
    }

    async fn fail(rl: &Arc<RateLimiter>, s: &Subject<'_>, now: i64) {
        rl.reserve(s, now).await.unwrap().failed();
    }

    #[tokio::test]
    async fn limits_per_email_and_per_ip() {
        let rl = Arc::new(RateLimiter::new(3, 60));
        for _ in 0..3 {
            fail(&rl, &who("A@x", "1.1.1.1", None), 100).await;
        }
        let email = rl.reserve(&who("a@x", "2.2.2.2", None), 100).await;
        assert!(email.is_err(), "email limit, any case");
        assert!(rl.reserve(&who("b@x", "1.1.1.1", None), 100).await.is_err());
        assert!(rl.reserve(&who("b@x", "2.2.2.2", None), 100).await.is_ok());
        assert!(rl.reserve(&who("a@x", "3.3.3.3", None), 161).await.is_ok());
    }

    #[tokio::test]
    async fn success_gives_the_slot_back_and_drop_counts_as_failure() {
        let rl = Arc::new(RateLimiter::new(1, 60));
        let s = who("a@x", "1.1.1.1", None);
        rl.reserve(&s, 100).await.unwrap().succeeded();
        let r = rl.reserve(&s, 100).await.unwrap();
        drop(r);
        assert!(rl.reserve(&s, 100).await.is_err());
    }

    #[tokio::test]
    async fn ipv6_addresses_of_one_64_share_a_budget() {
        let rl = Arc::new(RateLimiter::new(2, 60));
        fail(&rl, &who("a@x", "2001:db8:1:2::1", None), 100).await;
        fail(&rl, &who("b@x", "2001:db8:1:2:ffff::9", None), 100).await;
        let same = rl.reserve(&who("c@x", "2001:db8:1:2::77", None), 100).await;
        assert!(same.is_err());
        let other = rl.reserve(&who("c@x", "2001:db8:1:3::1", None), 100).await;
        assert!(other.is_ok());
    }

    #[tokio::test]
    async fn a_known_device_is_not_locked_out_by_failures_elsewhere() {
        let rl = Arc::new(RateLimiter::new(2, 60));
        for ip in ["9.9.9.1", "9.9.9.2"] {
            fail(&rl, &who("v@x", ip, None), 100).await;
        }
        assert!(rl.reserve(&who("v@x", "5.5.5.5", None), 100).await.is_err());
        let known = rl.reserve(&who("v@x", "5.5.5.5", Some("dev1")), 100).await;
        assert!(known.is_ok());
    }

    #[tokio::test]
    async fn attempts_in_flight_wait_rather_than_fail() {
        let rl = Arc::new(RateLimiter::new(2, 60));
        let s = who("a@x", "1.1.1.1", None);
        let (r1, r2) = (
            rl.reserve(&s, 100).await.unwrap(),
            rl.reserve(&s, 100).await.unwrap(),
        );
        let rl2 = rl.clone();
        let third = tokio::spawn(async move {
            let s = who("a@x", "1.1.1.1", None);
            rl2.reserve(&s, 100).await.map(Reservation::succeeded)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "waits while two are in flight");
        r1.succeeded();
        assert!(third.await.unwrap().is_ok());
        r2.failed();
        rl.reserve(&s, 100).await.unwrap().failed();
        assert!(rl.reserve(&s, 100).await.is_err(), "two failures refuse");
    }

    #[test]
    fn refused_attempts_are_recorded_once_a_minute() {
        let rl = RateLimiter::new(1, 60);
        let ip: IpAddr = "1.1.1.1".parse().unwrap();
        assert!(rl.record_refusal("a@x", ip, 100));
        assert!(!rl.record_refusal("A@x", ip, 130));
        assert!(rl.record_refusal("b@x", ip, 130));
        assert!(rl.record_refusal("a@x", ip, 161));
    }
}
