//! Sign-in history for scripts.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use time::OffsetDateTime;

use super::ApiAuth;
use super::auth::ApiTags;
use super::errors::api_errors;
use super::model::{DeviceJson, LocationJson, at};
use crate::domain::audit::history;
use crate::domain::audit::history::LoginRecord;
use crate::state::AppState;

/// One sign-in attempt.
#[derive(Debug, Object)]
pub struct LoginRecordJson {
    pub id: i64,
    pub at: OffsetDateTime,
    /// The email as typed.
    pub email: String,
    pub success: bool,
    /// `ok`, `wrong_password`, `user_disabled` or `rate_limited`.
    pub reason: String,
    pub ip: String,
    pub location: LocationJson,
    pub device: DeviceJson,
}

impl From<&LoginRecord> for LoginRecordJson {
    fn from(r: &LoginRecord) -> Self {
        LoginRecordJson {
            id: r.id,
            at: at(r.at),
            email: r.email.clone(),
            success: r.success,
            reason: r.reason.clone(),
            ip: r.ip.clone(),
            location: (&r.location).into(),
            device: (&r.device).into(),
        }
    }
}

#[derive(Debug, Object)]
pub struct LoginRecordList {
    pub items: Vec<LoginRecordJson>,
    /// Pass as `cursor` for older records; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

api_errors!(HistoryError {
    BadRequest = 400: "Invalid limit or cursor.",
    Unauthorized = 401: "No valid session.",
    NotFound = 404: "A user outside your scope.",
});

pub struct HistoryApi;

#[OpenApi(tag = "ApiTags::Sessions")]
impl HistoryApi {
    /// My sign-in history (successes and failures), newest first. Admins may pass
    /// `user_id` for a user in their scope.
    #[oai(
        path = "/login-records",
        method = "get",
        operation_id = "listLoginRecords"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        user_id: Query<Option<i64>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<LoginRecordList>, HistoryError> {
        let page = history::list(
            &state,
            auth.authed(),
            user_id.0,
            limit.0,
            cursor.0.as_deref(),
        )
        .await?;
        Ok(Json(LoginRecordList {
            items: page.items.iter().map(LoginRecordJson::from).collect(),
            next_cursor: page.next_cursor,
        }))
    }
}
