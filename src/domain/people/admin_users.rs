//! Managing users and accounts (SPEC §2, §7): list, create (with a password or as an
//! invite), change role, status and name; accounts for the owner. The scope and rank
//! rules come from `permissions`; this module adds the rules about changing oneself and
//! keeping an active owner.

use rusqlite::TransactionBehavior;
use tracing::instrument;

use crate::db::users::NewUser;
pub use crate::db::users::UserSummary;
use crate::db::{self, DbError};
use crate::domain::audit::events::{self, NewEvent, Origin};
use crate::domain::people::owners::{last_owner, other_active_owners};
use crate::domain::people::users::{apply_status, validate_email, validate_name};
use crate::domain::permissions::{AdminScope, admin_scope, check_grant_role, check_manage_user};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::Principal;
use crate::model::{Account, AccountId, EventType, Role, User, UserId, UserStatus};
use crate::state::AppState;

/// A new user as an admin asks for it: with a password, or invited (SPEC §11).
pub struct NewUserRequest {
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Required unless `invite`; refused with it.
    pub password: Option<String>,
    /// The user is `invited` and emailed a single-use link to set their password.
    pub invite: bool,
    /// None: the caller's own account.
    pub account_id: Option<AccountId>,
}

pub struct CreatedUser {
    pub user: User,
    /// The invitation's link, shown this once (only its hash is stored).
    pub invite_url: Option<String>,
}

/// A change to a user; `None` leaves that part as it is.
#[derive(Debug, Default, Clone)]
pub struct UserChange {
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    pub name: Option<String>,
    /// The owner vouches for (or withdraws) the person's address (SPEC §19).
    pub email_verified: Option<bool>,
}

/// Users in the caller's scope (not the owners, for an admin: they rank above),
/// optionally narrowed to one account (an admin may give only their own) and to a
/// case-insensitive substring of the email or name; with their last sign-in and
/// active sessions. The Users page and `GET /admin/users` both list from here.
pub async fn list_users(
    state: &AppState,
    me: &Principal,
    account_id: Option<AccountId>,
    q: Option<String>,
) -> Result<Vec<UserSummary>> {
    let account = admin_scope(me)?.account_filter(account_id)?;
    let q = q.map(|q| q.trim().to_string()).filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.len() > 254) {
        return Err(Error::invalid(
            "invalid_query",
            "The search text is too long.",
        ));
    }
    let below_owner = crate::domain::permissions::hides_owners(me);
    let now = crate::clock::now();
    Ok(state
        .db
        .run(move |c| db::users::list_matching(c, account, q.as_deref(), below_owner, now))
        .await?)
}

/// One user in the caller's scope and rank (else `NotFound`), with their last sign-in
/// and active sessions: what a confirmation says an action will end.
pub async fn user_summary(state: &AppState, me: &Principal, id: UserId) -> Result<UserSummary> {
    admin_scope(me)?;
    let now = crate::clock::now();
    let found = state
        .db
        .run(move |c| db::users::find_summary(c, id, now))
        .await?
        .ok_or(Error::NotFound)?;
    check_manage_user(me, &found.user)?;
    Ok(found)
}

