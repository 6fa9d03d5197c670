//! Back-channel logout (SPEC §21): the logout outbox, the logout token, and the
//! outcome of each attempt. Rows are queued by triggers in the transaction that ends a
//! grant (see `migrations/0015_backchannel_logout.sql`); `logout_worker` sends them.

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::db::{self, DbError};
use crate::domain::audit::events::{self, NewEvent};
use crate::error::Result;
use crate::model::{EventType, UserId};
use crate::state::AppState;

pub use crate::db::oidc_logouts::DueLogout;

/// The `events` claim of a logout token.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token lives this long (the spec asks for at most two minutes).
pub const TOKEN_TTL: i64 = 120;

/// A logout not delivered this long after the session ended is given up.
pub const GIVE_UP_AFTER: i64 = 24 * 3600;

/// A fresh logout token for one delivery, signed with the key that signs the client's
/// id tokens now. Errors when the client is no longer configured.
pub fn token(state: &AppState, d: &DueLogout) -> std::result::Result<(String, String), String> {
    let client =
        super::client(state, &d.client_id).ok_or("the application is no longer configured")?;
    let uri = client.oidc.backchannel_logout_uri.trim();
    if uri.is_empty() {
        return Err("the application no longer has a backchannel_logout_uri".into());
    }
    let now = crate::clock::now();
    let claims = json!({
        "iss": state.config.server.public_base(),
        "aud": d.client_id,
        "iat": now,
        "exp": now + TOKEN_TTL,
        "jti": crate::domain::tokens::new_token(),
        "sub": state.oidc_keys.subject(UserId(d.user_id)),
        "sid": d.sid,
        "events": { EVENT: {} },
    });
    let signed = super::keys::sign(
        state,
        client.oidc.id_token_signed_response_alg,
        "logout+jwt",
        &claims,
    )
    .map_err(|e| e.to_string())?;
    Ok((uri.to_string(), signed))
}

/// Up to `limit` logouts due now.
pub async fn due(state: &AppState, limit: i64) -> Result<Vec<DueLogout>> {
    let now = crate::clock::now();
    Ok(state
        .db
        .run(move |c| db::oidc_logouts::list_due(c, now, limit))
        .await?)
}

/// The outcomes of attempts, in one transaction: a burst of deliveries takes SQLite's
/// one writer once per batch, not once per delivery. 200 or 204: delivered,
/// `app.signed_out`. Otherwise retried after the webhooks' backoff, given up a day after
/// the session ended; `app.logout_failed` is recorded at the first failure and when
/// given up.
pub async fn record_outcomes(
    state: &AppState,
    outcomes: Vec<(DueLogout, std::result::Result<(), String>)>,
) -> Result<()> {
    let now = crate::clock::now();
    state
        .db
        .run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for (d, outcome) in &outcomes {
                match outcome {
                    Ok(()) => {
                        db::oidc_logouts::update_delivered(&tx, d.id, now)?;
                        record(&tx, EventType::AppSignedOut, d, now, None)?;
                    }
                    Err(error) => failed(&tx, d, error, now)?,
                }
            }
            tx.commit()?;
            Ok::<_, DbError>(())
        })
        .await?;
    Ok(())
}

fn failed(
    tx: &Connection,
    d: &DueLogout,
    error: &str,
    now: i64,
) -> std::result::Result<(), DbError> {
    let give_up = now - d.created_at >= GIVE_UP_AFTER;
    let next = now + crate::domain::audit::webhooks::backoff(d.attempts);
    db::oidc_logouts::update_failed_attempt(tx, d.id, next, error, give_up)?;
    if d.attempts == 0 || give_up {
        let detail = json!({ "error": error, "attempts": d.attempts + 1, "given_up": give_up });
        record(tx, EventType::AppLogoutFailed, d, now, Some(detail))?;
    }
    Ok(())
}

fn record(
    tx: &Connection,
    kind: EventType,
    d: &DueLogout,
    now: i64,
    extra: Option<Value>,
) -> std::result::Result<(), DbError> {
    let mut e = NewEvent::new(kind, now)
        .detail("client_id", d.client_id.as_str())
        .detail("application", d.application.as_str());
    if let Some(Value::Object(m)) = extra {
        e.details.extend(m);
    }
    e.session_id = Some(d.sid.clone());
    // A deleted person: the event still tells the operator, about no one.
    if let Some(u) = db::users::find_by_id(tx, UserId(d.user_id))? {
        e = e.user(u.id, u.account_id);
    }
    events::record(tx, e)?;
    Ok(())
}
