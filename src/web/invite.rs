//! Accepting an invitation (`/invite?token=…`): the invited person chooses their name
//! and password, and is signed in.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{
    link_refused, next_step_redirect, pre_csrf, pre_csrf_ok, signed_in_redirect, stale_form,
    with_pre_csrf,
};
use super::{error_page, html_response, layout};
use crate::domain::people::team;
use crate::domain::signin::flow::SignInOutcome;
use crate::domain::signin::second_step::{ENROL_TTL, SECOND_STEP_TTL};
use crate::error::Error;
use crate::http::cookies;
use crate::http::errors::describe;
use crate::model::User;
use crate::paths::{self, INVITE, SESSIONS};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn page(
    state: &AppState,
    csrf: &str,
    token: &str,
    user: &User,
    name: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let min = state.config.security.password_min_length;
    let body = html! {
        main.narrow {
            h1 { "Welcome to Doorman" }
            p { "You were invited to the account " strong { (user.account_name) } " as " strong { (user.email) } ". Choose your name and a password to finish." }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            form.card method="post" action=(INVITE) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="token" value=(token);
                label { "Your name" input type="text" name="name" value=(name) required maxlength="128" autocomplete="name"; }
                label { (format!("Password ({min} characters or more, not easy to guess)")) input type="password" name="password" required minlength=(min) autocomplete="new-password"; }
                p.muted { "A few unrelated words make a strong password you can remember." }
                button.primary type="submit" { "Accept and sign in" }
            }
        }
    };
    let resp = html_response(layout("Accept your invitation", None, body))
        .with_status(status)
        .into_response();
    with_pre_csrf(state, resp, csrf)
}

#[handler]
pub async fn show(
    req: &Request,
    state: Data<&AppState>,
    q: poem::Result<Query<TokenQuery>>,
) -> Response {
    let token = q.map(|q| q.0.token).unwrap_or_default();
    match team::invitation(&state, &token).await {
        Ok(user) => {
            let name = user.name.clone();
            page(
                &state,
                &pre_csrf(req),
                &token,
                &user,
                &name,
                None,
                StatusCode::OK,
            )
        }
        Err(err) => link_refused(&err),
    }
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

#[handler]
pub async fn submit(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<AcceptForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    if !pre_csrf_ok(req, &form.csrf) {
        return error_page(&stale_form());
    }
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    let device_id = cookies::get(req, cookies::DEVICE_COOKIE);
    let result = team::accept_invitation(
        &state,
        &form.token,
        &form.name,
        form.password,
        device_id,
        client,
    )
    .await;
    match result {
        Ok(SignInOutcome::SignedIn(signed)) => signed_in_redirect(&state, &signed, SESSIONS),
        // A second factor is required of everyone here: set one up before going on.
        Ok(SignInOutcome::SecondStep(pending)) => {
            next_step_redirect(&state, &pending, paths::LOGIN_VERIFY, SECOND_STEP_TTL)
        }
        Ok(SignInOutcome::MustEnrol(pending)) => {
            next_step_redirect(&state, &pending, paths::LOGIN_ENROL, ENROL_TTL)
        }
        Err(err @ Error::Invalid { code, .. })
            if !code.starts_with("link_") && code != "invalid_link" =>
        {
            // A refusal of what was typed (a weak password, a bad name): the form again.
            match team::invitation(&state, &form.token).await {
                Ok(user) => {
                    let (status, body) = describe(&err);
                    page(
                        &state,
                        &form.csrf,
                        &form.token,
                        &user,
                        &form.name,
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
