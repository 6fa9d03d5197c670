//! Which sign-in alerts a person gets (SPEC §14), and the lock an admin puts on them for
//! their account. Security notices (password changed, "not me" reports) are not
//! preferences: they are always sent.

use tracing::instrument;

use crate::db;
use crate::domain::permissions::admin_scope;
use crate::error::{Error, Result};
use crate::model::Principal;
use crate::model::{AccountId, AlertPrefs};
use crate::state::AppState;

/// What the preferences section shows.
#[derive(Debug, Clone, Copy)]
pub struct Preferences {
    /// The person's own choices.
    pub chosen: AlertPrefs,
    /// Their account locks every alert on: [`Self::chosen`] does not apply.
    pub locked: bool,
}

impl Preferences {
    /// What is sent.
    pub fn effective(&self) -> AlertPrefs {
        if self.locked {
            AlertPrefs::default()
        } else {
            self.chosen
        }
    }
}

pub async fn mine(state: &AppState, me: &Principal) -> Result<Preferences> {
    let user = me.user_id;
    let (chosen, locked) = state
        .db
        .run(move |c| db::alert_prefs::find(c, user))
        .await?;
    Ok(Preferences { chosen, locked })
}

/// Saves the person's choices; refused while their account locks them.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.user_id))]
pub async fn set_mine(state: &AppState, me: &Principal, prefs: AlertPrefs) -> Result<()> {
    let (user, account) = (me.user_id, me.account_id);
    state
        .db
        .run(move |c| -> Result<()> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if db::alert_prefs::is_locked(&tx, account)? {
                return Err(Error::conflict(
                    "alerts_locked",
                    "An administrator keeps every sign-in alert on for your account.",
                ));
            }
            db::alert_prefs::upsert(&tx, user, &prefs)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    tracing::info!(?prefs, "alert preferences saved");
    Ok(())
}

/// Locks (or unlocks) every sign-in alert on for an account's people: its admins, or the
/// owner for any account. Outside the caller's scope is `NotFound`.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.user_id))]
pub async fn set_lock(
    state: &AppState,
    me: &Principal,
    account: AccountId,
    locked: bool,
) -> Result<()> {
    if !admin_scope(me)?.covers(account) {
        return Err(Error::NotFound);
    }
    let found = state
        .db
        .run(move |c| db::alert_prefs::update_locked(c, account, locked))
        .await?;
    if !found {
        return Err(Error::NotFound);
    }
    tracing::info!(%account, locked, "account alert lock changed");
    Ok(())
}
