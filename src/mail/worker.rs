//! The outbox worker: sends pending alerts, one at a time, retrying with exponential
//! backoff. A sign-in only writes the outbox row; it never waits on SMTP.
//!
//! Delivery is at least once: a row is marked sent only after the SMTP server accepted
//! the message. If Doorman dies between the two, the message is sent again after the
//! restart, with the same Message-ID so the duplicate can be recognised.

use std::time::Duration;

use crate::domain::alerts::{self, Details, OutboxRow, PASSWORD_CHANGED, Reasons, sign_link};
use crate::http::paths::{ALERT_END, SESSIONS};
use crate::mail::Mailer;
use crate::mail::templates::{NewSignIn, new_sign_in, password_changed};
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

fn build(state: &AppState, mailer: &Mailer, alert: &OutboxRow) -> Result<lettre::Message, String> {
    let details: Details =
        serde_json::from_str(&alert.details).map_err(|e| format!("alert details: {e}"))?;
    let base = state.config.server.public_base();
    if alert.reasons == PASSWORD_CHANGED {
        return password_changed(
            &mailer.from,
            &details,
            &format!("{base}{SESSIONS}"),
            &alert.message_id,
        );
    }
    // The link works for as long as the session can live (it is checked against the
    // session itself when used), not only until the expiry the sign-in was given.
    let max_lifetime = state.config.sessions.max_lifetime.as_secs() as i64;
    let link_expires = details
        .session_expires_at
        .max(details.at.saturating_add(max_lifetime));
    let token = sign_link(&state.link_key, alert.id, link_expires);
    new_sign_in(
        &mailer.from,
        &NewSignIn {
            details: &details,
            reasons: Reasons::parse(&alert.reasons),
            held_back: alert.held_back,
            sessions_url: format!("{base}{SESSIONS}"),
            end_url: format!("{base}{ALERT_END}?t={token}"),
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
