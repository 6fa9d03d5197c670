//! A live session that moves (SPEC §14): used from another country than it signed in
//! from. Checked only when the session check has just written the session's activity
//! (at most once per `sessions.touch_interval`); the lookup is an in-memory GeoIP read,
//! and only a session that really moved costs a write, off the request's path.

use std::net::IpAddr;

use tracing::instrument;

use crate::db;
use crate::domain::alerts::{self, Details, Reasons};
use crate::domain::place::{locate, silent};
use crate::error::Result;
use crate::model::{Location, Session};
use crate::state::AppState;

/// Called after the session check wrote `session`'s activity, for a request from `ip`.
pub fn note_activity(state: &AppState, session: &Session, ip: IpAddr) {
    // Signed in from an unknown place: there is nothing to have moved from.
    let Some(home) = session.location.country_code.as_deref() else {
        return;
    };
    let here = locate(state, ip);
    let Some(country) = here.country_code.as_deref() else {
        return;
    };
    let shown = session
        .moved_to
        .as_ref()
        .and_then(|m| m.location.country_code.as_deref());
    if country == home && shown.is_none() || shown == Some(country) {
        return;
    }
    let (st, s) = (state.clone(), session.clone());
    tokio::spawn(async move {
        if let Err(err) = record(&st, s, here).await {
            tracing::warn!(%err, "could not record a session's move");
        }
    });
}

/// Stores where the session is now (or that it is back home), and queues the one alert
/// per session and country.
#[instrument(skip_all, err, fields(session = %session.id))]
async fn record(state: &AppState, session: Session, here: Location) -> Result<()> {
    let now = crate::clock::now();
    let mail_enabled = state.mailer.is_some();
    let quiet = silent(state, &here);
    let back_home = here.country_code == session.location.country_code;
    let queued = state
        .db
        .run(move |c| -> Result<Option<&'static str>> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if back_home {
                db::sessions::clear_move(&tx, session.pk)?;
                tx.commit()?;
                return Ok(None);
            }
            let first = db::sessions::record_move(&tx, session.pk, &here, now)?;
            if first {
                crate::domain::audit::events::record(
                    &tx,
                    crate::domain::audit::events::NewEvent::new(
                        crate::model::EventType::SessionMoved,
                        now,
                    )
                    .session(&session)
                    .detail("from", session.location.label())
                    .detail("to", here.place()),
                )?;
            }
            let (prefs, locked) = db::alert_prefs::find(&tx, session.user_id)?;
            let wanted = locked || prefs.moved;
            let queued = if first && wanted && !quiet {
                let to_name = db::users::find_by_id(&tx, session.user_id)?
                    .map(|u| u.name)
                    .unwrap_or_default();
                let details = Details {
                    at: now,
                    moved_to: Some(here.place()),
                    ..Details::new(&session, &to_name)
                };
                let reasons = Reasons {
                    moved: true,
                    ..Reasons::default()
                };
                Some(alerts::enqueue_details(
                    &tx,
                    reasons,
                    &session,
                    &details,
                    now,
                    mail_enabled,
                )?)
            } else {
                None
            };
            tx.commit()?;
            Ok(queued)
        })
        .await?;
    if queued == Some("pending") {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(moved_alert = ?queued, "session seen from another country");
    Ok(())
}
