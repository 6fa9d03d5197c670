//! First run: while no owner exists, either create one from `DOORMAN_BOOTSTRAP__EMAIL` /
//! `DOORMAN_BOOTSTRAP__PASSWORD`, or print a one-time `/setup?token=…` URL where the
//! operator creates it.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;

use super::{error_page, html_response, layout};
use crate::db;
use crate::domain::model::Role;
use crate::domain::tokens;
use crate::domain::users::{self, CreateUser};
use crate::error::Error;
use crate::state::AppState;

/// Called once at start.
pub async fn announce(state: &AppState) {
    let owners = state
        .db
        .run(|c| db::users::count_by_role(c, Role::Owner))
        .await;
    match owners {
        Ok(0) => {}
        Ok(_) => return,
        Err(err) => {
            tracing::error!(%err, "cannot count owners");
            return;
        }
    }
    let b = &state.config.bootstrap;
    if !b.email.is_empty() {
        let req = CreateUser {
            account: b.account.clone(),
            email: b.email.clone(),
            name: "Owner".into(),
            role: Role::Owner,
            password: b.password.clone(),
        };
        match users::create(state, req).await {
            Ok(u) => {
                tracing::info!(user_id = %u.id, email = %u.email, "created owner from bootstrap settings")
            }
            Err(err) => tracing::error!(%err, "cannot create the bootstrap owner"),
        }
        return;
    }
    let token = tokens::new_token();
    let url = format!("{}/setup?token={token}", state.config.server.public_base());
    if let Ok(mut slot) = state.setup_token.lock() {
        *slot = Some(token);
    }
    // Printed, not logged: it is a one-time secret meant for the operator's eyes.
    eprintln!("No owner exists yet. Create one at: {url}");
}

fn token_matches(state: &AppState, given: &str) -> bool {
    match state.setup_token.lock() {
        Ok(slot) => slot
            .as_deref()
            .is_some_and(|t| tokens::constant_time_eq(t.as_bytes(), given.as_bytes())),
        Err(_) => false,
    }
}

/// Takes the setup token out of its slot when `given` is it: of concurrent requests
/// with the right token, exactly one gets it.
fn take_token(state: &AppState, given: &str) -> Option<String> {
    let mut slot = state.setup_token.lock().ok()?;
    let matches = slot
        .as_deref()
        .is_some_and(|t| tokens::constant_time_eq(t.as_bytes(), given.as_bytes()));
    if matches { slot.take() } else { None }
}

fn put_back(state: &AppState, token: String) {
    if let Ok(mut slot) = state.setup_token.lock() {
        *slot = Some(token);
    }
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

#[handler]
pub async fn show(state: Data<&AppState>, query: Query<SetupQuery>) -> Response {
    if !token_matches(&state, &query.token) || users::owner_exists(&state).await.unwrap_or(true) {
        return error_page(&Error::NotFound);
    }
    page(&query.token, None, StatusCode::OK)
}

fn page(token: &str, error: Option<&str>, status: StatusCode) -> Response {
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
                label { "Password (8 characters or more)" input type="password" name="password" required minlength="8" autocomplete="new-password"; }
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
    let Some(token) = take_token(&state, &form.token) else {
        return error_page(&Error::NotFound);
    };
    let req = CreateUser {
        account: form.account,
        email: form.email,
        name: form.name,
        role: Role::Owner,
        password: form.password,
    };
    match users::create_first_owner(&state, req).await {
        Ok(_) => Redirect::see_other("/login?created=1").into_response(),
        Err(err @ (Error::Invalid { .. } | Error::Conflict { .. })) => {
            // Nothing was created: the operator corrects the form and tries again.
            put_back(&state, token);
            let (status, body) = crate::http::errors::describe(&err);
            page(&form.token, Some(&body.message), status)
        }
        // NotFound: an owner exists by now (made elsewhere); the token is spent.
        Err(err) => error_page(&err),
    }
}
