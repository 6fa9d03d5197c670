//! Which sign-in alerts I get (SPEC §14), and an admin's lock on them for an account.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiAuth;
use super::auth::ApiTags;
use super::errors::api_errors;
use crate::domain::alerts::prefs as preferences;
use crate::model::{AccountId, AlertPrefs};
use crate::state::AppState;

/// The sign-in alerts a person gets; all true by default.
#[derive(Debug, Object)]
pub struct AlertPrefsJson {
    pub new_device: bool,
    pub new_country: bool,
    /// An impossible journey from the previous sign-in.
    pub travel: bool,
    /// A live session used from another country.
    pub moved: bool,
    /// The account keeps every alert on: the choices above are then not applied (reading
    /// only; ignored when writing).
    #[oai(default)]
    pub locked: bool,
}

#[derive(Debug, Object)]
pub struct AlertLockJson {
    /// True keeps every sign-in alert on for the account's people.
    pub locked: bool,
}

api_errors!(PrefsError {
    BadRequest = 400: "Malformed body.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    Conflict = 409: "The account keeps every sign-in alert on (an admin's lock).",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
});

api_errors!(LockError {
    BadRequest = 400: "Malformed body, or the id is not a number.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or an account outside your scope.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
});

#[derive(ApiResponse)]
pub enum Locked {
    /// The lock is set as asked.
    #[oai(status = 204)]
    Done,
}

pub struct AlertPrefsApi;

#[OpenApi(tag = "ApiTags::Sessions")]
impl AlertPrefsApi {
    /// My sign-in alert choices, and whether my account locks them on.
    #[oai(
        path = "/alert-preferences",
        method = "get",
        operation_id = "getAlertPreferences"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
    ) -> Result<Json<AlertPrefsJson>, PrefsError> {
        let p = preferences::mine(&state, &auth.authed().principal).await?;
        Ok(Json(json_of(p.chosen, p.locked)))
    }

    /// Choose which sign-in alerts I get. Security notices are always sent.
    #[oai(
        path = "/alert-preferences",
        method = "put",
        operation_id = "setAlertPreferences"
    )]
    async fn set(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        body: Json<AlertPrefsJson>,
    ) -> Result<Json<AlertPrefsJson>, PrefsError> {
        let prefs = AlertPrefs {
            new_device: body.0.new_device,
            new_country: body.0.new_country,
            travel: body.0.travel,
            moved: body.0.moved,
        };
        preferences::set_mine(&state, &auth.authed().principal, prefs).await?;
        Ok(Json(json_of(prefs, false)))
    }

    /// Lock every sign-in alert on for an account's people (or let them choose again).
    #[oai(
        path = "/admin/accounts/:id/alert-lock",
        method = "put",
        operation_id = "setAlertLock"
    )]
    async fn lock(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The account's id.
        id: Path<i64>,
        body: Json<AlertLockJson>,
    ) -> Result<Locked, LockError> {
        preferences::set_lock(
            &state,
            &auth.authed().principal,
            AccountId(id.0),
            body.0.locked,
        )
        .await?;
        Ok(Locked::Done)
    }
}

fn json_of(p: AlertPrefs, locked: bool) -> AlertPrefsJson {
    AlertPrefsJson {
        new_device: p.new_device,
        new_country: p.new_country,
        travel: p.travel,
        moved: p.moved,
        locked,
    }
}
