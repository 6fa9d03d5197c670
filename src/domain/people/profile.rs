//! A person's own profile (SPEC §11): their name, and changing their email, which
//! takes a confirmation from the new address (the change happens only then) and tells
//! the old one twice: when the change is asked for, with a link that cancels it (SPEC
//! §19), and when it is made. The password change is `users::change_own_password`.

use rusqlite::TransactionBehavior;
use tracing::instrument;

use crate::db;
use crate::db::links::LinkRow;
use crate::domain::alerts::links::{
    self, LinkKind, MAIL_EMAIL_CHANGE_REQUESTED, MAIL_EMAIL_CHANGED, MAIL_EMAIL_CONFIRM, TeamMail,
};
use crate::domain::attempts::check_current_password;
use crate::domain::people::users::{validate_email, validate_name};
use crate::error::{Error, Result};
use crate::model::User;
use crate::model::{Authed, ClientInfo};
use crate::state::AppState;

/// How long an email-change confirmation link works (and the old address's link that
/// cancels it: the change cannot happen later).
pub const EMAIL_LINK_TTL: i64 = 24 * 3600;

/// Sets the caller's display name.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn rename(state: &AppState, me: &Authed, name: &str) -> Result<User> {
    validate_name("name", name)?;
    let (id, name) = (me.principal.user_id, name.trim().to_string());
    state
        .db
        .run(move |c| -> Result<_> {
            db::users::update_name(c, id, &name)?;
            db::users::find_by_id(c, id)?.ok_or(Error::NotFound)
        })
        .await
}

fn email_taken() -> Error {
    Error::conflict("email_taken", "A user with that email already exists.")
}

/// Asks to change the caller's email: the current password again (under the sign-in
/// limits), then a confirmation link to the new address and, to the old one, a notice
/// with a link that cancels the change. Nothing changes until the confirmation link is
/// used; a newer request replaces an older one (and its cancel link).
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn request_email_change(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    new_email: &str,
    current_password: String,
) -> Result<()> {
    let new_email = new_email.trim().to_string();
    validate_email(&new_email)?;
    if new_email.eq_ignore_ascii_case(&me.principal.email) {
        return Err(Error::invalid(
            "same_email",
            "That is already your email address.",
        ));
    }
    check_current_password(state, me, client, current_password).await?;
    let (id, key) = (me.principal.user_id, state.link_key.clone());
    let mail_enabled = state.mailer.is_some();
    state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if db::users::find_by_email(&tx, &new_email)?.is_some() {
                return Err(email_taken());
            }
            let user = db::users::find_by_id(&tx, id)?.ok_or(Error::NotFound)?;
            let now = crate::clock::now();
            let link = links::issue(
                &tx,
                &key,
                LinkKind::Email,
                id,
                Some(&new_email),
                now,
                EMAIL_LINK_TTL,
            )?;
            let cancel = links::issue(
                &tx,
                &key,
                LinkKind::EmailCancel,
                id,
                Some(&new_email),
                now,
                EMAIL_LINK_TTL,
            )?;
            let mail = TeamMail {
                to_email: new_email.clone(),
                to_name: user.name.clone(),
                at: now,
                link_seed: Some(link.seed),
                link_expires_at: link.expires_at,
                old_email: user.email.clone(),
                new_email,
                ..TeamMail::default()
            };
            links::enqueue(&tx, MAIL_EMAIL_CONFIRM, id, &mail, mail_enabled)?;
            let notice = TeamMail {
                to_email: user.email.clone(),
                link_seed: Some(cancel.seed),
                link_expires_at: cancel.expires_at,
                ..mail
            };
            links::enqueue(&tx, MAIL_EMAIL_CHANGE_REQUESTED, id, &notice, mail_enabled)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!("email change requested");
    Ok(())
}

/// What an open confirmation link would change: (the user, the new address).
pub async fn email_change_target(state: &AppState, token: &str) -> Result<(User, String)> {
    let token = token.to_string();
    state
        .db
        .run(move |c| -> Result<_> {
            let link = links::open_link(c, &token, LinkKind::Email, crate::clock::now())?;
            let user = db::users::find_by_id(c, link.user_id)?.ok_or(Error::NotFound)?;
            Ok((user, link.new_email.unwrap_or_default()))
        })
        .await
}

