//! Who may see and act on what (SPEC §2). Every page and API endpoint asks here, so each
//! rule exists once. Anything outside a caller's scope is `NotFound`, never "forbidden",
//! so ids do not leak.

use crate::error::{Error, Result};
use crate::model::Principal;
use crate::model::{AccountId, Role, User};

/// The accounts whose users and sessions an admin view covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminScope {
    /// An admin: their own account only.
    Account(AccountId),
    /// The owner: every account.
    All,
}

impl AdminScope {
    /// The SQL filter this scope implies, narrowed by an optional account filter.
    /// An admin asking for another account gets `NotFound`.
    pub fn account_filter(self, requested: Option<AccountId>) -> Result<Option<AccountId>> {
        match (self, requested) {
            (AdminScope::All, requested) => Ok(requested),
            (AdminScope::Account(own), None) => Ok(Some(own)),
            (AdminScope::Account(own), Some(r)) if r == own => Ok(Some(own)),
            (AdminScope::Account(_), Some(_)) => Err(Error::NotFound),
        }
    }

    pub fn covers(self, account: AccountId) -> bool {
        match self {
            AdminScope::All => true,
            AdminScope::Account(own) => own == account,
        }
    }
}

/// The caller's admin scope; plain users have none (`NotFound`: the admin views do not
/// exist for them).
pub fn admin_scope(p: &Principal) -> Result<AdminScope> {
    match p.role {
        Role::Owner => Ok(AdminScope::All),
        Role::Admin => Ok(AdminScope::Account(p.account_id)),
        Role::User => Err(Error::NotFound),
    }
}

/// May the caller see and act on `target` and their sessions and history? The target
/// must be in scope and not rank above the caller (an admin and the owner of their
/// account): anything else is `NotFound`, as if the user did not exist.
pub fn check_manage_user(p: &Principal, target: &User) -> Result<AdminScope> {
    check_in_rank(p, target.account_id, target.role)
}

/// [`check_manage_user`] for what is known of a user from one of their sessions.
pub fn check_in_rank(p: &Principal, account: AccountId, role: Role) -> Result<AdminScope> {
    let scope = admin_scope(p)?;
    if !scope.covers(account) || role.rank() > p.role.rank() {
        return Err(Error::NotFound);
    }
    Ok(scope)
}

/// Whether admin listings must leave out the owners' sessions: for everyone but an
/// owner, owners rank above.
pub fn hides_owners(p: &Principal) -> bool {
    p.role.rank() < Role::Owner.rank()
}

/// May the caller grant `role`? Nobody grants a role above their own.
pub fn check_grant_role(p: &Principal, role: Role) -> Result<()> {
    admin_scope(p)?;
    if role.rank() > p.role.rank() {
        return Err(Error::Forbidden(format!(
            "You cannot grant the role `{role}`, which is above yours."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{UserId, UserStatus};

    fn principal(role: Role, account: i64) -> Principal {
        Principal {
            user_id: UserId(1),
            email: "p@x".into(),
            name: "p".into(),
            role,
            account_id: AccountId(account),
            account_name: "A".into(),
            email_verified: true,
        }
    }

    fn user(role: Role, account: i64) -> User {
        User {
            id: UserId(2),
            account_id: AccountId(account),
            account_name: "A".into(),
            email_verified: true,
            email: "u@x".into(),
            name: "u".into(),
            role,
            status: UserStatus::Active,
            created_at: 0,
        }
    }

    #[test]
    fn matrix() {
        assert!(matches!(
            admin_scope(&principal(Role::User, 1)),
            Err(Error::NotFound)
        ));
        let admin = principal(Role::Admin, 1);
        assert_eq!(
            admin_scope(&admin).unwrap(),
            AdminScope::Account(AccountId(1))
        );
        assert!(check_manage_user(&admin, &user(Role::User, 1)).is_ok());
        assert!(matches!(
            check_manage_user(&admin, &user(Role::User, 2)),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            check_manage_user(&admin, &user(Role::Owner, 1)),
            Err(Error::NotFound)
        ));
        assert!(hides_owners(&admin));
        assert!(!hides_owners(&principal(Role::Owner, 1)));
        assert!(check_grant_role(&admin, Role::Owner).is_err());
        let owner = principal(Role::Owner, 1);
        assert!(check_manage_user(&owner, &user(Role::Admin, 7)).is_ok());
        assert_eq!(
            AdminScope::Account(AccountId(1))
                .account_filter(Some(AccountId(2)))
                .err()
                .map(|e| e.to_string()),
            Some("not found".into())
        );
    }
}
