//! `GET /metrics` in Prometheus text format: requests by route and status, sign-ins by
//! outcome, active sessions, alerts by status, outbox age and the GeoIP database date.
//! Counters are in memory (reset at restart, as Prometheus expects); gauges are read
//! from the database at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use poem::PathPattern;
use poem::http::HeaderValue;
use poem::web::Data;
use poem::{Endpoint, IntoResponse, Request, Response, handler};

use crate::db;
use crate::state::AppState;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    sign_ins: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn count_request(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), status)).or_default() += 1;
        }
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

#[handler]
pub async fn metrics(state: Data<&AppState>) -> Response {
    let now = db::now();
    let gauges = state
        .db
        .run(move |c| {
            let active = db::sessions::count_active(c, now)?;
            let alerts = db::alerts::count_by_status(c)?;
            let oldest: Option<i64> = c.query_row(
                "SELECT min(created_at) FROM alerts WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )?;
            Ok((active, alerts, oldest))
        })
        .await;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP doorman_http_requests_total HTTP answers by route and status."
    );
    let _ = writeln!(out, "# TYPE doorman_http_requests_total counter");
    if let Ok(m) = state.metrics.requests.lock() {
        for ((route, status), n) in m.iter() {
            let _ = writeln!(
                out,
                "doorman_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
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
    match gauges {
        Ok((active, alerts, oldest)) => {
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
