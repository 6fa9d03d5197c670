//! Settings › Security › Password: change it, after typing the current one again.

use maud::html;
use poem::web::{Data, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{CsrfForm, csrf_field};
use super::{error_page, html_response, layout, page_session};
use crate::domain::auth::Authed;
use crate::domain::tokens;
use crate::domain::users::change_own_password;
use crate::error::Error;
use crate::state::AppState;

pub use crate::http::paths::PASSWORD as PATH;

fn page(me: &Authed, csrf: &str, error: Option<&str>, status: poem::http::StatusCode) -> Response {
    let body = html! {
        main.narrow {
            p.breadcrumb { "Settings › Security" }
            h1 { "Change password" }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            form.card method="post" action=(PATH) {
                input type="hidden" name="csrf" value=(csrf);
                label { "Current password" input type="password" name="current" required autocomplete="current-password"; }
                label { "New password (8 characters or more)" input type="password" name="new" required minlength="8" autocomplete="new-password"; }
                label.check { input type="checkbox" name="keep_current" value="yes" checked; " Keep me signed in on this device" }
                p.muted { "Every other session will be signed out." }
                button.primary type="submit" { "Change password" }
            }
        }
    };
    html_response(layout("Change password", Some((me, csrf)), body))
        .with_status(status)
        .into_response()
}

#[handler]
pub async fn show(req: &Request, state: Data<&AppState>) -> Response {
    match page_session(req, &state).await {
        Ok((me, token)) => page(
            &me,
            &tokens::csrf_for_session(&token),
            None,
            poem::http::StatusCode::OK,
        ),
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    keep_current: String,
}

csrf_field!(PasswordForm);

#[handler]
pub async fn submit(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<PasswordForm>,
) -> Response {
    let keep = form.keep_current == "yes";
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    match change_own_password(&state, &me, &client, form.current, form.new, keep).await {
        Ok(n) if keep => Redirect::see_other(format!("{}?done={n}", crate::http::paths::SESSIONS))
            .into_response(),
        Ok(_) => Redirect::see_other("/login?ended=password_changed").into_response(),
        Err(err @ (Error::Invalid { .. } | Error::RateLimited { .. })) => {
            let (status, body) = crate::http::errors::describe(&err);
            page(&me, &form.csrf, Some(&body.message), status)
        }
        Err(err) => error_page(&err),
    }
}
