//! Users and accounts for admins and the owner (SPEC §2, §7). The rules live in
//! `domain::admin_users` and `domain::permissions`; this only maps shapes and errors.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use time::OffsetDateTime;

use super::ApiAuth;
use super::auth::ApiTags;
use super::errors::api_errors;
use super::model::{AccountRef, at};
use crate::domain::admin_users::{self as domain, NewUserRequest, UserChange};
use crate::domain::model::{Account, AccountId, Role, User, UserId, UserStatus};
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
}

impl From<StatusJson> for UserStatus {
    fn from(s: StatusJson) -> Self {
        match s {
            StatusJson::Active => UserStatus::Active,
            StatusJson::Disabled => UserStatus::Disabled,
        }
    }
}

impl From<UserStatus> for StatusJson {
    fn from(s: UserStatus) -> Self {
        match s {
            UserStatus::Active => StatusJson::Active,
            UserStatus::Disabled => StatusJson::Disabled,
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
    /// A disabled user cannot sign in and has no sessions.
    pub status: StatusJson,
    pub account: AccountRef,
    pub created_at: OffsetDateTime,
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
        }
    }
}

#[derive(Debug, Object)]
pub struct UserList {
    pub items: Vec<UserJson>,
    /// Always null: every matching user is in `items`.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A new user. Without `password` it is an invite: a temporary password is generated
/// and returned once, in `initial_password`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct NewUserBody {
    pub email: String,
    /// Display name, 1 to 128 characters.
    pub name: String,
    /// Not above your own role.
    pub role: RoleJson,
    /// At least 8 characters. Omit it to invite the user with a generated password.
    pub password: Option<String>,
    /// Owner only; an admin may give only their own account. Default: your account.
    pub account_id: Option<i64>,
}

/// The created user.
#[derive(Debug, Object)]
#[oai(rename = "CreatedUser")]
pub struct CreatedUserJson {
    #[oai(flatten)]
    pub user: UserJson,
    /// The generated temporary password of an invite, shown this once and never again
    /// (only its hash is stored); hand it to the user. Null when a password was given.
    #[oai(nullable)]
    pub initial_password: Option<String>,
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
}

#[derive(Debug, Clone, Object)]
#[oai(rename = "Account")]
pub struct AccountJson {
    pub id: i64,
    pub name: String,
    pub created_at: OffsetDateTime,
}

impl From<&Account> for AccountJson {
    fn from(a: &Account) -> Self {
        AccountJson {
            id: a.id.0,
            name: a.name.clone(),
            created_at: at(a.created_at),
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
    /// Unique, 1 to 128 characters.
    pub name: String,
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
    BadRequest = 400: "Malformed body, invalid email or name, or a weak password.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "A role above yours, or cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or an account outside your scope or unknown.",
    Conflict = 409: "`email_taken`: a user with that email (in any case) exists.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
});

api_errors!(UpdateUserError {
    BadRequest = 400: "Malformed body or invalid name.",
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
        /// Case-insensitive substring of the email.
        q: Query<Option<String>>,
    ) -> Result<Json<UserList>, ListUsersError> {
        let me = &auth.authed().principal;
        let users = domain::list_users(&state, me, account_id.0.map(AccountId), q.0).await?;
        Ok(Json(UserList {
            items: users.iter().map(UserJson::from).collect(),
            next_cursor: None,
        }))
    }

    /// Create a user, with a password or as an invite (a generated password returned
    /// once).
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
                account_id: b.account_id.map(AccountId),
            },
        )
        .await?;
        Ok(CreatedUserOk::Created(Json(CreatedUserJson {
            user: UserJson::from(&created.user),
            initial_password: created.initial_password,
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
        let account =
            domain::create_account(&state, &auth.authed().principal, &body.0.name).await?;
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
        crate::domain::privacy::delete_user(&state, &auth.authed().principal, UserId(id.0)).await?;
        Ok(Deleted::NoContent)
    }
}
