//! `GET /metrics` in Prometheus text format: requests by route and status, sign-ins by
//! outcome, active sessions, alerts by status, outbox age and the GeoIP database date.
//! Counters are in memory (reset at restart, as Prometheus expects); gauges are read
//! from the database at most once per `metrics.gauge_cache`, however often it is scraped.
//!
//! Who may read it: with `metrics.token` set, only `Authorization: Bearer <token>`;
//! without, only loopback peers, and not requests a local proxy forwards. Everyone else
//! gets 404, as if it did not exist.

use std::fmt::Write;

use poem::PathPattern;
use poem::http::HeaderValue;
use poem::web::Data;
use poem::{IntoResponse, Request, Response, handler};

use crate::domain::ops::health;
use crate::domain::tokens;
use crate::model::Gauges;
use crate::state::AppState;

/// Counts an answer by its route pattern (not the raw path, so ids do not make new
/// series) and status; called for every answer by [`EveryRequest`](super::headers::EveryRequest).
/// `route` is the pattern of an answer made without the router.
pub fn count(state: &AppState, route: Option<&str>, resp: &Response) {
    let route = route
        .or_else(|| resp.data::<PathPattern>().map(|p| &*p.0))
        .unwrap_or("unmatched");
    state.metrics.count_request(route, resp.status().as_u16());
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
    tokens::constant_time_eq(given.as_bytes(), token.as_bytes())
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
    state.metrics.write_counters(&mut out);
    match gauges {
        Ok(g) => write_gauges(&mut out, &g, now),
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

/// The database gauges as Prometheus text.
fn write_gauges(out: &mut String, g: &Gauges, now: i64) {
    let (active, alerts, oldest) = (g.active_sessions, &g.alerts, g.oldest_pending);
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
    let (pending, failed, oldest) = g.webhooks;
    let _ = writeln!(
        out,
        "# HELP doorman_webhook_deliveries Webhook deliveries not delivered, by status (failed: given up)."
    );
    let _ = writeln!(out, "# TYPE doorman_webhook_deliveries gauge");
    let _ = writeln!(
        out,
        "doorman_webhook_deliveries{{status=\"pending\"}} {pending}"
    );
    let _ = writeln!(
        out,
        "doorman_webhook_deliveries{{status=\"failed\"}} {failed}"
    );
    let _ = writeln!(
        out,
        "# HELP doorman_webhook_oldest_pending_seconds Age of the oldest pending webhook delivery (0 when none)."
    );
    let _ = writeln!(out, "# TYPE doorman_webhook_oldest_pending_seconds gauge");
    let _ = writeln!(
        out,
        "doorman_webhook_oldest_pending_seconds {}",
        oldest.map(|t| (now - t).max(0)).unwrap_or(0)
    );
    let (pending, failed, oldest) = g.logouts;
    let _ = writeln!(
        out,
        "# HELP doorman_logout_deliveries Back-channel logout tokens not delivered, by status (failed: given up)."
    );
    let _ = writeln!(out, "# TYPE doorman_logout_deliveries gauge");
    let _ = writeln!(
        out,
        "doorman_logout_deliveries{{status=\"pending\"}} {pending}"
    );
    let _ = writeln!(
        out,
        "doorman_logout_deliveries{{status=\"failed\"}} {failed}"
    );
    let _ = writeln!(
        out,
        "# HELP doorman_logout_oldest_pending_seconds Age of the oldest pending back-channel logout (0 when none)."
    );
    let _ = writeln!(out, "# TYPE doorman_logout_oldest_pending_seconds gauge");
    let _ = writeln!(
        out,
        "doorman_logout_oldest_pending_seconds {}",
        oldest.map(|t| (now - t).max(0)).unwrap_or(0)
    );
}
