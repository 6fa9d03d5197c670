//! What the operator's command-line tools do, as rules: they run on the calling thread
//! (the CLI has no async runtime of its own) against the same storage as the server.

use std::path::Path;

use crate::db;
use crate::error::{Error, Result};
use crate::model::{EndReason, Session, User, UserId};
use crate::state::AppState;

pub use crate::db::alerts::AlertRow as AlertSummary;

/// Sessions listed at most by `doorman sessions list`.
const MAX_LISTED: i64 = 10_000;

pub fn find_user(state: &AppState, email: &str) -> Result<User> {
    state
        .db
        .blocking(|c| db::users::find_by_email(c, email))?
        .ok_or(Error::NotFound)
}

/// Sets the email domains of the account named `account` (SPEC §19); the domains as
/// stored.
pub fn set_email_domains(
    state: &AppState,
    account: &str,
    domains: &[String],
) -> Result<Vec<String>> {
    let domains = crate::domain::people::admin_users::email_domains(domains)?;
    state.db.blocking(|c| -> Result<_> {
        let found = db::accounts::find_by_name(c, account.trim())?.ok_or(Error::NotFound)?;
        db::accounts::update_email_domains(c, found.id, &domains)?;
        Ok(domains.clone())
    })
}

/// Active sessions, of one user or of everyone, newest activity first.
pub fn active_sessions(state: &AppState, user: Option<UserId>) -> Result<Vec<Session>> {
    let now = crate::clock::now();
    Ok(state
        .db
        .blocking(|c| db::sessions::list_active(c, user, now, MAX_LISTED))?)
}

/// Ends one active session by its public id, as an administrator would (the operator is
/// no user: `ended_by` stays empty). False when no active session has that id.
pub fn end_session(state: &AppState, public_id: &str) -> Result<bool> {
    let now = crate::clock::now();
    state.db.blocking(|c| -> Result<_> {
        match db::sessions::find_by_public_id(c, public_id)? {
            Some(s) if s.is_active(now) => {
                let tx = c.transaction()?;
                let ended = db::sessions::end(&tx, s.pk, now, None, EndReason::TerminatedByAdmin)?;
                crate::domain::audit::events::record_ended(&tx, ended.as_slice(), now)?;
                tx.commit()?;
                Ok(ended.is_some())
            }
            _ => Ok(false),
        }
    })
}

/// The newest alerts (and security notices) of the outbox.
pub fn recent_alerts(state: &AppState, limit: i64) -> Result<Vec<AlertSummary>> {
    Ok(state
        .db
        .blocking(|c| db::alerts::list_recent(c, limit.clamp(1, 10_000)))?)
}

/// Queues an unsent alert again, now. False when there is no such unsent alert.
pub fn retry_alert(state: &AppState, id: i64) -> Result<bool> {
    Ok(state
        .db
        .blocking(|c| db::alerts::update_retry(c, id, crate::clock::now()))?)
}

/// An online copy of the database to a new file, safe while a server writes.
pub fn backup(state: &AppState, dest: &Path) -> Result<()> {
    if dest.exists() {
        return Err(Error::invalid(
            "exists",
            format!("{} already exists; choose a new file", dest.display()),
        ));
    }
    state
        .db
        .backup(dest)
        .map_err(|e| Error::Internal(format!("backup failed: {e}")))
}
