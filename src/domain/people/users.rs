//! Creating users and changing what ends their sessions (password, status).

use tracing::instrument;

use crate::db::users::NewUser;
use crate::db::{self, DbError};
use crate::domain::alerts::notices::{self, Details, PASSWORD_CHANGED};
use crate::domain::attempts::check_current_password;
use crate::domain::audit::events::{self, NewEvent, Origin};
use crate::error::{Error, Result};
use crate::model::{Authed, ClientInfo};
use crate::model::{EndReason, EventType, Role, User, UserId, UserStatus};
use crate::state::AppState;

pub struct CreateUser {
    pub account: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
}

/// A plain but strict check: one `@`, both sides present, no spaces or controls.
pub fn validate_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_email",
            "That is not a valid email address.",
        ))
    }
}

pub(crate) fn validate_name(label: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > 128 || value.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "invalid_name",
            format!("The {label} must be 1 to 128 characters, without control characters."),
        ));
    }
    Ok(())
}

/// Creates the user, and the account when it does not exist yet.
#[instrument(skip_all, err(level = "debug"))]
pub async fn create(state: &AppState, req: CreateUser) -> Result<User> {
    validate(state, &req)?;
    let hash = state.hasher.hash(req.password.clone()).await?;
    let result = state.db.run(move |c| insert(c, &req, &hash, false)).await;
    finish(result)
}

/// Creates the first owner (the setup page), in one transaction with the check that
/// no owner exists yet: once one does, however it was made, this is `NotFound`.
pub async fn create_first_owner(state: &AppState, req: CreateUser) -> Result<User> {
    validate(state, &req)?;
    let hash = state.hasher.hash(req.password.clone()).await?;
    let result = state.db.run(move |c| insert(c, &req, &hash, true)).await;
    finish(result)
}

/// Whether an owner exists.
pub async fn owner_exists(state: &AppState) -> Result<bool> {
    let n = state
        .db
        .run(|c| db::users::count_by_role(c, Role::Owner))
        .await?;
    Ok(n > 0)
}

/// The CLI's form of [`create`], on the calling thread.
pub fn create_blocking(state: &AppState, req: CreateUser) -> Result<User> {
    validate(state, &req)?;
    let hash = state.hasher.hash_now(&req.password)?;
    finish(state.db.blocking(|c| insert(c, &req, &hash, false)))
}

fn validate(state: &AppState, req: &CreateUser) -> Result<()> {
    validate_email(&req.email)?;
    validate_name("name", &req.name)?;
    validate_name("account name", &req.account)?;
    if req.account.contains(',') {
        return Err(Error::invalid(
            "invalid_account_name",
            "An account name cannot contain a comma.",
        ));
    }
    state
        .hasher
        .check_policy(&req.password, &[req.email.as_str(), req.name.as_str()])
}

fn insert(
    c: &mut rusqlite::Connection,
    req: &CreateUser,
    hash: &str,
    first_owner: bool,
) -> Result<Option<User>, DbError> {
    let now = crate::clock::now();
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if first_owner && db::users::count_by_role(&tx, Role::Owner)? > 0 {
        return Ok(None);
    }
    let account = match db::accounts::find_by_name(&tx, req.account.trim())? {
        Some(a) => a.id,
        None => db::accounts::insert(&tx, req.account.trim(), now)?,
    };
    let user = insert_user(
        &tx,
        &NewUser {
            account_id: account,
            email: req.email.trim(),
            name: req.name.trim(),
            role: req.role,
            password_hash: hash,
            now,
            invited: false,
            // The operator's own additions (command line, setup, bootstrap): the
            // operator vouches for the address as the owner does (SPEC §19).
            email_verified: true,
        },
        None,
    )?;
    tx.commit()?;
    Ok(Some(user))
}

/// Inserts a user in the caller's transaction and reads it back: the one way users are
/// created (CLI, setup, bootstrap, admins).
/// Records `user.created` (by `by`, none for the command line and setup).
pub(crate) fn insert_user(
    c: &rusqlite::Connection,
    new: &NewUser<'_>,
    by: Option<UserId>,
) -> Result<User, DbError> {
    let id = db::users::insert(c, new)?;
    let user = db::users::find_by_id(c, id)?
        .ok_or_else(|| DbError::Refused("user vanished during creation".into()))?;
    events::record(
        c,
        NewEvent::new(
            if new.invited {
                EventType::UserInvited
            } else {
                EventType::UserCreated
            },
            new.now,
        )
        .user(user.id, user.account_id)
        .actor(by)
        .detail("role", user.role.as_str()),
    )?;
    Ok(user)
}

