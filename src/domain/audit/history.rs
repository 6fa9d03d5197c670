//! Sign-in history (login records): one's own, and for admins, their users'.

use crate::db;
pub use crate::db::login_records::LoginRecord;
use crate::domain::permissions::{admin_scope, check_in_rank};
use crate::error::{Error, Result};
use crate::model::Authed;
use crate::model::UserId;
use crate::state::AppState;

pub struct RecordPage {
    pub items: Vec<LoginRecord>,
    pub next_cursor: Option<String>,
}

/// Records of `user` (the caller when None), newest first. Another user's records need
/// an admin scope covering them; otherwise NotFound.
pub async fn list(
    state: &AppState,
    me: &Authed,
    user: Option<i64>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<RecordPage> {
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::invalid(
            "invalid_limit",
            "limit must be between 1 and 200.",
        ));
    }
    let before = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            Error::invalid(
                "invalid_cursor",
                "The cursor is not one this server gave out.",
            )
        })?),
        None => None,
    };
    let target = UserId(user.unwrap_or(me.principal.user_id.0));
    if target != me.principal.user_id {
        admin_scope(&me.principal)?;
        let found = state
            .db
            .run(move |c| db::users::find_by_id(c, target))
            .await?
            .ok_or(Error::NotFound)?;
        check_in_rank(&me.principal, found.account_id, found.role)?;
    }
    let mut items = state
        .db
        .run(move |c| db::login_records::list_for_user(c, target, before, limit + 1))
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(RecordPage { items, next_cursor })
}
