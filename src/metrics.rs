//! `GET /metrics` in Prometheus text format: requests by route and status, sign-ins by
//! outcome, active sessions, alerts by status, outbox age and the GeoIP database date.
//! Counters are in memory (reset at restart, as Prometheus expects); gauges are read
//! from the database at most once per `metrics.gauge_cache`, however often it is scraped.
//!
//! Who may read it: with `metrics.token` set, only `Authorization: Bearer <token>`;
//! without, only loopback peers, and not requests a local proxy forwards. Everyone else
//! gets 404, as if it did not exist.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use poem::PathPattern;
use poem::http::HeaderValue;
use poem::web::Data;
use poem::{Endpoint, IntoResponse, Request, Response, handler};

use crate::domain::health::{self, Gauges};
use crate::state::AppState;

#[derive(Default)]
pub struct Metrics {
    gauges: tokio::sync::Mutex<Option<(std::time::Instant, Gauges)>>,
    /// Route pattern → status → answers. Keyed by route first so that counting finds an
    /// existing series without allocating.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    sign_ins: Mutex<BTreeMap<&'static str, u64>>,
    sign_in_time: Timing,
    password_time: Timing,
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
}

/// Counts every answer by its route pattern (not the raw path, so ids do not make new
/// series) and status.
pub async fn count_requests<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let counters = req.data::<AppState>().map(|s| s.metrics.clone());
    let resp = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(err) => err.into_response(),
    };
    if let Some(m) = counters {
        let route = resp
            .data::<PathPattern>()
            .map(|p| p.0.to_string())
            .unwrap_or_else(|| "unmatched".into());
        m.count_request(&route, resp.status().as_u16());
    }
    Ok(resp)
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Whether the request may read the metrics (see the module comment).
fn allowed(req: &Request, state: &AppState) -> bool {
    let token = &state.config.metrics.token;
    if token.is_empty() {
        // A request a proxy on this host forwards comes from loopback too: it names the
        // client it forwards for, and is not a local scrape.
        let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
            .iter()
            .any(|h| req.headers().contains_key(*h));
        return !forwarded
            && req
                .remote_addr()
                .as_socket_addr()
                .is_some_and(|a| a.ip().to_canonical().is_loopback());
    }
    let given = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    crate::domain::tokens::constant_time_eq(given.as_bytes(), token.as_bytes())
}

/// The database gauges, read at most once per `metrics.gauge_cache`: scrapes never
/// count a million sessions more often than that, however often they come.
async fn gauges(state: &AppState) -> crate::error::Result<Gauges> {
    let fresh_for = state.config.metrics.gauge_cache;
    let mut cached = state.metrics.gauges.lock().await;
    if let Some((_, g)) = cached.as_ref().filter(|(at, _)| at.elapsed() < fresh_for) {
        return Ok(g.clone());
    }
    let fresh = health::gauges(state).await?;
    *cached = Some((std::time::Instant::now(), fresh.clone()));
    Ok(fresh)
}

#[handler]
pub async fn metrics(req: &Request, state: Data<&AppState>) -> Response {
    if !allowed(req, &state) {
        return poem::http::StatusCode::NOT_FOUND.into_response();
    }
    let now = crate::clock::now();
    let gauges = gauges(&state).await;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP doorman_http_requests_total HTTP answers by route and status."
    );
    let _ = writeln!(out, "# TYPE doorman_http_requests_total counter");
    if let Ok(m) = state.metrics.requests.lock() {
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
    if let Ok(m) = state.metrics.sign_ins.lock() {
        for (outcome, n) in m.iter() {
            let _ = writeln!(out, "doorman_sign_ins_total{{outcome=\"{outcome}\"}} {n}");
        }
    }
    state.metrics.sign_in_time.write(
        &mut out,
        "doorman_sign_in_seconds",
        "Successful sign-ins, whole (password check included).",
    );
    state.metrics.password_time.write(
        &mut out,
        "doorman_password_check_seconds",
        "argon2 password verifications, the hash alone.",
    );
    match gauges {
        Ok(Gauges {
            active_sessions: active,
            alerts,
            oldest_pending: oldest,
        }) => {
            let _ = writeln!(
                out,
                "# HELP doorman_active_sessions Sessions neither ended nor expired."
            );
            let _ = writeln!(out, "# TYPE doorman_active_sessions gauge");
            let _ = writeln!(out, "doorman_active_sessions {active}");
            let _ = writeln!(out, "# HELP doorman_alerts Alert emails by status.");
            let _ = writeln!(out, "# TYPE doorman_alerts gauge");
            for status in ["pending", "sent", "failed", "suppressed", "skipped"] {
                let n = alerts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                let _ = writeln!(out, "doorman_alerts{{status=\"{status}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "# HELP doorman_outbox_oldest_pending_seconds Age of the oldest unsent alert (0 when none)."
            );
            let _ = writeln!(out, "# TYPE doorman_outbox_oldest_pending_seconds gauge");
            let _ = writeln!(
                out,
                "doorman_outbox_oldest_pending_seconds {}",
                oldest.map(|t| (now - t).max(0)).unwrap_or(0)
            );
        }
        Err(err) => tracing::warn!(%err, "metrics: database unavailable"),
    }
    let _ = writeln!(
        out,
        "# HELP doorman_geoip_build_timestamp_seconds When the GeoIP database in use was built."
    );
    let _ = writeln!(out, "# TYPE doorman_geoip_build_timestamp_seconds gauge");
    let _ = writeln!(
        out,
        "doorman_geoip_build_timestamp_seconds {}",
        state.geo.build_epoch()
    );
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
