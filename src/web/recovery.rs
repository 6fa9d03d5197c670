//! "Forgot your password?" (`/forgot`) and setting a new one with the emailed link
//! (`/reset?token=…`).

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{link_refused, pre_csrf, pre_csrf_ok, stale_form, with_pre_csrf};
use super::{error_page, html_response, layout};
use crate::domain::people::recovery::{self, FORGOT_ANSWER};
use crate::error::Error;
use crate::http::errors::describe;
use crate::model::User;
use crate::paths::{FORGOT, LOGIN, RESET};
use crate::state::AppState;

fn forgot_page(state: &AppState, csrf: &str, answered: bool) -> Response {
    let body = html! {
        main.narrow {
            h1 { "Forgot your password?" }
            @if answered {
                p.notice.ok role="status" { (FORGOT_ANSWER) }
                p.muted { "The link works for a short while and only once. If nothing arrives, check the address, or ask your administrator." }
            } @else {
                p { "Give the email you sign in with, and we will send you a link to choose a new password." }
            }
            form.card method="post" action=(FORGOT) {
                input type="hidden" name="csrf" value=(csrf);
                label { "Email" input type="email" name="email" required maxlength="254" autocomplete="username"; }
                button.primary type="submit" { "Send me a link" }
            }
            p { a href=(LOGIN) { "Back to sign in" } }
        }
    };
    let resp = html_response(layout("Forgot your password?", None, body)).into_response();
    with_pre_csrf(state, resp, csrf)
}

#[handler]
pub fn show_forgot(req: &Request, state: Data<&AppState>) -> Response {
    forgot_page(&state, &pre_csrf(req), false)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// Always the same page, at once: whether the address is known, and whether a link
/// goes out, is decided after the answer.
#[handler]
pub fn submit_forgot(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<ForgotForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    if !pre_csrf_ok(req, &form.csrf) {
        return error_page(&stale_form());
    }
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    recovery::request_reset(&state, &form.email, client.ip);
    forgot_page(&state, &form.csrf, true)
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn reset_page(
    state: &AppState,
    csrf: &str,
    token: &str,
    user: &User,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let min = state.config.security.password_min_length;
    let body = html! {
        main.narrow {
            h1 { "Choose a new password" }
            p { "For " strong { (user.email) } ". Every session of this account will be signed out." }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            form.card method="post" action=(RESET) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="token" value=(token);
                label { (format!("New password ({min} characters or more, not easy to guess)")) input type="password" name="password" required minlength=(min) autocomplete="new-password"; }
                button.primary type="submit" { "Set the new password" }
            }
        }
    };
    let resp = html_response(layout("Choose a new password", None, body))
        .with_status(status)
        .into_response();
    with_pre_csrf(state, resp, csrf)
}

#[handler]
pub async fn show_reset(
    req: &Request,
    state: Data<&AppState>,
    q: poem::Result<Query<TokenQuery>>,
) -> Response {
    let token = q.map(|q| q.0.token).unwrap_or_default();
    match recovery::reset_target(&state, &token).await {
        Ok(user) => reset_page(&state, &pre_csrf(req), &token, &user, None, StatusCode::OK),
        Err(err) => link_refused(&err),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

#[handler]
pub async fn submit_reset(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<ResetForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    if !pre_csrf_ok(req, &form.csrf) {
        return error_page(&stale_form());
    }
    match recovery::reset_password(&state, &form.token, form.password).await {
        Ok(_) => Redirect::see_other(format!("{LOGIN}?reset=1")).into_response(),
        Err(err @ Error::Invalid { code, .. })
            if code.starts_with("weak") || code.starts_with("password") =>
        {
            match recovery::reset_target(&state, &form.token).await {
                Ok(user) => {
                    let (status, body) = describe(&err);
                    reset_page(
                        &state,
                        &form.csrf,
                        &form.token,
                        &user,
                        Some(&body.message),
                        status,
                    )
                }
                Err(err) => link_refused(&err),
            }
        }
        Err(err @ Error::Invalid { .. }) => link_refused(&err),
        Err(err) => error_page(&err),
    }
}
