//! `webhooks` (the configured receivers, mirrored) and `webhook_deliveries` (their
//! outbox). Deliveries are queued by `events::insert`.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;

/// Makes the `webhooks` table say what the configuration says: each `(url, patterns)`
/// given keeps (or gets) its row and id; every other row keeps its id and deliveries
/// but no longer matches any event. Writes only what differs, so that an unchanged
/// configuration starts on a read-only database. Returns the ids, in the order given.
pub fn sync(
    c: &Connection,
    configured: &[(String, String)],
    prune: bool,
) -> Result<Vec<i64>, DbError> {
    let stored: Vec<(i64, String, String)> = c
        .prepare("SELECT id, url, events FROM webhooks")?
        .query_map([], |r| Ok((r.get("id")?, r.get("url")?, r.get("events")?)))?
        .collect::<Result<_, _>>()?;
    for (id, url, events) in &stored {
        if prune && events != "[]" && !configured.iter().any(|(u, _)| u == url) {
            c.execute("UPDATE webhooks SET events = '[]' WHERE id = ?1", [id])?;
        }
    }
    let mut ids = Vec::with_capacity(configured.len());
    for (url, patterns) in configured {
        match stored.iter().find(|(_, u, _)| u == url) {
            Some((id, _, events)) if events == patterns => ids.push(*id),
            _ => ids.push(
                c.prepare_cached(
                    "INSERT INTO webhooks (url, events) VALUES (?1, ?2)
                     ON CONFLICT (url) DO UPDATE SET events = excluded.events
                     RETURNING id",
                )?
                .query_row(params![url, patterns], |r| r.get(0))?,
            ),
        }
    }
    Ok(ids)
}

/// A delivery to attempt.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub message_id: String,
    pub attempts: i64,
}

/// Up to `limit` deliveries due at `now` that are the oldest pending one of their queue
/// (receiver and user), so each queue goes out in order, one at a time.
pub fn list_due(c: &Connection, now: i64, limit: i64) -> Result<Vec<Due>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT d.id, d.webhook_id, d.event_id, d.message_id, d.attempts
         FROM webhook_deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
               WHERE e.status = 'pending' AND e.webhook_id = d.webhook_id
                 AND e.queue = d.queue AND e.id < d.id)
         ORDER BY d.next_attempt_at, d.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], |r| {
        Ok(Due {
            id: r.get("id")?,
            webhook_id: r.get("webhook_id")?,
            event_id: r.get("event_id")?,
            message_id: r.get("message_id")?,
            attempts: r.get("attempts")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update_delivered(c: &Connection, id: i64, now: i64) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = ?2,
            attempts = attempts + 1, last_error = NULL
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// A failed attempt: retried at `next`, or given up (`failed`). The rest of its queue
/// waits until `next` too, so that the worker does not look at it meanwhile.
pub fn update_failed_attempt(
    c: &Connection,
    id: i64,
    next: i64,
    error: &str,
    give_up: bool,
) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?3,
            next_attempt_at = ?2, status = CASE WHEN ?4 THEN 'failed' ELSE status END
         WHERE id = ?1",
    )?
    .execute(params![id, next, error, give_up])?;
    if !give_up {
        c.prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_at = ?2
             WHERE status = 'pending' AND next_attempt_at < ?2
               AND (webhook_id, queue) = (SELECT webhook_id, queue FROM webhook_deliveries WHERE id = ?1)",
        )?
        .execute(params![id, next])?;
    }
    Ok(())
}

/// Queues a pending or failed delivery again, due now, with its attempts counted
/// afresh. False when there is no such undelivered delivery.
pub fn update_retry(c: &Connection, id: i64, now: i64) -> Result<bool, DbError> {
    let n = c
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?2, attempts = 0
             WHERE id = ?1 AND status IN ('pending', 'failed')",
        )?
        .execute(params![id, now])?;
    if n == 1 {
        // Its queue, held back by its failures, is due again too.
        c.prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_at = ?2
             WHERE status = 'pending' AND next_attempt_at > ?2
               AND (webhook_id, queue) = (SELECT webhook_id, queue FROM webhook_deliveries WHERE id = ?1)",
        )?
        .execute(params![id, now])?;
    }
    Ok(n == 1)
}

/// One delivery as the operator sees it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub url: String,
    pub event_id: i64,
    pub event_type: Option<String>,
    pub message_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// The newest deliveries, optionally only those not delivered.
pub fn list_recent(
    c: &Connection,
    undelivered_only: bool,
    limit: i64,
) -> Result<Vec<DeliveryRow>, DbError> {
    let mut stmt = c.prepare_cached(
        "SELECT d.id, w.url, d.event_id, e.type AS event_type, d.message_id, d.status,
            d.attempts, d.next_attempt_at, d.last_error, d.created_at, d.delivered_at
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         LEFT JOIN events e ON e.id = d.event_id
         WHERE NOT ?1 OR d.status != 'delivered'
         ORDER BY d.id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![undelivered_only, limit], |r| {
        Ok(DeliveryRow {
            id: r.get("id")?,
            url: r.get("url")?,
            event_id: r.get("event_id")?,
            event_type: r.get("event_type")?,
            message_id: r.get("message_id")?,
            status: r.get("status")?,
            attempts: r.get("attempts")?,
            next_attempt_at: r.get("next_attempt_at")?,
            last_error: r.get("last_error")?,
            created_at: r.get("created_at")?,
            delivered_at: r.get("delivered_at")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (pending, failed, created_at of the oldest pending) for `/metrics`.
pub fn counts(c: &Connection) -> Result<(i64, i64, Option<i64>), DbError> {
    let pending: i64 = c.query_row(
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )?;
    let failed: i64 = c.query_row(
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'",
        [],
        |r| r.get(0),
    )?;
    let oldest: Option<i64> = c
        .query_row(
            "SELECT min(created_at) FROM webhook_deliveries WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok((pending, failed, oldest))
}

/// Deletes up to `limit` deliveries delivered before `cutoff`.
pub fn delete_delivered_before(c: &Connection, cutoff: i64, limit: i64) -> Result<usize, DbError> {
    Ok(c.prepare_cached(
        "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
           WHERE status = 'delivered' AND delivered_at < ?1 LIMIT ?2)",
    )?
    .execute(params![cutoff, limit])?)
}
