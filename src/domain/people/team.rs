//! Invitations and the admin's "send password reset" (SPEC §11). Creating an invited
//! user is `admin_users::create_user` with `invite`; this module makes and resends the
//! invitation, withdraws it, and lets the invited person accept it.

use rusqlite::{Connection, TransactionBehavior};
use tracing::instrument;

use crate::db::{self, DbError};
use crate::domain::alerts::links::{self, LinkKind, MAIL_INVITATION, TeamMail};
use crate::domain::people::users::validate_name;
use crate::domain::permissions::{admin_scope, check_manage_user};
use crate::domain::signin::flow::{SignInOutcome, SignInRequest, sign_in};
use crate::error::{Error, Result};
use crate::model::{ClientInfo, Principal};
use crate::model::{User, UserId, UserStatus};
use crate::paths;
use crate::state::AppState;

/// Makes `user`'s invitation link (replacing any earlier one) and queues its email, in
/// the caller's transaction. Returns the link's secret.
pub(crate) fn invite_in(
    tx: &Connection,
    key: &[u8],
    user: &User,
    invited_by: &str,
    now: i64,
    ttl: i64,
    mail_enabled: bool,
) -> Result<String, DbError> {
    let link = links::issue(tx, key, LinkKind::Invite, user.id, None, now, ttl)?;
    let mail = TeamMail {
        to_email: user.email.clone(),
        to_name: user.name.clone(),
        at: now,
        link_seed: Some(link.seed),
        link_expires_at: link.expires_at,
        account: user.account_name.clone(),
        invited_by: invited_by.to_string(),
        ..TeamMail::default()
    };
    links::enqueue(tx, MAIL_INVITATION, user.id, &mail, mail_enabled)?;
    Ok(link.token)
}

/// The address of an invitation link.
pub fn invite_url(state: &AppState, token: &str) -> String {
    format!(
        "{}{}?token={token}",
        state.config.server.public_base(),
        paths::INVITE
    )
}

/// The user an admin acts on, read in the action's transaction: in scope and rank, or
/// `NotFound`.
fn managed(tx: &Connection, me: &Principal, id: UserId) -> Result<User> {
    let target = db::users::find_by_id(tx, id)?.ok_or(Error::NotFound)?;
    check_manage_user(me, &target)?;
    Ok(target)
}

/// Sends a new invitation link to an invited user (the old link stops working).
/// Returns the new link, to show once.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.user_id, user_id = %id))]
pub async fn resend_invitation(state: &AppState, me: &Principal, id: UserId) -> Result<String> {
    admin_scope(me)?;
    let (me2, key) = (me.clone(), state.link_key.clone());
    let ttl = state.config.accounts.invite_ttl.as_secs() as i64;
    let mail_enabled = state.mailer.is_some();
    let token = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let target = managed(&tx, &me2, id)?;
            if target.status != UserStatus::Invited {
                return Err(Error::conflict(
                    "not_invited",
                    "This person has already accepted their invitation.",
                ));
            }
            let now = crate::clock::now();
            let token = invite_in(&tx, &key, &target, &me2.email, now, ttl, mail_enabled)?;
            tx.commit()?;
            Ok(token)
        })
        .await?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!("invitation resent");
    Ok(invite_url(state, &token))
}

/// Withdraws an invitation: the invited user (who has no data yet) is removed, and
/// their link stops working.
pub async fn revoke_invitation(state: &AppState, me: &Principal, id: UserId) -> Result<()> {
    crate::domain::people::privacy::erase_user(state, me, id, true).await?;
    tracing::info!(by = %me.user_id, user_id = %id, "invitation revoked");
    Ok(())
}

/// An admin sends a user in scope a password-reset link (their password and sessions
/// stay as they are until the link is used). Not for invited or disabled users.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.user_id, user_id = %id))]
pub async fn send_password_reset(state: &AppState, me: &Principal, id: UserId) -> Result<()> {
    admin_scope(me)?;
    let me = me.clone();
    let (key, ttl) = (state.link_key.clone(), state.reset_ttl());
    let mail_enabled = state.mailer.is_some();
    state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let target = managed(&tx, &me, id)?;
            match target.status {
                UserStatus::Active => {}
                UserStatus::Invited => {
                    return Err(Error::conflict(
                        "invited",
                        "This person has not accepted their invitation yet: resend the invitation instead.",
                    ));
                }
                UserStatus::Disabled => {
                    return Err(Error::conflict(
                        "user_disabled",
                        "This user is disabled: enable them first.",
                    ));
                }
            }
            links::reset_link_in(&tx, &key, &target, crate::clock::now(), ttl, mail_enabled)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!("password reset link sent by an admin");
    Ok(())
}

/// Who an open invitation link is for (the acceptance page, GET: changes nothing).
pub async fn invitation(state: &AppState, token: &str) -> Result<User> {
    let token = token.to_string();
    state
        .db
        .run(move |c| -> Result<_> {
            let link = links::open_link(c, &token, LinkKind::Invite, crate::clock::now())?;
            invited_user(c, link.user_id)
        })
        .await
}

fn invited_user(c: &Connection, id: UserId) -> Result<User> {
    match db::users::find_by_id(c, id)? {
        Some(u) if u.status == UserStatus::Invited => Ok(u),
        _ => Err(Error::invalid(
            "link_revoked",
            "This invitation link was withdrawn. Ask your administrator to send a new invitation.",
        )),
    }
}

/// Accepts an invitation: sets the person's name and password, uses the link (of two
/// acceptances at the same moment, one wins), and signs them in. That first sign-in
/// sends no alert (it is the user's first).
#[instrument(skip_all, err(level = "debug"))]
pub async fn accept_invitation(
    state: &AppState,
    token: &str,
    name: &str,
    password: String,
    device_id: Option<String>,
    client: ClientInfo,
) -> Result<SignInOutcome> {
    validate_name("name", name)?;
    let user = invitation(state, token).await?;
    state
        .hasher
        .check_policy(&password, &[user.email.as_str(), name])?;
    let hash = state.hasher.hash(password.clone()).await?;
    let (token, name) = (token.to_string(), name.trim().to_string());
    let user = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = crate::clock::now();
            let link = links::use_link(&tx, &token, LinkKind::Invite, now)?;
            let user = invited_user(&tx, link.user_id)?;
            db::users::update_password(&tx, user.id, &hash)?;
            db::users::update_name(&tx, user.id, &name)?;
            db::users::update_accepted(&tx, user.id)?;
            // The link was emailed, but the admin who invited also saw it: it proves
            // the address only where the account limits its domains (SPEC §19).
            let account = db::accounts::find_by_id(&tx, user.account_id)?;
            if account.is_some_and(|a| !a.email_domains.is_empty() && a.allows_email(&user.email)) {
                db::users::update_email_verified(&tx, user.id, true)?;
            }
            crate::domain::audit::events::record(
                &tx,
                crate::domain::audit::events::NewEvent::new(
                    crate::model::EventType::UserInvitationAccepted,
                    now,
                )
                .user(user.id, user.account_id)
                .actor(Some(user.id)),
            )?;
            tx.commit()?;
            Ok(user)
        })
        .await?;
    tracing::info!(user_id = %user.id, "invitation accepted");
    sign_in(
        state,
        SignInRequest {
            email: user.email,
            password,
            device_id,
            application: "web".into(),
            target: crate::paths::SESSIONS.into(),
        },
        client,
    )
    .await
}
