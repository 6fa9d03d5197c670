//! `GET /auth/verify`: the reverse proxy's question "is this session still valid?".
//! Checked against the database on every call, so a terminated session fails at once.

use poem::http::{HeaderValue, StatusCode};
use poem::web::{Data, Json};
use poem::{IntoResponse, Request, Response, handler};

use crate::domain::session_check::authenticate;
use crate::error::Error;
use crate::http::cookies;
use crate::http::errors::describe;
use crate::state::AppState;

#[handler]
pub async fn verify(req: &Request, state: Data<&AppState>) -> Response {
    let Some(token) = cookies::presented_token(req) else {
        return refuse(&Error::Unauthenticated(None));
    };
    match authenticate(&state, &token).await {
        Ok(a) => {
            let mut resp = StatusCode::OK.into_response();
            let h = resp.headers_mut();
            let p = &a.principal;
            for (name, value) in [
                ("x-doorman-user", p.user_id.to_string()),
                ("x-doorman-email", p.email.clone()),
                ("x-doorman-session", a.session.id.0.clone()),
            ] {
                // Fails closed: a "yes" without the identity the application relies on
                // would let it guess (or take the proxy's own header) instead.
                let Ok(v) = HeaderValue::from_str(&value) else {
                    tracing::warn!(header = name, "identity cannot be sent as a header");
                    return refuse(&Error::Forbidden(
                        "Your identity cannot be passed on to the application (a header cannot carry it); ask an administrator.".into(),
                    ));
                };
                h.insert(name, v);
            }
            h.insert("cache-control", HeaderValue::from_static("no-store"));
            resp
        }
        Err(err) => refuse(&err),
    }
}

fn refuse(err: &Error) -> Response {
    let (status, body) = describe(err);
    let mut resp = Json(body).with_status(status).into_response();
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    resp
}
