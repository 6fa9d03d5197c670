//! "Forgot your password?" (SPEC §11): the request, which answers the same whether or
//! not the address is known (the work is done after the answer, so its time tells
//! nothing either), and the reset, which ends every session and forgets the devices.

use std::net::IpAddr;

use rusqlite::TransactionBehavior;
use tracing::instrument;

use crate::db;
use crate::domain::alerts::Details;
use crate::domain::alerts::links::{self, LinkKind, MAIL_PASSWORD_RESET};
use crate::error::{Error, Result};
use crate::model::{EndReason, User, UserStatus};
use crate::state::AppState;

/// The one answer to every request, known address or not.
pub const FORGOT_ANSWER: &str = "If an account exists for that address, we have sent a link.";

/// Takes a reset request. Returns at once, the same for every address: the lookup and
/// the email happen afterwards, in the background, and only an active user within
/// the limits gets a link (invited and disabled users get none).
pub fn request_reset(state: &AppState, email: &str, ip: IpAddr) {
    let email: String = email.trim().chars().take(254).collect();
    if email.is_empty() || !state.reset_limits.allow(&email, ip, crate::clock::now()) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(err) = send_reset_link(&state, email).await {
            tracing::warn!(%err, "could not queue a password reset link");
        }
    });
}

async fn send_reset_link(state: &AppState, email: String) -> Result<()> {
    let (key, ttl) = (state.link_key.clone(), state.reset_ttl());
    let mail_enabled = state.mailer.is_some();
    let sent = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(user) = db::users::find_by_email(&tx, &email)? else {
                return Ok(false);
            };
            if user.status != UserStatus::Active {
                return Ok(false);
            }
            let now = crate::clock::now();
            crate::domain::alerts::links::reset_link_in(&tx, &key, &user, now, ttl, mail_enabled)?;
            tx.commit()?;
            Ok(true)
        })
        .await?;
    if sent {
        tracing::info!("password reset link queued");
        if mail_enabled {
            state.mail_wakeup.notify_one();
        }
    }
    Ok(())
}

/// Who an open reset link is for (the reset page, GET: changes nothing).
pub async fn reset_target(state: &AppState, token: &str) -> Result<User> {
    let token = token.to_string();
    state
        .db
        .run(move |c| -> Result<_> {
            let link = links::open_link(c, &token, LinkKind::Reset, crate::clock::now())?;
            active_user(c, link.user_id)
        })
        .await
}

fn active_user(c: &rusqlite::Connection, id: crate::model::UserId) -> Result<User> {
    match db::users::find_by_id(c, id)? {
        Some(u) if u.status == UserStatus::Active => Ok(u),
        _ => Err(Error::invalid(
            "link_revoked",
            "This password reset link no longer works for this account. Ask your administrator.",
        )),
    }
}

/// Sets a new password with a reset link: uses the link (once), ends every session of
/// the user (`password_reset`), forgets their devices so that the next sign-in from
/// any device alerts, and emails a notice. Returns how many sessions ended.
#[instrument(skip_all, err(level = "debug"))]
pub async fn reset_password(state: &AppState, token: &str, password: String) -> Result<usize> {
    let user = reset_target(state, token).await?;
    state
        .hasher
        .check_policy(&password, &[user.email.as_str(), user.name.as_str()])?;
    let hash = state.hasher.hash(password).await?;
    let token = token.to_string();
    let mail_enabled = state.mailer.is_some();
    let (ended, user) = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = crate::clock::now();
            let link = links::use_link(&tx, &token, LinkKind::Reset, now)?;
            let user = active_user(&tx, link.user_id)?;
            db::users::update_password(&tx, user.id, &hash)?;
            // The link went to the address only: following it proves the address.
            db::users::update_email_verified(&tx, user.id, true)?;
            db::links::revoke_open(&tx, user.id, LinkKind::Reset.as_str(), now)?;
            let ended = db::sessions::end_all_for_user(
                &tx,
                user.id,
                None,
                now,
                Some(user.id),
                EndReason::PasswordReset,
            )?;
            crate::domain::audit::events::record(
                &tx,
                crate::domain::audit::events::NewEvent::new(
                    crate::model::EventType::UserPasswordReset,
                    now,
                )
                .user(user.id, user.account_id)
                .actor(Some(user.id))
                .detail("sessions_ended", ended.len()),
            )?;
            crate::domain::audit::events::record_ended(&tx, &ended, now)?;
            let ended = ended.len();
            db::devices::delete_for_user(&tx, user.id)?;
            let notice = Details::notice(&user.email, &user.name, now, None);
            let notice = Details {
                device: String::new(),
                ..notice
            };
            crate::domain::alerts::enqueue_notice(
                &tx,
                MAIL_PASSWORD_RESET,
                user.id,
                &notice,
                mail_enabled,
            )?;
            tx.commit()?;
            Ok((ended, user))
        })
        .await?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(user_id = %user.id, ended, "password reset with a link");
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::attempts::limits::{
        PER_EMAIL_PER_HOUR, PER_IP_PER_HOUR, RESET_WINDOW, ResetLimits,
    };

    #[test]
    fn limits_per_email_and_per_address() {
        let limits = ResetLimits::default();
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        for _ in 0..PER_EMAIL_PER_HOUR {
            assert!(limits.allow("Ann@acme.test", ip, 1000));
        }
        assert!(
            !limits.allow("ann@acme.test", ip, 1000),
            "fourth for the email"
        );
        assert!(
            limits.allow("ann@acme.test", ip, 1000 + RESET_WINDOW),
            "an hour later"
        );
        let other: IpAddr = "198.51.100.7".parse().unwrap();
        let allowed = (0..20)
            .filter(|i| limits.allow(&format!("p{i}@x.test"), other, 5000))
            .count();
        assert_eq!(allowed, PER_IP_PER_HOUR);
    }
}
