//! The counters and timings the server keeps in memory for `/metrics` (reset at
//! restart, as Prometheus expects), and the last database gauges read.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::model::{BackupRecord, Gauges};

#[derive(Default)]
pub struct Metrics {
    /// The last gauges read from the database, and when.
    pub(crate) gauges: tokio::sync::Mutex<Option<(Instant, Gauges)>>,
    /// Route pattern → status → answers. Keyed by route first so that counting finds an
    /// existing series without allocating.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    sign_ins: Mutex<BTreeMap<&'static str, u64>>,
    /// OpenID authorizations by outcome (code, sign_in, confirm, consent, denied, or
    /// the error sent back).
    oidc_authorizations: Mutex<BTreeMap<&'static str, u64>>,
    /// OpenID token requests by grant type and outcome (issued, or the RFC 6749 error).
    oidc_tokens: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    sign_in_time: Timing,
    password_time: Timing,
    backup: Mutex<BackupRecord>,
}

/// A Prometheus summary without quantiles: a sum of seconds and a count.
#[derive(Default)]
struct Timing {
    nanos: AtomicU64,
    count: AtomicU64,
}

impl Timing {
    fn observe(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} summary");
        let secs = self.nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {secs:.9}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

impl Metrics {
    pub fn count_request(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            let by_status = match m.get_mut(route) {
                Some(by_status) => by_status,
                None => m.entry(route.to_string()).or_default(),
            };
            *by_status.entry(status).or_default() += 1;
        }
    }

    /// A successful sign-in, from its start to its session committed, argon2 included.
    pub fn observe_sign_in(&self, took: Duration) {
        self.sign_in_time.observe(took);
    }

    /// One argon2 verification, the hash alone (not its wait for a thread).
    pub fn observe_password_check(&self, took: Duration) {
        self.password_time.observe(took);
    }

    pub fn count_sign_in(&self, outcome: &'static str) {
        if let Ok(mut m) = self.sign_ins.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    pub fn count_oidc_authorization(&self, outcome: &'static str) {
        if let Ok(mut m) = self.oidc_authorizations.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    pub fn count_oidc_token(&self, grant: &'static str, outcome: &'static str) {
        if let Ok(mut m) = self.oidc_tokens.lock() {
            *m.entry((grant, outcome)).or_default() += 1;
        }
    }

    /// A backup taken at `at` (or found on disk, taken then) was written and checked.
    pub fn backup_succeeded(&self, at: i64) {
        if let Ok(mut b) = self.backup.lock() {
            b.last_success = Some(b.last_success.map_or(at, |t| t.max(at)));
        }
    }

    pub fn backup_failed(&self, at: i64) {
        if let Ok(mut b) = self.backup.lock() {
            b.last_failure = Some(at);
            b.failures += 1;
        }
    }

    pub fn backup_record(&self) -> BackupRecord {
        self.backup.lock().map(|b| *b).unwrap_or_default()
    }

    /// Requests by route and status, sign-ins by outcome, and the timings, as
    /// Prometheus text.
    pub fn write_counters(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP doorman_http_requests_total HTTP answers by route and status."
        );
        let _ = writeln!(out, "# TYPE doorman_http_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for (route, by_status) in m.iter() {
                let route = escape(route);
                for (status, n) in by_status {
                    let _ = writeln!(
                        out,
                        "doorman_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}",
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP doorman_sign_ins_total Sign-in attempts by outcome."
        );
        let _ = writeln!(out, "# TYPE doorman_sign_ins_total counter");
        if let Ok(m) = self.sign_ins.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(out, "doorman_sign_ins_total{{outcome=\"{outcome}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP doorman_oidc_authorizations_total OpenID authorization requests by outcome."
        );
        let _ = writeln!(out, "# TYPE doorman_oidc_authorizations_total counter");
        if let Ok(m) = self.oidc_authorizations.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "doorman_oidc_authorizations_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP doorman_oidc_token_requests_total OpenID token requests by grant type and outcome."
        );
        let _ = writeln!(out, "# TYPE doorman_oidc_token_requests_total counter");
        if let Ok(m) = self.oidc_tokens.lock() {
            for ((grant, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "doorman_oidc_token_requests_total{{grant_type=\"{grant}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        self.sign_in_time.write(
            out,
            "doorman_sign_in_seconds",
            "Successful sign-ins, whole (password check included).",
        );
        self.password_time.write(
            out,
            "doorman_password_check_seconds",
            "argon2 password verifications, the hash alone.",
        );
        let backup = self.backup_record();
        let _ = writeln!(
            out,
            "# HELP doorman_backup_failures_total Scheduled backups that failed."
        );
        let _ = writeln!(out, "# TYPE doorman_backup_failures_total counter");
        let _ = writeln!(out, "doorman_backup_failures_total {}", backup.failures);
        let _ = writeln!(
            out,
            "# HELP doorman_backup_last_success_timestamp_seconds When the newest good backup was taken (0 when none)."
        );
        let _ = writeln!(
            out,
            "# TYPE doorman_backup_last_success_timestamp_seconds gauge"
        );
        let _ = writeln!(
            out,
            "doorman_backup_last_success_timestamp_seconds {}",
            backup.last_success.unwrap_or(0)
        );
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
