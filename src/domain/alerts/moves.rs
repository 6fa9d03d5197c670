//! A live session that moves (SPEC §14): used from another country than it signed in
//! from. Checked only when the session check has just written the session's activity
//! (at most once per `sessions.touch_interval`); the lookup is an in-memory GeoIP read,
//! and only a session that really moved costs a write, off the request's path.

use std::net::IpAddr;

use tracing::instrument;

use crate::db;
use crate::domain::alerts::classify::Reasons;
use crate::domain::alerts::notices::{self, Details};
use crate::domain::place::{locate, silent};
use crate::error::Result;
use crate::model::{Location, Session};
use crate::state::AppState;

/// Called after the session check wrote the activity of the session `pk`, for a
/// request from `ip`: the session's row (where it signed in from, where it was last
/// seen) is read off the request's path.
pub fn note_activity(state: &AppState, pk: i64, ip: IpAddr) {
    let here = locate(state, ip);
    if here.country_code.is_none() {
        return;
    }
    let st = state.clone();
    tokio::spawn(async move {
        let found = st.db.run(move |c| db::sessions::find_by_pk(c, pk)).await;
        let session = match found {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(%err, "could not read a session to check where it is used");
                return;
            }
        };
        if !moved(&session, &here) {
            return;
        }
        if let Err(err) = record(&st, session, here).await {
            tracing::warn!(%err, "could not record a session's move");
        }
    });
}

/// Whether `here` is news for `session`: another country than it signed in from (or
/// than it was last seen in), or back home after a move. Signed in from an unknown
/// place, there is nothing to have moved from.
fn moved(session: &Session, here: &Location) -> bool {
    let (Some(home), Some(country)) = (
        session.location.country_code.as_deref(),
        here.country_code.as_deref(),
    ) else {
        return false;
    };
    let shown = session
        .moved_to
        .as_ref()
        .and_then(|m| m.location.country_code.as_deref());
    !(country == home && shown.is_none() || shown == Some(country))
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
                Some(notices::enqueue_details(
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
