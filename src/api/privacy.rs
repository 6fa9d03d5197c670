//! A person's data (SPEC §17): their own export, and an admin's export of a user in
//! scope (erasure is `DELETE /admin/users/{id}`, in `admin_users`). The rules live in `domain::people::privacy`; the export's JSON in
//! `http::export`, shared with the page's download link.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::ApiAuth;
use super::auth::ApiTags;
use super::errors::api_errors;
use crate::domain::people::privacy;
use crate::http::export::DataExport;
use crate::model::UserId;
use crate::state::AppState;

api_errors!(ExportMineError {
    Unauthorized = 401: "No valid session.",
});

api_errors!(ExportUserError {
    BadRequest = 400: "The id is not a number.",
    Unauthorized = 401: "No valid session.",
    NotFound = 404: "Not an admin, or no such user in your scope and rank.",
});

pub struct PrivacyApi;

#[OpenApi]
impl PrivacyApi {
    /// Everything Doorman holds about me, as one JSON document: profile, active and
    /// ended sessions, devices, sign-in history and alerts (never password or token
    /// hashes).
    #[oai(
        path = "/me/export",
        method = "get",
        operation_id = "exportMyData",
        tag = "ApiTags::Sessions"
    )]
    async fn export_mine(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
    ) -> Result<Json<DataExport>, ExportMineError> {
        let export = privacy::export_mine(&state, &auth.authed().principal).await?;
        Ok(Json(DataExport::from(&export)))
    }

    /// The same export for a user in my scope who does not rank above me.
    #[oai(
        path = "/admin/users/:id/export",
        method = "get",
        operation_id = "exportUser",
        tag = "ApiTags::Admin"
    )]
    async fn export_user(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The user's id.
        id: Path<i64>,
    ) -> Result<Json<DataExport>, ExportUserError> {
        let export = privacy::export_user(&state, &auth.authed().principal, UserId(id.0)).await?;
        Ok(Json(DataExport::from(&export)))
    }
}
