//! Signing a session out of one application (SPEC §21, "one app at a time"): its grants
//! for that client end, with their tokens, and the client's logout token is queued (the
//! triggers of `migrations/0016_backchannel_logout.sql`); the Doorman session stays.

use rusqlite::TransactionBehavior;
use tracing::instrument;

use crate::db;
use crate::domain::permissions::{admin_scope, check_in_rank};
use crate::error::{Error, Result};
use crate::model::{Authed, Principal, Session};
use crate::state::AppState;

/// Whose session the caller may sign out of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// One of the caller's own sessions (the current one too).
    Owner,
    /// A session in the caller's admin scope and rank, as the admin session end.
    Admin,
}

/// Ends the grants of the session `id` (public id) for `client_id`. Not found when the
/// session is not active, not the caller's to manage, or holds no live grant of it.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn sign_out_of_app(
    state: &AppState,
    me: &Authed,
    id: &str,
    client_id: &str,
    who: As,
) -> Result<()> {
    if who == As::Admin {
        admin_scope(&me.principal)?;
    }
    let principal = me.principal.clone();
    let (id, client_id) = (id.to_string(), client_id.to_string());
    state
        .db
        .run(move |c| -> Result<()> {
            let now = crate::clock::now();
            let s = find_managed(c, &principal, &id, who)?;
            if !s.is_active(now) {
                return Err(Error::NotFound);
            }
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = db::oidc_grants::end_for_session_client(&tx, s.pk, &client_id, now)?;
            if n == 0 {
                return Err(Error::NotFound);
            }
            tx.commit()?;
            tracing::info!(client_id = %client_id, "session signed out of an application");
            Ok(())
        })
        .await
}

/// The session `id` (public id) when the caller may manage it as `who`, live or ended.
fn find_managed(
    c: &rusqlite::Connection,
    principal: &Principal,
    id: &str,
    who: As,
) -> Result<Session> {
    let Some(s) = db::sessions::find_by_public_id(c, id)? else {
        return Err(Error::NotFound);
    };
    let allowed = match who {
        As::Owner => s.user_id == principal.user_id,
        As::Admin => match db::users::find_by_id(c, s.user_id)? {
            Some(owner) => check_in_rank(principal, s.account_id, owner.role).is_ok(),
            None => false,
        },
    };
    if allowed { Ok(s) } else { Err(Error::NotFound) }
}

/// The apps the session `id` signed in to and where each one's sign-out stands, for the
/// notice after ending it or signing it out of one app: read after the fact, so that
/// the page says what happened ("Signed out of Grafana just now", "Nextcloud: will sign
/// out at its next check"). Empty when the caller may not manage the session.
pub async fn apps_of(
    state: &AppState,
    me: &Authed,
    id: &str,
    who: As,
) -> Result<Vec<crate::model::SignedInApp>> {
    if who == As::Admin {
        admin_scope(&me.principal)?;
    }
    let principal = me.principal.clone();
    let id = id.to_string();
    state
        .db
        .run(move |c| -> Result<_> {
            match find_managed(c, &principal, &id, who) {
                Ok(s) => Ok(s.signed_in_to),
                Err(Error::NotFound) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await
}
