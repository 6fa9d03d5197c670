//! Users and accounts for admins and the owner (SPEC §2, §7). The rules live in
//! `domain::people::admin_users` and `domain::permissions`; this only maps shapes and errors.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use time::OffsetDateTime;

use super::ApiAuth;
use super::auth::ApiTags;
use super::errors::api_errors;
use super::model::{AccountRef, at};
use crate::domain::people::admin_users::{self as domain, NewUserRequest, UserChange, UserSummary};
use crate::domain::people::team;
use crate::model::{Account, AccountId, Role, User, UserId, UserStatus};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "Role", rename_all = "lowercase")]
pub enum RoleJson {
    User,
    Admin,
    Owner,
}

impl From<RoleJson> for Role {
    fn from(r: RoleJson) -> Self {
        match r {
            RoleJson::User => Role::User,
            RoleJson::Admin => Role::Admin,
            RoleJson::Owner => Role::Owner,
        }
    }
}

impl From<Role> for RoleJson {
    fn from(r: Role) -> Self {
        match r {
            Role::User => RoleJson::User,
            Role::Admin => RoleJson::Admin,
            Role::Owner => RoleJson::Owner,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "UserStatus", rename_all = "lowercase")]
pub enum StatusJson {
    Active,
    Disabled,
    /// Invited and not yet accepted; cannot be set with a PATCH.
    Invited,
}

impl From<StatusJson> for UserStatus {
    fn from(s: StatusJson) -> Self {
        match s {
            StatusJson::Active => UserStatus::Active,
            StatusJson::Disabled => UserStatus::Disabled,
            StatusJson::Invited => UserStatus::Invited,
        }
    }
}

impl From<UserStatus> for StatusJson {
    fn from(s: UserStatus) -> Self {
        match s {
            UserStatus::Active => StatusJson::Active,
            UserStatus::Disabled => StatusJson::Disabled,
            UserStatus::Invited => StatusJson::Invited,
        }
    }
}

/// A user as admins see it.
#[derive(Debug, Clone, Object)]
#[oai(rename = "User")]
pub struct UserJson {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: RoleJson,
    /// A disabled user cannot sign in and has no sessions; an invited one has not
    /// accepted their invitation yet.
    pub status: StatusJson,
    pub account: AccountRef,
    pub created_at: OffsetDateTime,
    /// The person has proven the address (an emailed link followed, or the owner
    /// vouched for it): only then does it match an application's `allow_emails`.
    pub email_verified: bool,
}

impl From<&User> for UserJson {
    fn from(u: &User) -> Self {
        UserJson {
            id: u.id.0,
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role.into(),
            status: u.status.into(),
            account: AccountRef {
                id: u.account_id.0,
                name: u.account_name.clone(),
            },
            created_at: at(u.created_at),
            email_verified: u.email_verified,
        }
    }
}

/// A user in a listing: with their last sign-in and how many sessions they have.
#[derive(Debug, Clone, Object)]
#[oai(rename = "UserListItem")]
pub struct UserListItemJson {
    #[oai(flatten)]
    pub user: UserJson,
    /// The last successful sign-in; null if never.
    #[oai(nullable)]
    pub last_sign_in_at: Option<OffsetDateTime>,
    pub active_sessions: i64,
    /// Whether the user has an active second factor (authenticator app or passkey).
    pub second_factor: bool,
}

impl From<&UserSummary> for UserListItemJson {
    fn from(s: &UserSummary) -> Self {
        UserListItemJson {
            user: UserJson::from(&s.user),
            last_sign_in_at: s.last_sign_in_at.map(at),
            active_sessions: s.active_sessions,
            second_factor: s.second_factor,
        }
    }
}

#[derive(Debug, Object)]
pub struct UserList {
    pub items: Vec<UserListItemJson>,
    /// Always null: every matching user is in `items`.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A new user: with a `password`, or with `invite: true` (and no password), which
/// creates them `invited` and emails them a single-use link to set their own.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct NewUserBody {
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Display name, 1 to 128 characters.
    #[oai(validator(max_length = 512))]
    pub name: String,
    /// Not above your own role.
    pub role: RoleJson,
    /// At least `security.password_min_length` characters (default 10) and not easy to
    /// guess (zxcvbn score 3 or more).
    #[oai(validator(max_length = 1024))]
    pub password: Option<String>,
    /// Invite the user by email instead of giving a password.
    pub invite: Option<bool>,
    /// Owner only; an admin may give only their own account. Default: your account.
    pub account_id: Option<i64>,
}

/// The created user.
#[derive(Debug, Object)]
#[oai(rename = "CreatedUser")]
pub struct CreatedUserJson {
    #[oai(flatten)]
    pub user: UserJson,
    /// The invitation's link (`invite: true`), in this one response only (only its
    /// hash is stored): pass it on when email is off. Null when a password was given.
    #[oai(nullable)]
    pub invite_url: Option<String>,
}

#[derive(ApiResponse)]
pub enum CreatedUserOk {
    /// The user was created.
    #[oai(status = 201)]
    Created(Json<CreatedUserJson>),
}

/// What to change; omitted fields stay as they are.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UserChangeBody {
    /// Not above your own role, and not your own.
    pub role: Option<RoleJson>,
    /// `disabled` ends all the user's sessions at once. Not for yourself.
    pub status: Option<StatusJson>,
    pub name: Option<String>,
    /// Owner only: vouch for the person's address (or withdraw it).
    pub email_verified: Option<bool>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename = "Account")]
