//! The background sweeper: ends expired sessions (so they leave the active set with the
//! right reason) every half minute, and every `privacy.sweep_interval` enforces the
//! retention of personal records (`domain::people::privacy`).

use std::time::{Duration, Instant};

use crate::db;
use crate::domain::people::privacy;
use crate::state::AppState;

/// How often expired sessions are ended (at most; a shorter sweep interval wins).
const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub fn spawn(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let retention_every = state.config.privacy.sweep_interval;
        let tick = SWEEP_EVERY.min(retention_every);
        let mut retention_due = Instant::now();
        loop {
            end_expired(&state).await;
            if Instant::now() >= retention_due {
                enforce_retention(&state).await;
                retention_due = Instant::now() + retention_every;
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// One full pass: expired sessions ended, then every retention enforced.
pub async fn sweep_once(state: &AppState) {
    end_expired(state).await;
    enforce_retention(state).await;
}

async fn end_expired(state: &AppState) {
    let max = state.config.sessions.max_lifetime.as_secs() as i64;
    let now = crate::clock::now();
    state.limiter.prune(now);
    // Second steps and enrolments never finished: their challenges, and the inactive
    // authenticator keys an enrolment showed (kept a day).
    let cleared = state
        .db
        .run(move |c| -> Result<(), db::DbError> {
            db::challenges::delete_expired(c, now)?;
            db::second_factors::delete_inactive_before(c, now - 86_400)?;
            // OpenID codes kept ten minutes past their expiry (a late second use is
            // still seen as one), and expired access tokens.
            db::oidc_grants::delete_codes_expired_before(c, now - 600)?;
            db::oidc_tokens::delete_expired_before(c, now)?;
            Ok(())
        })
        .await;
    if let Err(err) = cleared {
        tracing::warn!(%err, "second-step sweep failed");
    }
    let mut total = 0;
    // A batch per transaction (each session's `session.ended` event with it), so that a
    // backlog after downtime never holds the writer for long.
    loop {
        let result = state
            .db
            .run(move |c| -> Result<usize, db::DbError> {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let ended = db::sessions::end_expired(&tx, now, max, privacy::BATCH)?;
                crate::domain::audit::events::record_ended(&tx, &ended, now)?;
                tx.commit()?;
                Ok(ended.len())
            })
            .await;
        match result {
            Ok(n) => {
                total += n;
                if (n as i64) < privacy::BATCH {
                    break;
                }
            }
            Err(err) => {
                tracing::warn!(%err, "session sweep failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(ended = total, "ended expired sessions");
    }
}

async fn enforce_retention(state: &AppState) {
    match privacy::enforce_retention(state).await {
        Ok(report) if report.is_empty() => {}
        Ok(r) => tracing::info!(
            sessions = r.sessions,
            login_records = r.login_records,
            alerts = r.alerts,
            devices = r.devices,
            events = r.events,
            webhook_deliveries = r.webhook_deliveries,
            ips_truncated = r.ips_truncated,
            links = r.links,
            "retention enforced"
        ),
        Err(err) => tracing::warn!(%err, "retention sweep failed"),
    }
}
