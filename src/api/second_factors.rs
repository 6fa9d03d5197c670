//! Second factors and "confirm it's you" for scripts (SPEC §12). Passkeys need a
//! browser: they are listed here but added on the pages only.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;

use super::ApiAuth;
use super::auth::ApiTags;
use super::errors::api_errors;
use super::model::at;
use crate::domain::factors::manage::{self as factors, Factor};
use crate::domain::factors::policy;
use crate::domain::factors::step_up::{self, Proof};
use crate::model::ClientInfo;
use crate::model::{AccountId, UserId};
use crate::state::AppState;

#[derive(Debug, Object)]
#[oai(rename = "SecondFactor")]
pub struct FactorJson {
    pub id: i64,
    /// `totp` (an authenticator app) or `passkey`.
    pub kind: String,
    pub name: String,
    /// False for an authenticator that was never confirmed with a code.
    pub active: bool,
    pub created_at: OffsetDateTime,
    /// Null until first used.
    #[oai(nullable)]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<&Factor> for FactorJson {
    fn from(f: &Factor) -> Self {
        FactorJson {
            id: f.id,
            kind: f.kind.clone(),
            name: f.name.clone(),
            active: f.active,
            created_at: at(f.created_at),
            last_used_at: f.last_used_at.map(at),
        }
    }
}

#[derive(Debug, Object)]
pub struct FactorList {
    pub items: Vec<FactorJson>,
    /// Unused recovery codes left.
    pub recovery_codes_remaining: i64,
}

/// Proof for "confirm it's you", when the session's last one is older than
/// `security.step_up_window`: the password, or a code of a second factor.
#[derive(Object, Default)]
pub struct NewTotpBody {
    /// A name to tell it apart ("Phone"); "Authenticator app" when left out.
    #[oai(validator(max_length = 64))]
    pub name: Option<String>,
    #[oai(validator(max_length = 1024))]
    pub current_password: Option<String>,
    #[oai(validator(max_length = 64))]
    pub code: Option<String>,
}

#[derive(Debug, Object)]
pub struct TotpCreated {
    pub id: i64,
    /// The key in base32, for typing into an app. Shown once.
    pub secret: String,
    /// The same key as an `otpauth://` URI (what the QR code on the page carries).
    pub otpauth_uri: String,
}

#[derive(Object)]
pub struct CodeBody {
    /// The 6-digit code the authenticator app shows now.
    #[oai(validator(max_length = 64))]
    pub code: String,
}

#[derive(Debug, Object)]
pub struct Activated {
    /// Ten single-use recovery codes, when this is the first factor: shown once. Null
    /// otherwise.
    #[oai(nullable)]
    pub recovery_codes: Option<Vec<String>>,
}

#[derive(Object)]
pub struct RenameBody {
    #[oai(validator(max_length = 64))]
    pub name: String,
}

#[derive(Object, Default)]
pub struct ProofBody {
    #[oai(validator(max_length = 1024))]
    pub current_password: Option<String>,
    #[oai(validator(max_length = 64))]
    pub code: Option<String>,
}

#[derive(Object)]
pub struct StepUpBody {
    /// The password…
    #[oai(validator(max_length = 1024))]
    pub password: Option<String>,
    /// …or a code of the authenticator app, or a recovery code.
    #[oai(validator(max_length = 64))]
    pub code: Option<String>,
}

#[derive(Debug, Object)]
pub struct RecoveryCodes {
    /// Ten single-use codes; the old ones no longer work. Shown once.
    pub recovery_codes: Vec<String>,
}

#[derive(Object)]
pub struct PolicyBody {
    /// Whether everyone in the account must have a second factor.
    pub required: bool,
}

#[derive(ApiResponse)]
pub enum TotpCreatedOk {
    /// Created, inactive until activated with one correct code.
    #[oai(status = 201)]
    Created(Json<TotpCreated>),
}

#[derive(ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    Done,
}

api_errors!(ListError {
    Unauthorized = 401: "No valid session.",
});