fn finish(result: Result<Option<User>, DbError>) -> Result<User> {
    match result {
        Ok(None) => Err(Error::NotFound),
        Ok(Some(user)) => {
            tracing::info!(user_id = %user.id, role = %user.role, "user created");
            Ok(user)
        }
        Err(e) if e.is_unique_violation() => Err(Error::conflict(
            "email_taken",
            "A user with that email already exists.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The operator resets a password (the CLI): every session of the user ends
/// (`password_reset`), and the user is emailed that their password changed. Returns
/// how many sessions ended.
pub fn set_password_blocking(
    state: &AppState,
    user: UserId,
    password: &str,
    keep: Option<i64>,
) -> Result<usize> {
    let ended = state.db.blocking(|c| db::users::find_by_id(c, user))?;
    let Some(target) = ended else {
        return Err(Error::NotFound);
    };
    state
        .hasher
        .check_policy(password, &[target.email.as_str(), target.name.as_str()])?;
    let hash = state.hasher.hash_now(password)?;
    let mail_enabled = state.mailer.is_some();
    let ended = state.db.blocking(|c| -> Result<_> {
        let tx = c.transaction()?;
        let Some(target) = db::users::find_by_id(&tx, user)? else {
            return Ok(None);
        };
        let now = crate::clock::now();
        let details = Details::notice(&target.email, &target.name, now, None);
        let by = (None, &Origin::default());
        let n = replace_password(
            &tx,
            user,
            &hash,
            keep,
            &details,
            mail_enabled,
            (EndReason::PasswordReset, by.0, by.1),
        )?;
        tx.commit()?;
        Ok(Some(n))
    })?;
    ended.ok_or(Error::NotFound)
}

/// Disables (or re-enables) a user; disabling ends every session at once.
pub fn set_status_blocking(
    state: &AppState,
    user: UserId,
    status: UserStatus,
    by: Option<UserId>,
) -> Result<usize> {
    let ended = state.db.blocking(|c| set_status_tx(c, user, status, by))?;
    ended.ok_or(Error::NotFound)
}

pub async fn set_status(
    state: &AppState,
    user: UserId,
    status: UserStatus,
    by: Option<UserId>,
) -> Result<usize> {
    let ended = state
        .db
        .run(move |c| set_status_tx(c, user, status, by))
        .await?;
    ended.ok_or(Error::NotFound)
}

fn set_status_tx(
    c: &mut rusqlite::Connection,
    user: UserId,
    status: UserStatus,
    by: Option<UserId>,
) -> Result<Option<usize>, DbError> {
    let tx = c.transaction()?;
    let ended = apply_status(&tx, user, status, by, &Origin::default())?;
    if ended.is_some() {
        tx.commit()?;
    }
    Ok(ended)
}

/// The status change itself, inside the caller's transaction, so that callers with more
/// to check and change (the admin API) keep it in one transaction. Disabling ends every
/// session of the user. `None` when there is no such user.
pub(crate) fn apply_status(
    c: &rusqlite::Connection,
    user: UserId,
    status: UserStatus,
    by: Option<UserId>,
    origin: &Origin,
) -> Result<Option<usize>, DbError> {
    let Some(target) = db::users::find_by_id(c, user)? else {
        return Ok(None);
    };
    if !db::users::update_status(c, user, status)? {
        return Ok(None);
    }
    let now = crate::clock::now();
    let kind = match status {
        UserStatus::Disabled => EventType::UserDisabled,
        UserStatus::Active | UserStatus::Invited => EventType::UserEnabled,
    };
    if target.status != status {
        events::record(
            c,
            NewEvent::new(kind, now)
                .user(user, target.account_id)
                .actor(by)
                .origin(origin.clone()),
        )?;
    }
    let n = if status == UserStatus::Disabled {
        let ended =
            db::sessions::end_all_for_user(c, user, None, now, by, EndReason::UserDisabled)?;
        events::record_ended(c, &ended, now)?;
        ended.len()
    } else {
        0
    };
    Ok(Some(n))
}

/// A signed-in user changes their password: the current password is asked again
/// (re-authentication), then every other session ends (the current one too unless
/// `keep_current`), and the user is emailed a notice. The check of the current password
/// shares the sign-in limits (a stolen session cannot guess at it) and a wrong one
/// leaves a login record. Returns how many sessions ended.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn change_own_password(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    current: String,
    new: String,
    keep_current: bool,
) -> Result<usize> {
    state.hasher.check_policy(
        &new,
        &[me.principal.email.as_str(), me.principal.name.as_str()],
    )?;
    check_current_password(state, me, client, current).await?;
    let hash = state.hasher.hash(new).await?;
    let keep = keep_current.then_some(me.session.pk);
    let user = me.principal.user_id;
    let now = crate::clock::now();
    let details = Details::notice(
        &me.principal.email,
        &me.principal.name,
        now,
        Some(&crate::domain::alerts::notices::current_session(state, me).await?),
    );
    let mail_enabled = state.mailer.is_some();
    let origin = Origin::of(state, client);
    let ended = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction()?;
            let by = (Some(user), &origin);
            let n = replace_password(
                &tx,
                user,
                &hash,
                keep,
                &details,
                mail_enabled,
                (EndReason::PasswordChanged, by.0, by.1),
            )?;
            tx.commit()?;
            Ok(n)
        })
        .await?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(ended, "password changed");
    Ok(ended)
}

/// A password change, inside the caller's transaction: the new hash (which moves the
/// credentials version on, so that no sign-in checked against the old one can still
/// store a session), every session of the user but `keep` ended, and the notice queued.
/// Returns how many sessions ended.
fn replace_password(
    tx: &rusqlite::Connection,
    user: UserId,
    hash: &str,
    keep: Option<i64>,
    notice: &Details,
    mail_enabled: bool,
    (reason, actor, origin): (EndReason, Option<UserId>, &Origin),
) -> Result<usize> {
    db::users::update_password(tx, user, hash)?;
    let ended = db::sessions::end_all_for_user(tx, user, keep, notice.at, Some(user), reason)?;
    let kind = if reason == EndReason::PasswordReset {
        EventType::UserPasswordReset
    } else {
        EventType::UserPasswordChanged
    };
    if let Some(target) = db::users::find_by_id(tx, user)? {
        events::record(
            tx,
            NewEvent::new(kind, notice.at)
                .user(user, target.account_id)
                .actor(actor)
                .origin(origin.clone())
                .detail("sessions_ended", ended.len()),
        )?;
    }
    events::record_ended(tx, &ended, notice.at)?;
    notices::enqueue_notice(tx, PASSWORD_CHANGED, user, notice, mail_enabled)?;
    Ok(ended.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_validation() {
        assert!(validate_email("a@b.c").is_ok());
        for bad in ["", "a", "@b", "a@", "a b@c", "a@b@c", "<a@b>"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
