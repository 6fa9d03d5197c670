//! What health checks and metrics read from storage.

use crate::db;
use crate::error::Result;
use crate::state::AppState;

/// Whether the database answers a query.
pub async fn database_answers(state: &AppState) -> bool {
    state.db.run(|c| db::ping(c)).await.is_ok()
}

/// The figures `/metrics` reads from the database.
#[derive(Debug, Clone)]
pub struct Gauges {
    pub active_sessions: i64,
    /// Alerts by status.
    pub alerts: Vec<(String, i64)>,
    /// When the oldest unsent alert was queued.
    pub oldest_pending: Option<i64>,
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
            })
        })
        .await
}