api_errors!(CreateError {
    BadRequest = 400: "An invalid name, or a wrong current password.",
    Unauthorized = 401: "No valid session, or a wrong code given as proof (`invalid_code`).",
    Forbidden = 403: "`step_up_required`: send `current_password` (or `code`), or confirm first with `POST /me/step-up`; or cookie authentication without the X-CSRF-Token header.",
    Conflict = 409: "`too_many_factors`: remove one first.",
    UnsupportedMediaType = 415: "The body is not JSON.",
    TooManyRequests = 429: "Too many failed attempts for this email or from this address.",
});

api_errors!(ActivateError {
    BadRequest = 400: "Malformed request (an id that is not a number, a field too long).",
    Unauthorized = 401: "No valid session, or the code is not right (`invalid_code`).",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "None of your factors has that id.",
    Conflict = 409: "That factor is active already.",
    UnsupportedMediaType = 415: "The body is not JSON.",
    TooManyRequests = 429: "Too many failed attempts for this email or from this address.",
});

api_errors!(RenameError {
    BadRequest = 400: "An invalid name.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "None of your factors has that id.",
    UnsupportedMediaType = 415: "The body is not JSON.",
});

api_errors!(RemoveError {
    BadRequest = 400: "Malformed request (an id that is not a number, a field too long).",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "`step_up_required`: confirm first with `POST /me/step-up`; or cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "None of your factors has that id.",
    Conflict = 409: "It is your last factor and your account requires one.",
});

api_errors!(RegenerateError {
    BadRequest = 400: "A wrong current password.",
    Unauthorized = 401: "No valid session, or a wrong code given as proof (`invalid_code`).",
    Forbidden = 403: "`step_up_required`: send `current_password` (or `code`), or confirm first with `POST /me/step-up`; or cookie authentication without the X-CSRF-Token header.",
    Conflict = 409: "You have no second factor, so no recovery codes.",
    UnsupportedMediaType = 415: "The body is not JSON.",
    TooManyRequests = 429: "Too many failed attempts for this email or from this address.",
});

api_errors!(StepUpError {
    BadRequest = 400: "Neither password nor code, or a wrong password (`wrong_password`).",
    Unauthorized = 401: "No valid session, or the code is not right (`invalid_code`).",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    UnsupportedMediaType = 415: "The body is not JSON.",
    TooManyRequests = 429: "Too many failed attempts for this email or from this address.",
});

api_errors!(AdminError {
    BadRequest = 400: "Malformed request (an id that is not a number, a field too long).",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or a user or account outside your scope.",
});

api_errors!(PolicyError {
    BadRequest = 400: "Malformed request (an id that is not a number, a field too long).",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or an account outside your scope.",
    UnsupportedMediaType = 415: "The body is not JSON.",
});

fn client(state: &AppState, req: &Request) -> ClientInfo {
    crate::client_ip::from_request(req, &state.config.server.trusted_proxies)
}

pub struct SecondFactorsApi;