/// Creates a user in an existing account of the caller's scope.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.user_id))]
pub async fn create_user(
    state: &AppState,
    me: &Principal,
    req: NewUserRequest,
) -> Result<CreatedUser> {
    let scope = admin_scope(me)?;
    let account = scope
        .account_filter(req.account_id)?
        .unwrap_or(me.account_id);
    check_grant_role(me, req.role)?;
    validate_email(&req.email)?;
    validate_name("name", &req.name)?;
    let password = match (req.password, req.invite) {
        (Some(p), false) => {
            state
                .hasher
                .check_policy(&p, &[req.email.as_str(), req.name.as_str()])?;
            p
        }
        // Nobody knows this password: an invited user cannot sign in until they set one.
        (None, true) => tokens::new_token(),
        (Some(_), true) => {
            return Err(Error::invalid(
                "password_with_invite",
                "Give either a password or `invite: true`, not both.",
            ));
        }
        (None, false) => {
            return Err(Error::invalid(
                "password_required",
                "Give a password, or invite the user (`invite: true`) to set their own.",
            ));
        }
    };
    let hash = state.hasher.hash(password).await?;
    let (email, name, role, invite) = (
        req.email.trim().to_string(),
        req.name.trim().to_string(),
        req.role,
        req.invite,
    );
    let key = state.link_key.clone();
    let ttl = state.config.accounts.invite_ttl.as_secs() as i64;
    let mail_enabled = state.mailer.is_some();
    let by_email = me.email.clone();
    let by = me.user_id;
    let owner = me.role == Role::Owner;
    let result = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(account) = db::accounts::find_by_id(&tx, account)? else {
                return Err(Error::NotFound);
            };
            if !owner && !account.allows_email(&email) {
                return Err(domain_not_allowed(&account));
            }
            if db::users::find_by_email(&tx, &email)?.is_some() {
                return Err(email_taken());
            }
            let now = crate::clock::now();
            let user = crate::domain::people::users::insert_user(
                &tx,
                &NewUser {
                    account_id: account.id,
                    email: &email,
                    name: &name,
                    role,
                    password_hash: &hash,
                    now,
                    invited: invite,
                    // An address an admin typed is no proof (SPEC §19).
                    email_verified: false,
                },
                Some(by),
            )?;
            let token = if invite {
                Some(crate::domain::people::team::invite_in(
                    &tx,
                    &key,
                    &user,
                    &by_email,
                    now,
                    ttl,
                    mail_enabled,
                )?)
            } else {
                None
            };
            tx.commit()?;
            Ok((user, token))
        })
        .await;
    let (user, token) = match result {
        Ok(found) => found,
        Err(e) if e.is_unique_violation() => return Err(email_taken()),
        Err(e) => return Err(e),
    };
    if invite && mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(
        user_id = %user.id,
        role = %user.role,
        account_id = %user.account_id,
        invite,
        "user created by an admin"
    );
    Ok(CreatedUser {
        user,
        invite_url: token.map(|t| crate::domain::people::team::invite_url(state, &t)),
    })
}

/// The refusal of an address outside the account's email domains (SPEC §19).
fn domain_not_allowed(account: &Account) -> Error {
    Error::invalid(
        "email_domain_not_allowed",
        format!(
            "People of {} can only be given addresses at {}.",
            account.name,
            account.email_domains.join(", ")
        ),
    )
}

fn email_taken() -> Error {
    Error::conflict("email_taken", "A user with that email already exists.")
}

/// Changes a user's role, status or name. Disabling ends all the user's sessions in
/// the same transaction, so the next request with any of their tokens is refused.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.user_id, user_id = %id))]
pub async fn update_user(
    state: &AppState,
    me: &Principal,
    id: UserId,
    change: UserChange,
) -> Result<User> {
    admin_scope(me)?;
    if let Some(name) = &change.name {
        validate_name("name", name)?;
    }
    if change.status == Some(UserStatus::Invited) {
        return Err(Error::invalid(
            "invalid_status",
            "A status can be set to `active` or `disabled`; `invited` comes from inviting.",
        ));
    }
    let me = me.clone();
    let (user, ended) = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(target) = db::users::find_by_id(&tx, id)? else {
                return Err(Error::NotFound);
            };
            let other_active_owners = other_active_owners(&tx, &target)?;
            check_change(&me, &target, &change, other_active_owners)?;
            if let Some(role) = change.role.filter(|r| *r != target.role) {
                db::users::update_role(&tx, id, role)?;
                events::record(
                    &tx,
                    NewEvent::new(EventType::UserRoleChanged, crate::clock::now())
                        .user(id, target.account_id)
                        .actor(Some(me.user_id))
                        .detail("from", target.role.as_str())
                        .detail("to", role.as_str()),
                )?;
            }
            if let Some(name) = &change.name {
                db::users::update_name(&tx, id, name.trim())?;
            }
            if let Some(verified) = change
                .email_verified
                .filter(|v| *v != target.email_verified)
            {
                db::users::update_email_verified(&tx, id, verified)?;
            }
            let mut ended = 0;
            if let Some(status) = change.status.filter(|s| *s != target.status) {
                ended = apply_status(&tx, id, status, Some(me.user_id), &Origin::default())?
                    .unwrap_or(0);
            }
            let user = db::users::find_by_id(&tx, id)?
                .ok_or_else(|| DbError::Refused("user vanished during update".into()))?;
            tx.commit()?;
            Ok((user, ended))
        })
        .await?;
    tracing::info!(
        role = %user.role,
        status = %user.status,
        sessions_ended = ended,
        "user changed by an admin"
    );
    Ok(user)
}