pub struct AccountJson {
    pub id: i64,
    pub name: String,
    pub created_at: OffsetDateTime,
    /// The domains its admins may create or invite addresses in; empty: any.
    pub email_domains: Vec<String>,
}

impl From<&Account> for AccountJson {
    fn from(a: &Account) -> Self {
        AccountJson {
            id: a.id.0,
            name: a.name.clone(),
            created_at: at(a.created_at),
            email_domains: a.email_domains.clone(),
        }
    }
}

#[derive(Debug, Object)]
pub struct AccountList {
    pub items: Vec<AccountJson>,
    /// Always null: every account is in `items`.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct NewAccountBody {
    /// Unique, 1 to 128 characters, no comma.
    pub name: String,
    /// The domains its admins may create or invite addresses in (`example.com`);
    /// empty or omitted: any.
    #[oai(validator(max_items = 50))]
    pub email_domains: Option<Vec<String>>,
}

#[derive(ApiResponse)]
pub enum CreatedAccountOk {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<AccountJson>),
}

api_errors!(ListUsersError {
    BadRequest = 400: "Invalid filter.",
    Unauthorized = 401: "No valid session.",
    NotFound = 404: "Not an admin, or an account outside your scope.",
});

api_errors!(CreateUserError {
    BadRequest = 400: "Malformed body, invalid email or name, `weak_password` (the message says why), or neither/both of `password` and `invite`.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "A role above yours, or cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or an account outside your scope or unknown.",
    Conflict = 409: "`email_taken`: a user with that email (in any case) exists.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
});

api_errors!(UpdateUserError {
    BadRequest = 400: "Malformed body, invalid name, or the status `invited` (it comes from inviting).",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "The user or the new role ranks above you, or cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or no such user in your scope.",
    Conflict = 409: "`self_change`: your own role or status; `last_owner`: it would leave no active owner.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
});

api_errors!(ListAccountsError {
    Unauthorized = 401: "No valid session.",
    NotFound = 404: "Not the owner.",
});

api_errors!(CreateAccountError {
    BadRequest = 400: "Malformed body or invalid name.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not the owner.",
    Conflict = 409: "`account_taken`: an account with that name exists.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
});

api_errors!(DeleteUserError {
    BadRequest = 400: "The id is not a number.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or no such user in your scope and rank.",
    Conflict = 409: "`self_delete`: you cannot delete yourself; `last_owner`: it would leave no active owner.",
});

