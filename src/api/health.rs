//! `GET /healthz`: 200 when the database answers.

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use crate::state::AppState;

#[handler]
pub async fn healthz(state: Data<&AppState>) -> Response {
    if crate::domain::ops::health::database_answers(&state).await {
        Json(json!({"status": "ok"})).into_response()
    } else {
        Json(json!({"status": "unavailable", "message": "the database does not answer"}))
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    }
}