/// Uses a confirmation link: the email changes (if the address is still free) and the
/// old address gets a notice.
#[instrument(skip_all, err(level = "debug"))]
pub async fn confirm_email_change(state: &AppState, token: &str) -> Result<User> {
    let token = token.to_string();
    let mail_enabled = state.mailer.is_some();
    let result = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = crate::clock::now();
            let link = links::use_link(&tx, &token, LinkKind::Email, now)?;
            let user = db::users::find_by_id(&tx, link.user_id)?.ok_or(Error::NotFound)?;
            let new_email = link.new_email.unwrap_or_default();
            if validate_email(&new_email).is_err() {
                return Err(Error::NotFound);
            }
            if db::users::find_by_email(&tx, &new_email)?.is_some_and(|u| u.id != user.id) {
                return Err(email_taken());
            }
            db::users::update_email(&tx, user.id, &new_email)?;
            // The link went to the new address only: following it proves it.
            db::users::update_email_verified(&tx, user.id, true)?;
            crate::domain::audit::events::record(
                &tx,
                crate::domain::audit::events::NewEvent::new(
                    crate::model::EventType::UserEmailChanged,
                    now,
                )
                .user(user.id, user.account_id)
                .actor(Some(user.id)),
            )?;
            let mail = TeamMail {
                to_email: user.email.clone(),
                to_name: user.name.clone(),
                at: now,
                old_email: user.email.clone(),
                new_email: new_email.clone(),
                ..TeamMail::default()
            };
            links::enqueue(&tx, MAIL_EMAIL_CHANGED, user.id, &mail, mail_enabled)?;
            let changed = db::users::find_by_id(&tx, user.id)?.ok_or(Error::NotFound)?;
            tx.commit()?;
            Ok(changed)
        })
        .await;
    let user = match result {
        Err(e) if e.is_unique_violation() => return Err(email_taken()),
        other => other?,
    };
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(user_id = %user.id, "email changed");
    Ok(user)
}

/// The email change a cancel link is about, while it is still pending (its
/// confirmation link unused, not replaced, not expired); otherwise the refusal that
/// says what became of it.
fn pending_change(c: &rusqlite::Connection, cancel: &LinkRow, now: i64) -> Result<LinkRow> {
    let refused = |code: &'static str, message: String| -> Result<LinkRow> {
        Err(Error::invalid(code, message))
    };
    let Some(change) = db::links::find_latest(c, cancel.user_id, LinkKind::Email.as_str())? else {
        return refused(
            "nothing_to_cancel",
            "There is no email change to cancel.".into(),
        );
    };
    if change.new_email != cancel.new_email || change.created_at != cancel.created_at {
        return refused(
            "link_revoked",
            "This email change was replaced by a newer one. Use the link of the newest email \
             about it."
                .into(),
        );
    }
    if change.used_at.is_some() {
        return refused(
            "email_change_done",
            format!(
                "This change was already made: the account's email is now {}. If it was not \
                 you, tell your administrator at once.",
                change.new_email.unwrap_or_default()
            ),
        );
    }
    if change.revoked_at.is_some() || change.expires_at <= now {
        return refused(
            "nothing_to_cancel",
            "This email change is no longer pending: it was cancelled or has expired, and the \
             email stays as it is."
                .into(),
        );
    }
    Ok(change)
}

/// What an open cancel link would cancel: (the user, the new address asked for).
pub async fn email_cancel_target(state: &AppState, token: &str) -> Result<(User, String)> {
    let token = token.to_string();
    state
        .db
        .run(move |c| -> Result<_> {
            let now = crate::clock::now();
            let cancel = links::open_link(c, &token, LinkKind::EmailCancel, now)?;
            let change = pending_change(c, &cancel, now)?;
            let user = db::users::find_by_id(c, cancel.user_id)?.ok_or(Error::NotFound)?;
            Ok((user, change.new_email.unwrap_or_default()))
        })
        .await
}

/// Uses a cancel link: the pending change's confirmation link stops working, and the
/// email stays as it is. Returns (the user, the address that was asked for).
#[instrument(skip_all, err(level = "debug"))]
pub async fn cancel_email_change(state: &AppState, token: &str) -> Result<(User, String)> {
    let token = token.to_string();
    let (user, new_email) = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = crate::clock::now();
            let cancel = links::use_link(&tx, &token, LinkKind::EmailCancel, now)?;
            let change = pending_change(&tx, &cancel, now)?;
            db::links::revoke_open(&tx, cancel.user_id, LinkKind::Email.as_str(), now)?;
            let user = db::users::find_by_id(&tx, cancel.user_id)?.ok_or(Error::NotFound)?;
            tx.commit()?;
            Ok((user, change.new_email.unwrap_or_default()))
        })
        .await?;
    tracing::info!(user_id = %user.id, "email change cancelled from the old address");
    Ok((user, new_email))
}
