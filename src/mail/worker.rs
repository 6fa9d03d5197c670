//! The outbox worker: sends pending alerts, one at a time, retrying with exponential
//! backoff. A sign-in only writes the outbox row; it never waits on SMTP.
//!
//! Delivery is at least once: a row is marked sent only after the SMTP server accepted
//! the message. If Doorman dies between the two, the message is sent again after the
//! restart, with the same Message-ID so the duplicate can be recognised.

use std::time::Duration;

use crate::domain::alerts::responses::NOT_ME_REPORT;
use crate::domain::alerts::{
    self, AlertLink, Details, LinkPurpose, OutboxRow, PASSWORD_CHANGED, Reasons, sign_link_for,
};
use crate::mail::Mailer;
use crate::mail::templates::{
    self, NewSignIn, new_sign_in, not_me_report, password_changed, session_moved,
};
use crate::paths::{ALERT_CONFIRM, ALERT_END, ALERT_SECURE, PROFILE, SESSIONS};

/// A security notice's template.
type Notice =
    fn(&lettre::message::Mailbox, &Details, &str, &str) -> Result<lettre::Message, String>;
use crate::state::AppState;

/// How often the queue is looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(5);
/// Attempts before an alert is marked `failed` (about a day of backoff).
const MAX_ATTEMPTS: i64 = 16;

/// Seconds to wait after `attempts` failed attempts: 5 s, 10 s, 20 s … at most 1 hour.
pub fn backoff(attempts: i64) -> i64 {
    let exp = attempts.clamp(0, 20) as u32;
    (5i64.saturating_mul(1i64 << exp)).min(3600)
}