api_errors!(UserActionError {
    BadRequest = 400: "The id is not a number.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or no such user in your scope and rank.",
    Conflict = 409: "The user's status does not allow it: `invited` (resend the invitation instead), `user_disabled`, or `not_invited` (the invitation was accepted).",
});

api_errors!(RenameAccountError {
    BadRequest = 400: "Malformed body or invalid name.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not the owner, or no such account.",
    Conflict = 409: "`account_taken`: an account with that name exists.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
});

#[derive(ApiResponse)]
pub enum ResetSent {
    /// A password-reset link is on its way to the user (their password and sessions
    /// stay as they are until it is used).
    #[oai(status = 202)]
    Accepted,
}

#[derive(Debug, Object)]
pub struct InvitationJson {
    /// The new invitation link, in this one response only; the old one no longer works.
    pub invite_url: String,
}

#[derive(ApiResponse)]
pub enum InvitationResent {
    /// A new invitation was emailed.
    #[oai(status = 200)]
    Ok(Json<InvitationJson>),
}

#[derive(ApiResponse)]
pub enum InvitationRevoked {
    /// The invitation was withdrawn and the invited user removed.
    #[oai(status = 204)]
    NoContent,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct AccountChangeBody {
    /// Unique, 1 to 128 characters, no comma.
    #[oai(validator(max_length = 512))]
    pub name: Option<String>,
    /// Replaces the account's email domains; `[]`: any.
    #[oai(validator(max_items = 50))]
    pub email_domains: Option<Vec<String>>,
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// The user and everything about them are gone.
    #[oai(status = 204)]
    NoContent,
}

pub struct AdminUsersApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminUsersApi {
    /// Users in my scope (my account; every account for the owner), by email.
    #[oai(path = "/admin/users", method = "get", operation_id = "listUsers")]
    async fn list_users(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// Owner only (an admin may give only their own account).
        account_id: Query<Option<i64>>,
        /// Case-insensitive substring of the email or the name.
        q: Query<Option<String>>,
    ) -> Result<Json<UserList>, ListUsersError> {
        let me = &auth.authed().principal;
        let users = domain::list_users(&state, me, account_id.0.map(AccountId), q.0).await?;
        Ok(Json(UserList {
            items: users.iter().map(UserListItemJson::from).collect(),
            next_cursor: None,
        }))
    }

    /// Create a user, with a password or by invitation (`invite: true`: they are
    /// emailed a single-use link, also returned once as `invite_url`).
    #[oai(path = "/admin/users", method = "post", operation_id = "createUser")]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        body: Json<NewUserBody>,
    ) -> Result<CreatedUserOk, CreateUserError> {
        let b = body.0;
        let created = domain::create_user(
            &state,
            &auth.authed().principal,
            NewUserRequest {
                email: b.email,
                name: b.name,
                role: b.role.into(),
                password: b.password,
                invite: b.invite.unwrap_or(false),
                account_id: b.account_id.map(AccountId),
            },
        )
        .await?;
        Ok(CreatedUserOk::Created(Json(CreatedUserJson {
            user: UserJson::from(&created.user),
            invite_url: created.invite_url,
        })))
    }