#[OpenApi(tag = "ApiTags::SecondFactors")]
impl SecondFactorsApi {
    /// My second factors (authenticator apps and passkeys).
    #[oai(
        path = "/me/second-factors",
        method = "get",
        operation_id = "listMySecondFactors"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
    ) -> Result<Json<FactorList>, ListError> {
        let o = factors::overview(&state, auth.authed().principal.user_id).await?;
        Ok(Json(FactorList {
            items: o.factors.iter().map(FactorJson::from).collect(),
            recovery_codes_remaining: o.recovery_codes_left,
        }))
    }

    /// Start adding an authenticator app: its key, inactive until activated. Needs a
    /// recent "confirm it's you" (or `current_password` / `code` here).
    #[oai(
        path = "/me/second-factors/totp",
        method = "post",
        operation_id = "addTotp"
    )]
    async fn add_totp(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
        body: Json<NewTotpBody>,
    ) -> Result<TotpCreatedOk, CreateError> {
        let b = body.0;
        let proof = Proof::from_fields(b.current_password, b.code);
        let name = b.name.unwrap_or_default();
        let e =
            factors::start_totp(&state, auth.authed(), &client(&state, req), &name, proof).await?;
        Ok(TotpCreatedOk::Created(Json(TotpCreated {
            id: e.id,
            secret: e.secret,
            otpauth_uri: e.otpauth_uri,
        })))
    }

    /// Activate an authenticator with the code it shows now. The first factor comes
    /// with ten recovery codes.
    #[oai(
        path = "/me/second-factors/:id/activate",
        method = "post",
        operation_id = "activateSecondFactor"
    )]
    async fn activate(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<CodeBody>,
    ) -> Result<Json<Activated>, ActivateError> {
        let done = factors::activate_mine(
            &state,
            auth.authed(),
            &client(&state, req),
            id.0,
            &body.code,
        )
        .await?;
        Ok(Json(Activated {
            recovery_codes: done.recovery_codes,
        }))
    }

    /// Rename one of my factors.
    #[oai(
        path = "/me/second-factors/:id",
        method = "patch",
        operation_id = "renameSecondFactor"
    )]
    async fn rename(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<RenameBody>,
    ) -> Result<Done, RenameError> {
        factors::rename(&state, auth.authed(), id.0, &body.name).await?;
        Ok(Done::Done)
    }

    /// Remove one of my factors. Needs a recent "confirm it's you".
    #[oai(
        path = "/me/second-factors/:id",
        method = "delete",
        operation_id = "removeSecondFactor"
    )]
    async fn remove(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
        id: Path<i64>,
    ) -> Result<Done, RemoveError> {
        factors::remove(
            &state,
            auth.authed(),
            &client(&state, req),
            id.0,
            Proof::None,
        )
        .await?;
        Ok(Done::Done)
    }

    /// Ten new recovery codes; the old ones stop working. Needs a recent "confirm it's
    /// you" (or `current_password` / `code` here).
    #[oai(
        path = "/me/recovery-codes",
        method = "post",
        operation_id = "regenerateRecoveryCodes"
    )]
    async fn regenerate(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
        body: Json<ProofBody>,
    ) -> Result<Json<RecoveryCodes>, RegenerateError> {
        let b = body.0;
        let proof = Proof::from_fields(b.current_password, b.code);
        let codes =
            factors::regenerate_recovery_codes(&state, auth.authed(), &client(&state, req), proof)
                .await?;
        Ok(Json(RecoveryCodes {
            recovery_codes: codes,
        }))
    }

    /// "Confirm it's you": the password or a code; for `security.step_up_window` this
    /// session may then change factors, end other sessions and the like.
    #[oai(path = "/me/step-up", method = "post", operation_id = "stepUp")]
    async fn step_up(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
        body: Json<StepUpBody>,
    ) -> Result<Done, StepUpError> {
        let b = body.0;
        let proof = Proof::from_fields(b.password, b.code);
        step_up::step_up(&state, auth.authed(), &client(&state, req), proof).await?;
        Ok(Done::Done)
    }
}

pub struct AdminSecondFactorsApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminSecondFactorsApi {
    /// Remove every second factor and recovery code of a user in my scope: all their
    /// sessions end, and they are emailed.
    #[oai(
        path = "/admin/users/:id/second-factors",
        method = "delete",
        operation_id = "resetSecondFactors"
    )]
    async fn reset(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The user's id.
        id: Path<i64>,
    ) -> Result<Done, AdminError> {
        policy::admin_reset(&state, auth.authed(), UserId(id.0)).await?;
        Ok(Done::Done)
    }

    /// Require (or stop requiring) a second factor of everyone in an account in my
    /// scope: people without one set one up at their next sign-in.
    #[oai(
        path = "/admin/accounts/:id/second-factor-policy",
        method = "put",
        operation_id = "setSecondFactorPolicy"
    )]
    async fn set_policy(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The account's id.
        id: Path<i64>,
        body: Json<PolicyBody>,
    ) -> Result<Done, PolicyError> {
        policy::set_account_policy(&state, auth.authed(), AccountId(id.0), body.required).await?;
        Ok(Done::Done)
    }
}