pub fn spawn(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some(mailer) = state.mailer.clone() else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let sent_something = match send_next(&state, &mailer).await {
                Ok(did) => did,
                Err(err) => {
                    tracing::warn!(%err, "alert outbox unavailable");
                    false
                }
            };
            if sent_something {
                if *shutdown.borrow() {
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = state.mail_wakeup.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// Sends the next due alert, if any; true when there was one.
async fn send_next(state: &AppState, mailer: &Mailer) -> crate::error::Result<bool> {
    let Some(alert) = alerts::next_due(state).await? else {
        return Ok(false);
    };
    let id = alert.id;
    // In its own task, so that a panic while building or sending one message becomes a
    // failed attempt of that alert instead of stopping the worker for everyone.
    let (st, m, a) = (state.clone(), mailer.clone(), alert.clone());
    let attempt = tokio::spawn(async move {
        match build(&st, &m, &a) {
            Ok(message) => m.send(message).await,
            Err(e) => Err(e),
        }
    });
    let result = match attempt.await {
        Ok(r) => r,
        Err(e) => Err(format!("sending failed unexpectedly: {e}")),
    };
    match result {
        Ok(()) => {
            alerts::mark_sent(state, &alert).await?;
            tracing::info!(alert = id, "alert email sent");
        }
        Err(error) => {
            let attempts = alert.attempts + 1;
            let give_up = attempts >= MAX_ATTEMPTS;
            tracing::warn!(alert = id, attempts, %error, give_up, "alert email not sent");
            alerts::mark_failed(state, id, backoff(alert.attempts), error, give_up).await?;
        }
    }
    Ok(true)
}

/// The emails of team management, from their frozen details: the link is derived
/// again from its seed (the outbox never holds the link's secret).
fn build_team(
    state: &AppState,
    mailer: &Mailer,
    alert: &OutboxRow,
) -> Option<Result<lettre::Message, String>> {
    use crate::domain::alerts::links::{
        MAIL_EMAIL_CHANGE_REQUESTED, MAIL_EMAIL_CHANGED, MAIL_EMAIL_CONFIRM, MAIL_INVITATION,
        MAIL_PASSWORD_RESET, MAIL_RESET_LINK, TeamMail, token_for,
    };
    use crate::mail::team;
    use crate::paths::{EMAIL_CANCEL, EMAIL_CONFIRM, INVITE, LOGIN, PROFILE, RESET};
    let kind = alert.reasons.as_str();
    let base = state.config.server.public_base();
    let (from, id) = (&mailer.from, alert.message_id.as_str());
    if kind == MAIL_PASSWORD_RESET {
        return Some(
            serde_json::from_str::<Details>(&alert.details)
                .map_err(|e| format!("notice details: {e}"))
                .and_then(|d| team::password_reset(from, &d, &format!("{base}{LOGIN}"), id)),
        );
    }
    let path = match kind {
        MAIL_INVITATION => INVITE,
        MAIL_RESET_LINK => RESET,
        MAIL_EMAIL_CONFIRM => EMAIL_CONFIRM,
        MAIL_EMAIL_CHANGE_REQUESTED => EMAIL_CANCEL,
        MAIL_EMAIL_CHANGED => PROFILE,
        _ => return None,
    };
    let m: TeamMail = match serde_json::from_str(&alert.details) {
        Ok(m) => m,
        Err(e) => return Some(Err(format!("email details: {e}"))),
    };
    let url = match &m.link_seed {
        Some(seed) => format!("{base}{path}?token={}", token_for(&state.link_key, seed)),
        None => format!("{base}{path}"),
    };
    Some(match kind {
        MAIL_INVITATION => team::invitation(from, &m, &url, id),
        MAIL_RESET_LINK => team::reset_link(from, &m, &url, id),
        MAIL_EMAIL_CONFIRM => team::email_confirm(from, &m, &url, id),
        MAIL_EMAIL_CHANGE_REQUESTED => team::email_change_requested(from, &m, &url, id),
        _ => team::email_changed(from, &m, &url, id),
    })
}

fn build(state: &AppState, mailer: &Mailer, alert: &OutboxRow) -> Result<lettre::Message, String> {
    if let Some(message) = build_team(state, mailer, alert) {
        return message;
    }
    let details: Details =
        serde_json::from_str(&alert.details).map_err(|e| format!("alert details: {e}"))?;
    let base = state.config.server.public_base();
    let sessions_url = format!("{base}{SESSIONS}");
    let factor_notice = match alert.reasons.as_str() {
        alerts::SECOND_FACTOR_ADDED => Some(templates::second_factor_added as Notice),
        alerts::SECOND_FACTOR_REMOVED => Some(templates::second_factor_removed as Notice),
        alerts::RECOVERY_CODE_USED => Some(templates::recovery_code_used as Notice),
        alerts::SECOND_FACTORS_RESET => Some(templates::second_factors_reset as Notice),
        _ => None,
    };
    if let Some(notice) = factor_notice {
        return notice(&mailer.from, &details, &sessions_url, &alert.message_id);
    }
    if alert.reasons == PASSWORD_CHANGED {
        return password_changed(
            &mailer.from,
            &details,
            &format!("{base}{SESSIONS}"),
            &alert.message_id,
        );
    }
    if alert.reasons == alerts::PASSWORD_KNOWN {
        return templates::password_known(
            &mailer.from,
            &details,
            &format!("{base}{PROFILE}"),
            &sessions_url,
            &alert.message_id,
        );
    }
    if alert.reasons == NOT_ME_REPORT {
        return not_me_report(&mailer.from, &details, &alert.message_id);
    }
    // The links work for as long as the session can live (the end link is checked
    // against the session itself when used), not only until the expiry the sign-in was
    // given.
    let max_lifetime = state.config.sessions.max_lifetime.as_secs() as i64;
    let link_expires = details
        .session_expires_at
        .max(details.at.saturating_add(max_lifetime));
    let link = |purpose: LinkPurpose, path: &str| {
        let to = AlertLink {
            alert: alert.id,
            user: alert.user_id,
        };
        let token = sign_link_for(&state.link_key, purpose, to, link_expires);
        format!("{base}{path}?t={token}")
    };
    let reasons = Reasons::parse(&alert.reasons);
    if reasons.moved {
        return session_moved(
            &mailer.from,
            &details,
            &format!("{base}{SESSIONS}"),
            &link(LinkPurpose::End, ALERT_END),
            &alert.message_id,
        );
    }
    new_sign_in(
        &mailer.from,
        &NewSignIn {
            details: &details,
            reasons,
            held_back: alert.held_back,
            sessions_url: format!("{base}{SESSIONS}"),
            end_url: link(LinkPurpose::End, ALERT_END),
            confirm_url: link(LinkPurpose::Confirm, ALERT_CONFIRM),
            secure_url: link(LinkPurpose::Secure, ALERT_SECURE),
            message_id: &alert.message_id,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), 5);
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(3), 40);
        assert_eq!(backoff(30), 3600);
    }
}