    /// Change a user's role, status or name. Disabling ends all their sessions.
    #[oai(
        path = "/admin/users/:id",
        method = "patch",
        operation_id = "updateUser"
    )]
    async fn update_user(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The user's id.
        id: Path<i64>,
        body: Json<UserChangeBody>,
    ) -> Result<Json<UserJson>, UpdateUserError> {
        let b = body.0;
        let user = domain::update_user(
            &state,
            &auth.authed().principal,
            UserId(id.0),
            UserChange {
                role: b.role.map(Role::from),
                status: b.status.map(UserStatus::from),
                name: b.name,
                email_verified: b.email_verified,
            },
        )
        .await?;
        Ok(Json(UserJson::from(&user)))
    }

    /// Every account (owner only).
    #[oai(
        path = "/admin/accounts",
        method = "get",
        operation_id = "listAccounts"
    )]
    async fn list_accounts(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
    ) -> Result<Json<AccountList>, ListAccountsError> {
        let accounts = domain::list_accounts(&state, &auth.authed().principal).await?;
        Ok(Json(AccountList {
            items: accounts.iter().map(AccountJson::from).collect(),
            next_cursor: None,
        }))
    }

    /// Create an account (owner only).
    #[oai(
        path = "/admin/accounts",
        method = "post",
        operation_id = "createAccount"
    )]
    async fn create_account(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        body: Json<NewAccountBody>,
    ) -> Result<CreatedAccountOk, CreateAccountError> {
        let b = body.0;
        let account = domain::create_account(
            &state,
            &auth.authed().principal,
            &b.name,
            &b.email_domains.unwrap_or_default(),
        )
        .await?;
        Ok(CreatedAccountOk::Created(Json(AccountJson::from(&account))))
    }

    /// Delete a user and erase their data: their sessions (they are signed out at
    /// once), devices, sign-in history (and attempts made with their email) and
    /// alerts, in one transaction. Not yourself, and not the last active owner.
    #[oai(
        path = "/admin/users/:id",
        method = "delete",
        operation_id = "deleteUser"
    )]
    async fn delete_user(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The user's id.
        id: Path<i64>,
    ) -> Result<Deleted, DeleteUserError> {
        crate::domain::people::privacy::delete_user(&state, &auth.authed().principal, UserId(id.0))
            .await?;
        Ok(Deleted::NoContent)
    }

    /// Email a user a password-reset link (valid `accounts.reset_ttl`, default 1 hour;
    /// only the newest works). Not for invited or disabled users.
    #[oai(
        path = "/admin/users/:id/password-reset",
        method = "post",
        operation_id = "sendPasswordReset"
    )]
    async fn send_password_reset(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The user's id.
        id: Path<i64>,
    ) -> Result<ResetSent, UserActionError> {
        team::send_password_reset(&state, &auth.authed().principal, UserId(id.0)).await?;
        Ok(ResetSent::Accepted)
    }

    /// Send an invited user a new invitation link (the old one stops working).
    #[oai(
        path = "/admin/users/:id/invitation",
        method = "post",
        operation_id = "resendInvitation"
    )]
    async fn resend_invitation(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The user's id.
        id: Path<i64>,
    ) -> Result<InvitationResent, UserActionError> {
        let invite_url =
            team::resend_invitation(&state, &auth.authed().principal, UserId(id.0)).await?;
        Ok(InvitationResent::Ok(Json(InvitationJson { invite_url })))
    }

    /// Withdraw an invitation: its link stops working and the invited user is removed.
    #[oai(
        path = "/admin/users/:id/invitation",
        method = "delete",
        operation_id = "revokeInvitation"
    )]
    async fn revoke_invitation(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The user's id.
        id: Path<i64>,
    ) -> Result<InvitationRevoked, UserActionError> {
        team::revoke_invitation(&state, &auth.authed().principal, UserId(id.0)).await?;
        Ok(InvitationRevoked::NoContent)
    }

    /// Rename an account or set its email domains (owner only).
    #[oai(
        path = "/admin/accounts/:id",
        method = "patch",
        operation_id = "renameAccount"
    )]
    async fn rename_account(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The account's id.
        id: Path<i64>,
        body: Json<AccountChangeBody>,
    ) -> Result<Json<AccountJson>, RenameAccountError> {
        let b = body.0;
        let account = domain::rename_account(
            &state,
            &auth.authed().principal,
            AccountId(id.0),
            b.name.as_deref(),
            b.email_domains.as_deref(),
        )
        .await?;
        Ok(Json(AccountJson::from(&account)))
    }
}
