//! The webhook outbox (SPEC §15): which configured receiver each stored one is, what is
//! due, and the outcome of each attempt. Deliveries are queued by `events::record`, in
//! the transaction of their event; `webhooks/` sends them.

use crate::db::{self, DbError};
use crate::error::Result;
use crate::state::AppState;

pub use crate::db::webhooks::{DeliveryRow, Due};

/// Attempts before a delivery is given up as `failed` (about three days: the backoff
/// reaches its hour after ten attempts). `doorman webhooks retry ID` queues it again.
pub const MAX_ATTEMPTS: i64 = 80;

/// Seconds to wait after `attempts` failed attempts: 5 s, 10 s, 20 s … at most 1 hour.
pub fn backoff(attempts: i64) -> i64 {
    let exp = attempts.clamp(0, 20) as u32;
    (5i64.saturating_mul(1i64 << exp)).min(3600)
}

/// Up to `limit` deliveries due now, each the head of its queue.
pub async fn due(state: &AppState, limit: i64) -> Result<Vec<Due>> {
    let now = crate::clock::now();
    Ok(state
        .db
        .run(move |c| db::webhooks::list_due(c, now, limit))
        .await?)
}

/// The receiver answered 2xx.
pub async fn mark_delivered(state: &AppState, id: i64) -> Result<()> {
    let now = crate::clock::now();
    state
        .db
        .run(move |c| db::webhooks::update_delivered(c, id, now))
        .await?;
    Ok(())
}

/// An attempt failed (`attempts` is how many failed before it): retried after the
/// backoff, or given up after [`MAX_ATTEMPTS`].
pub async fn mark_failed(state: &AppState, id: i64, attempts: i64, error: String) -> Result<()> {
    let give_up = attempts + 1 >= MAX_ATTEMPTS;
    let next = crate::clock::now() + backoff(attempts);
    state
        .db
        .run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            db::webhooks::update_failed_attempt(&tx, id, next, &error, give_up)?;
            tx.commit()?;
            Ok::<_, DbError>(())
        })
        .await?;
    Ok(())
}

/// The newest deliveries (for `doorman webhooks list`).
pub fn recent(state: &AppState, undelivered_only: bool, limit: i64) -> Result<Vec<DeliveryRow>> {
    Ok(state
        .db
        .blocking(|c| db::webhooks::list_recent(c, undelivered_only, limit.clamp(1, 10_000)))?)
}

/// Queues an undelivered delivery again, now (`doorman webhooks retry ID`). False when
/// there is no such delivery, or it was delivered.
pub fn retry(state: &AppState, id: i64) -> Result<bool> {
    let now = crate::clock::now();
    Ok(state.db.blocking(|c| {
        let tx = c.transaction()?;
        let done = db::webhooks::update_retry(&tx, id, now)?;
        tx.commit()?;
        Ok::<_, DbError>(done)
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_to_an_hour() {
        assert_eq!(backoff(0), 5);
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(9), 2560);
        assert_eq!(backoff(10), 3600);
        assert_eq!(backoff(79), 3600);
    }
}
