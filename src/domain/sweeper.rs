//! The background sweeper: ends expired sessions (so they leave the active set with the
//! right reason) and deletes ended ones once `sessions.retention` has passed.

use std::time::Duration;

use crate::db;
use crate::state::AppState;

/// How often the sweeper runs.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub fn spawn(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            sweep_once(&state).await;
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}

pub async fn sweep_once(state: &AppState) {
    let max = state.config.sessions.max_lifetime.as_secs() as i64;
    let retention = state.config.sessions.retention.as_secs() as i64;
    let now = crate::clock::now();
    state.limiter.prune(now);
    let result = state
        .db
        .run(move |c| -> crate::error::Result<_> {
            let ended = db::sessions::end_expired(c, now, max)?;
            let deleted = db::sessions::delete_ended_before(c, now - retention)?;
            Ok((ended, deleted))
        })
        .await;
    match result {
        Ok((0, 0)) => {}
        Ok((ended, deleted)) => tracing::info!(ended, deleted, "swept sessions"),
        Err(err) => tracing::warn!(%err, "session sweep failed"),
    }
}
