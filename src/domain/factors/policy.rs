//! The policy that requires a second factor (SPEC §12, §19): of the whole install
//! (`security.require_second_factor`), an account, or one person; and an admin's reset
//! of someone's factors.

use rusqlite::Connection;
use tracing::instrument;

use crate::db::{self, DbError};
use crate::domain::alerts::{self, Details};
use crate::domain::permissions::{admin_scope, check_manage_user};
use crate::error::{Error, Result};
use crate::model::{AccountId, Authed, UserId};
use crate::state::AppState;

/// Whether a second factor is required of this user: by the install, their account or
/// their own flag.
pub(crate) fn required(state: &AppState, c: &Connection, user: UserId) -> Result<bool, DbError> {
    Ok(state.config.security.require_second_factor || db::second_factors::required_of(c, user)?)
}

/// An admin removes every second factor and recovery code of a user in scope: all the
/// user's sessions end, and the user is emailed. Returns how many sessions ended.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.principal.user_id, user_id = %id))]
pub async fn admin_reset(state: &AppState, me: &Authed, id: UserId) -> Result<usize> {
    admin_scope(&me.principal)?;
    let actor = me.principal.clone();
    let mail_enabled = state.mailer.is_some();
    let (factors, ended) = state
        .db
        .run(move |c| -> Result<(usize, usize)> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(target) = db::users::find_by_id(&tx, id)? else {
                return Err(Error::NotFound);
            };
            check_manage_user(&actor, &target)?;
            let now = crate::clock::now();
            let factors = db::second_factors::delete_all_for_user(&tx, id)?;
            let ended = db::sessions::end_all_for_user(
                &tx,
                id,
                None,
                now,
                Some(actor.user_id),
                crate::model::EndReason::TerminatedByAdmin,
            )?;
            crate::domain::audit::events::record(
                &tx,
                crate::domain::audit::events::NewEvent::new(
                    crate::model::EventType::UserSecondFactorsReset,
                    now,
                )
                .user(target.id, target.account_id)
                .actor(Some(actor.user_id))
                .detail("factors_removed", factors)
                .detail("sessions_ended", ended.len()),
            )?;
            crate::domain::audit::events::record_ended(&tx, &ended, now)?;
            let ended = ended.len();
            let notice = Details::notice(&target.email, &target.name, now, None);
            let notice = Details {
                device: "Changed by an administrator".into(),
                ..notice
            };
            alerts::enqueue_notice(&tx, alerts::SECOND_FACTORS_RESET, id, &notice, mail_enabled)?;
            tx.commit()?;
            Ok((factors, ended))
        })
        .await?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(factors, ended, "second factors reset by an admin");
    Ok(ended)
}

/// An admin requires (or stops requiring) a second factor of everyone in an account in
/// their scope.
pub async fn set_account_policy(
    state: &AppState,
    me: &Authed,
    account: AccountId,
    on: bool,
) -> Result<()> {
    let scope = admin_scope(&me.principal)?;
    if !scope.covers(account) {
        return Err(Error::NotFound);
    }
    let by = me.principal.user_id;
    let done = state
        .db
        .run(move |c| -> Result<bool> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = db::second_factors::required_for_account(&tx, account)?;
            if !db::second_factors::set_required_for_account(&tx, account, on)? {
                return Ok(false);
            }
            if before != on {
                let mut event = crate::domain::audit::events::NewEvent::new(
                    crate::model::EventType::PolicyChanged,
                    crate::clock::now(),
                )
                .actor(Some(by))
                .detail("policy", "require_second_factor")
                .detail("scope", "account")
                .detail("on", on);
                event.account = Some(account);
                crate::domain::audit::events::record(&tx, event)?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await?;
    if !done {
        return Err(Error::NotFound);
    }
    tracing::info!(account = %account, on, "second-factor policy changed");
    Ok(())
}

pub async fn account_policy(state: &AppState, account: AccountId) -> Result<bool> {
    Ok(state
        .db
        .run(move |c| db::second_factors::required_for_account(c, account))
        .await?)
}

/// An admin requires (or stops requiring) a second factor of one user in scope.
pub async fn set_user_policy(state: &AppState, me: &Authed, id: UserId, on: bool) -> Result<()> {
    let actor = me.principal.clone();
    state
        .db
        .run(move |c| -> Result<()> {
            let Some(target) = db::users::find_by_id(c, id)? else {
                return Err(Error::NotFound);
            };
            check_manage_user(&actor, &target)?;
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = db::second_factors::required_of_user_alone(&tx, id)?;
            db::second_factors::set_required_for_user(&tx, id, on)?;
            if before != on {
                crate::domain::audit::events::record(
                    &tx,
                    crate::domain::audit::events::NewEvent::new(
                        crate::model::EventType::PolicyChanged,
                        crate::clock::now(),
                    )
                    .user(id, target.account_id)
                    .actor(Some(actor.user_id))
                    .detail("policy", "require_second_factor")
                    .detail("scope", "user")
                    .detail("on", on),
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
}
