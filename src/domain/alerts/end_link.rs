//! "Not you? End this session" (SPEC §5): what the link's page shows (GET changes
//! nothing) and ending the session it names, once.

use crate::db;
use crate::domain::alerts::notices::Details;
use crate::domain::alerts::signed::verify_link;
use crate::domain::audit::events;
use crate::error::{Error, Result};
use crate::model::EndReason;
use crate::state::AppState;

/// What the link page shows before the POST.
pub struct LinkTarget {
    pub details: Details,
    pub session_active: bool,
    pub used: bool,
}

/// Resolves a link token (GET: changes nothing).
pub async fn link_target(state: &AppState, token: &str) -> Result<LinkTarget> {
    let now = crate::clock::now();
    let link = verify_link(&state.link_key, token, now).ok_or(Error::NotFound)?;
    let alert_id = link.alert;
    let found = state
        .db
        .run(move |c| -> Result<_> {
            let Some(alert) = link.find(c)? else {
                return Ok(None);
            };
            let active = match alert.session_id {
                Some(_) => {
                    let details: Option<Details> = serde_json::from_str(&alert.details).ok();
                    match details {
                        Some(d) => db::sessions::find_by_public_id(c, &d.session_public_id)?
                            .is_some_and(|s| s.is_active(now)),
                        None => false,
                    }
                }
                None => false,
            };
            Ok(Some((alert, active)))
        })
        .await?;
    let (alert, session_active) = found.ok_or(Error::NotFound)?;
    let details: Details = serde_json::from_str(&alert.details)
        .map_err(|e| Error::Internal(format!("alert {alert_id} details: {e}")))?;
    Ok(LinkTarget {
        details,
        session_active,
        used: alert.link_used_at.is_some(),
    })
}

/// Uses the link: ends the session it names, once. Returns false when the link was used
/// before or the session had already ended.
pub async fn end_via_link(state: &AppState, token: &str) -> Result<bool> {
    let now = crate::clock::now();
    let link = verify_link(&state.link_key, token, now).ok_or(Error::NotFound)?;
    let alert_id = link.alert;
    state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction()?;
            let Some(alert) = link.find(&tx)? else {
                return Err(Error::NotFound);
            };
            if !db::alerts::update_link_used(&tx, alert_id, now)? {
                return Ok(false);
            }
            let details: Option<Details> = serde_json::from_str(&alert.details).ok();
            let ended = match details {
                Some(d) => match db::sessions::find_by_public_id(&tx, &d.session_public_id)? {
                    Some(s) if s.is_active(now) => {
                        let ended = db::sessions::end(
                            &tx,
                            s.pk,
                            now,
                            Some(alert.user_id),
                            EndReason::Terminated,
                        )?;
                        events::record_ended(&tx, ended.as_slice(), now)?;
                        ended.is_some()
                    }
                    _ => false,
                },
                None => false,
            };
            tx.commit()?;
            if ended {
                tracing::info!(alert = alert_id, "session ended from an alert email link");
            }
            Ok(ended)
        })
        .await
}