/// The rules of a change, apart from storage: scope and rank, granting, oneself, and
/// keeping at least one active owner. `other_active_owners` counts the active owners
/// other than `target`.
fn check_change(
    me: &Principal,
    target: &User,
    change: &UserChange,
    other_active_owners: i64,
) -> Result<()> {
    check_manage_user(me, target)?;
    if let Some(role) = change.role {
        check_grant_role(me, role)?;
    }
    if change.email_verified.is_some() && me.role != Role::Owner {
        return Err(Error::Forbidden(
            "Only the owner can mark an address as verified.".into(),
        ));
    }
    let new_role = change.role.unwrap_or(target.role);
    let new_status = change.status.unwrap_or(target.status);
    if target.id == me.user_id && (new_role != target.role || new_status != target.status) {
        return Err(Error::conflict(
            "self_change",
            "You cannot change your own role or disable yourself; ask another administrator.",
        ));
    }
    let stays_active_owner = new_role == Role::Owner && new_status == UserStatus::Active;
    let was_active_owner = target.role == Role::Owner && target.status == UserStatus::Active;
    if was_active_owner && !stays_active_owner && other_active_owners < 1 {
        return Err(last_owner());
    }
    Ok(())
}

fn owner_only(me: &Principal) -> Result<()> {
    match admin_scope(me)? {
        AdminScope::All => Ok(()),
        AdminScope::Account(_) => Err(Error::NotFound),
    }
}

/// Every account; the owner only (others get `NotFound`).
pub async fn list_accounts(state: &AppState, me: &Principal) -> Result<Vec<Account>> {
    owner_only(me)?;
    Ok(state.db.run(|c| db::accounts::list(c)).await?)
}

/// An account's name: trimmed, and without `,`, which separates the role from the
/// account in `Remote-Groups` (SPEC §19: groups are unambiguous).
fn account_name(name: &str) -> Result<String> {
    validate_name("account name", name)?;
    if name.contains(',') {
        return Err(Error::invalid(
            "invalid_account_name",
            "An account name cannot contain a comma.",
        ));
    }
    Ok(name.trim().to_string())
}

/// An account's email domains as given (`example.com`, `@example.com`, any case),
/// lower-cased, without duplicates; each must be a plain domain name.
pub fn email_domains(given: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for d in given {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        if d.is_empty() {
            continue;
        }
        let ok = d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(Error::invalid(
                "invalid_email_domain",
                format!("`{d}` is not a domain name (such as example.com)."),
            ));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.len() > 50 {
        return Err(Error::invalid(
            "invalid_email_domain",
            "An account can name at most 50 email domains.",
        ));
    }
    Ok(out)
}

/// Creates an account; the owner only.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.user_id))]
pub async fn create_account(
    state: &AppState,
    me: &Principal,
    name: &str,
    domains: &[String],
) -> Result<Account> {
    owner_only(me)?;
    let name = account_name(name)?;
    let domains = email_domains(domains)?;
    let result = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if db::accounts::find_by_name(&tx, &name)?.is_some() {
                return Err(account_taken());
            }
            let id = db::accounts::insert(&tx, &name, crate::clock::now())?;
            db::accounts::update_email_domains(&tx, id, &domains)?;
            let account = db::accounts::find_by_id(&tx, id)?
                .ok_or_else(|| DbError::Refused("account vanished during creation".into()))?;
            tx.commit()?;
            Ok(account)
        })
        .await;
    let account = match result {
        Ok(account) => account,
        Err(e) if e.is_unique_violation() => return Err(account_taken()),
        Err(e) => return Err(e),
    };
    tracing::info!(account_id = %account.id, "account created");
    Ok(account)
}

