//! The one-time setup page where the operator creates the owner (see
//! `domain::ops::bootstrap` for when it exists and what it may do).

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;

use super::{error_page, html_response, layout};
use crate::domain::ops::bootstrap;
use crate::domain::people::users::CreateUser;
use crate::error::Error;
use crate::model::Role;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

#[handler]
pub async fn show(state: Data<&AppState>, query: Query<SetupQuery>) -> Response {
    if !bootstrap::setup_open(&state, &query.token).await {
        return error_page(&Error::NotFound);
    }
    page(&state, &query.token, None, StatusCode::OK)
}

fn page(state: &AppState, token: &str, error: Option<&str>, status: StatusCode) -> Response {
    let min = state.config.security.password_min_length;
    let body = html! {
        main.narrow {
            h1 { "Create the owner" }
            p { "The owner runs this Doorman: an administrator of every account." }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            form.card method="post" action="/setup" {
                input type="hidden" name="token" value=(token);
                label { "Account name" input type="text" name="account" value="Default" required; }
                label { "Your name" input type="text" name="name" required; }
                label { "Email" input type="email" name="email" required autocomplete="username"; }
                label { (format!("Password ({min} characters or more, not easy to guess)")) input type="password" name="password" required minlength=(min) autocomplete="new-password"; }
                button.primary type="submit" { "Create owner" }
            }
        }
    };
    html_response(layout("Set up", None, body))
        .with_status(status)
        .into_response()
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[handler]
pub async fn submit(state: Data<&AppState>, form: poem::Result<Form<SetupForm>>) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    let req = CreateUser {
        account: form.account,
        email: form.email,
        name: form.name,
        role: Role::Owner,
        password: form.password,
    };
    match bootstrap::create_owner(&state, &form.token, req).await {
        Ok(_) => Redirect::see_other("/login?created=1").into_response(),
        Err(err @ (Error::Invalid { .. } | Error::Conflict { .. })) => {
            let (status, body) = crate::http::errors::describe(&err);
            page(&state, &form.token, Some(&body.message), status)
        }
        Err(err) => error_page(&err),
    }
}
