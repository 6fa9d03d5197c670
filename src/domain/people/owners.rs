//! The owners' rules (SPEC §2): the install always keeps an active owner, whatever an
//! admin changes or deletes.

use crate::db::{self, DbError};
use crate::error::Error;
use crate::model::{Role, User, UserStatus};

/// The active owners other than `target`, read in the caller's transaction: a change
/// or a deletion may not leave the install without one.
pub(crate) fn other_active_owners(
    tx: &rusqlite::Connection,
    target: &User,
) -> Result<i64, DbError> {
    if target.role != Role::Owner {
        return Ok(0);
    }
    let all = db::users::count_active_by_role(tx, Role::Owner)?;
    Ok(all - i64::from(target.status == UserStatus::Active))
}

/// The refusal of a change or deletion that would leave no active owner.
pub(crate) fn last_owner() -> Error {
    Error::conflict(
        "last_owner",
        "This is the only active owner; make someone else owner first.",
    )
}
