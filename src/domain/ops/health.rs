//! What health checks and metrics read from storage.

use crate::db;
use crate::error::Result;
use crate::model::Gauges;
use crate::state::AppState;

/// Whether the database answers a query.
pub async fn database_answers(state: &AppState) -> bool {
    state.db.run(|c| db::ping(c)).await.is_ok()
}

pub async fn gauges(state: &AppState) -> Result<Gauges> {
    let now = crate::clock::now();
    state
        .db
        .run(move |c| -> Result<_> {
            Ok(Gauges {
                active_sessions: db::sessions::count_active(c, now)?,
                alerts: db::alerts::count_by_status(c)?,
                oldest_pending: db::alerts::oldest_pending(c)?,
                webhooks: db::webhooks::counts(c)?,
                logouts: db::oidc_logouts::counts(c)?,
            })
        })
        .await
}