/// Renames an account and, when `domains` is given, sets its email domains; the owner
/// only.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.user_id, account_id = %id))]
pub async fn rename_account(
    state: &AppState,
    me: &Principal,
    id: AccountId,
    name: Option<&str>,
    domains: Option<&[String]>,
) -> Result<Account> {
    owner_only(me)?;
    let name = name.map(account_name).transpose()?;
    let domains = domains.map(email_domains).transpose()?;
    let result = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if db::accounts::find_by_id(&tx, id)?.is_none() {
                return Err(Error::NotFound);
            }
            if let Some(name) = &name {
                if db::accounts::find_by_name(&tx, name)?.is_some_and(|a| a.id != id) {
                    return Err(account_taken());
                }
                db::accounts::update_name(&tx, id, name)?;
            }
            if let Some(domains) = &domains {
                db::accounts::update_email_domains(&tx, id, domains)?;
            }
            let account = db::accounts::find_by_id(&tx, id)?
                .ok_or_else(|| DbError::Refused("account vanished during rename".into()))?;
            tx.commit()?;
            Ok(account)
        })
        .await;
    match result {
        Err(e) if e.is_unique_violation() => Err(account_taken()),
        other => other,
    }
}

fn account_taken() -> Error {
    Error::conflict("account_taken", "An account with that name already exists.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(id: i64, role: Role) -> Principal {
        Principal {
            user_id: UserId(id),
            email: format!("{id}@x"),
            name: "p".into(),
            role,
            account_id: AccountId(1),
            account_name: "A".into(),
            email_verified: true,
        }
    }

    fn user(id: i64, role: Role) -> User {
        User {
            id: UserId(id),
            account_id: AccountId(1),
            account_name: "A".into(),
            email_verified: true,
            email: format!("{id}@x"),
            name: "u".into(),
            role,
            status: UserStatus::Active,
            created_at: 0,
        }
    }

    fn code(r: Result<()>) -> Option<&'static str> {
        match r {
            Err(Error::Conflict { code, .. }) => Some(code),
            _ => None,
        }
    }

    #[test]
    fn self_changes_are_refused_but_renaming_is_not() {
        let me = principal(1, Role::Admin);
        let target = user(1, Role::Admin);
        let disable = UserChange {
            status: Some(UserStatus::Disabled),
            ..Default::default()
        };
        assert_eq!(
            code(check_change(&me, &target, &disable, 0)),
            Some("self_change")
        );
        let demote = UserChange {
            role: Some(Role::User),
            ..Default::default()
        };
        assert_eq!(
            code(check_change(&me, &target, &demote, 0)),
            Some("self_change")
        );
        let rename = UserChange {
            name: Some("New".into()),
            role: Some(Role::Admin),
            ..Default::default()
        };
        assert!(check_change(&me, &target, &rename, 0).is_ok());
    }

    #[test]
    fn the_last_active_owner_stays() {
        let me = principal(1, Role::Owner);
        let target = user(2, Role::Owner);
        let demote = UserChange {
            role: Some(Role::Admin),
            ..Default::default()
        };
        assert_eq!(
            code(check_change(&me, &target, &demote, 0)),
            Some("last_owner")
        );
        assert!(check_change(&me, &target, &demote, 1).is_ok());
        let disable = UserChange {
            status: Some(UserStatus::Disabled),
            ..Default::default()
        };
        assert_eq!(
            code(check_change(&me, &target, &disable, 0)),
            Some("last_owner")
        );
        assert!(check_change(&me, &target, &disable, 1).is_ok());
    }
}
