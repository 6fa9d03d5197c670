//! "Was this you?" (SPEC §14): the two links of every sign-in alert. "Yes, it was me"
//! marks the alert confirmed and changes nothing else; "No, secure my account" ends every
//! session of the person, forgets their devices, sends them a password-reset link,
//! records the report and tells the account's admins. Both links are signed for their
//! purpose, answer GET with what they would do, act on POST only, and act once.

use tracing::instrument;

use crate::db;
use crate::domain::alerts::{self, AlertLink, Details, LinkPurpose, verify_link_for};
use crate::error::{Error, Result};
use crate::model::{EndReason, UserId};
use crate::state::AppState;

/// The `reasons` of the notice an account's admins get about a "not me" report. It is a
/// security notice: never held back, never turned off.
pub const NOT_ME_REPORT: &str = "not_me_report";

/// What a link's page shows before the POST.
pub struct Question {
    pub details: Details,
    /// Answered before (the link works once).
    pub answered: bool,
}

/// What "No, secure my account" did.
pub struct Secured {
    pub sessions_ended: usize,
    pub devices_forgotten: usize,
    pub admins_told: usize,
    /// A password-reset link was emailed (not when mail is off, or the user is not
    /// active).
    pub reset_link_sent: bool,
}

/// What a link names; an alert that no longer belongs to the person the link was sent
/// to is then not found ([`AlertLink::find`]).
fn alert_of(state: &AppState, purpose: LinkPurpose, token: &str) -> Result<AlertLink> {
    verify_link_for(&state.link_key, purpose, token, crate::clock::now()).ok_or(Error::NotFound)
}

/// Resolves a link (GET: changes nothing).
pub async fn question(state: &AppState, purpose: LinkPurpose, token: &str) -> Result<Question> {
    let link = alert_of(state, purpose, token)?;
    let id = link.alert;
    let (alert, (confirmed, reported)) = state
        .db
        .run(move |c| -> Result<_> {
            let alert = link.find(c)?.ok_or(Error::NotFound)?;
            Ok((alert, db::alerts::find_answers(c, id)?))
        })
        .await?;
    let details: Details = serde_json::from_str(&alert.details)
        .map_err(|e| Error::Internal(format!("alert {id} details: {e}")))?;
    let answered = match purpose {
        LinkPurpose::Confirm => confirmed.is_some(),
        _ => reported.is_some(),
    };
    Ok(Question { details, answered })
}

/// "Yes, it was me": true the first time.
#[instrument(skip_all, err)]
pub async fn confirm(state: &AppState, token: &str) -> Result<bool> {
    let link = alert_of(state, LinkPurpose::Confirm, token)?;
    let id = link.alert;
    let now = crate::clock::now();
    let done = state
        .db
        .run(move |c| -> Result<bool> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let alert = link.find(&tx)?.ok_or(Error::NotFound)?;
            if !db::alerts::update_confirmed(&tx, id, now)? {
                return Ok(false);
            }
            crate::domain::audit::events::record_about(
                &tx,
                crate::model::EventType::AlertConfirmed,
                alert.user_id,
                now,
                |e| e.actor(Some(alert.user_id)).detail("alert_id", id),
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await?;
    if done {
        tracing::info!(alert = id, "sign-in confirmed from the alert email");
    }
    Ok(done)
}

/// "No, secure my account": `None` when it was reported before (nothing is done twice).
#[instrument(skip_all, err)]
pub async fn secure(state: &AppState, token: &str) -> Result<Option<Secured>> {
    let link = alert_of(state, LinkPurpose::Secure, token)?;
    let id = link.alert;
    let now = crate::clock::now();
    let mail_enabled = state.mailer.is_some();
    let (key, ttl) = (state.link_key.clone(), state.reset_ttl());
    let done = state
        .db
        .run(move |c| -> Result<Option<(UserId, Secured)>> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let alert = link.find(&tx)?.ok_or(Error::NotFound)?;
            if !db::alerts::update_reported(&tx, id, now)? {
                return Ok(None);
            }
            let user = db::users::find_by_id(&tx, alert.user_id)?.ok_or(Error::NotFound)?;
            let sessions_ended = db::sessions::end_all_for_user(
                &tx,
                user.id,
                None,
                now,
                Some(user.id),
                EndReason::Terminated,
            )?;
            crate::domain::audit::events::record(
                &tx,
                crate::domain::audit::events::NewEvent::new(
                    crate::model::EventType::AlertReported,
                    now,
                )
                .user(user.id, user.account_id)
                .actor(Some(user.id))
                .detail("alert_id", id)
                .detail("sessions_ended", sessions_ended.len()),
            )?;
            crate::domain::audit::events::record_ended(&tx, &sessions_ended, now)?;
            let sessions_ended = sessions_ended.len();
            let devices_forgotten = db::devices::delete_for_user(&tx, user.id)?;
            let reported: Details = serde_json::from_str(&alert.details)
                .map_err(|e| Error::Internal(format!("alert {id} details: {e}")))?;
            let admins = db::users::find_admins_of(&tx, user.account_id, user.id)?;
            for admin in &admins {
                let details = Details {
                    to_email: admin.email.clone(),
                    to_name: admin.name.clone(),
                    about: Some(user.email.clone()),
                    ..reported.clone()
                };
                alerts::enqueue_notice(&tx, NOT_ME_REPORT, admin.id, &details, mail_enabled)?;
            }
            // The password-reset link (SPEC §11): whoever signed in may know the password.
            let reset_link_sent = mail_enabled && user.status == crate::model::UserStatus::Active;
            if reset_link_sent {
                crate::domain::alerts::links::reset_link_in(
                    &tx,
                    &key,
                    &user,
                    now,
                    ttl,
                    mail_enabled,
                )?;
            }
            tx.commit()?;
            Ok(Some((
                user.id,
                Secured {
                    sessions_ended,
                    devices_forgotten,
                    admins_told: admins.len(),
                    reset_link_sent,
                },
            )))
        })
        .await?;
    let Some((user, secured)) = done else {
        return Ok(None);
    };
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::warn!(
        alert = id,
        user_id = %user,
        sessions = secured.sessions_ended,
        "a sign-in was reported as not the person's; account secured"
    );
    Ok(Some(secured))
}
