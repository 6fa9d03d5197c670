//! Settings › Team › Accounts (the owner only): list, create and rename accounts.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{CsrfForm, csrf_field, settings_page, time_cell};
use super::{encode, error_page, html_response, page_session};
use crate::domain::people::admin_users as domain;
use crate::domain::tokens;
use crate::error::Error;
use crate::http::errors::describe;
use crate::model::AccountId;
use crate::model::Authed;
use crate::paths::{TEAM_ACCOUNTS as PATH, TEAM_USERS};
use crate::state::AppState;

pub const CREATE_PATH: &str = "/settings/team/accounts/create";
pub const RENAME_PATH: &str = "/settings/team/accounts/rename";

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    #[serde(default)]
    name: String,
}

#[handler]
pub async fn show(
    req: &Request,
    state: Data<&AppState>,
    done: poem::Result<Query<Done>>,
) -> Response {
    let (me, token) = match page_session(req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let done = done.map(|d| d.0).unwrap_or_default();
    let text = match done.done.as_deref() {
        Some("created") => Some(format!("The account {} was created.", done.name)),
        Some("renamed") => Some(format!(
            "The account is now called {}. Its email domains were saved.",
            done.name
        )),
        _ => None,
    };
    render(
        &state,
        &me,
        &tokens::csrf_for_session(&token),
        text.as_deref(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn render(
    state: &AppState,
    me: &Authed,
    csrf: &str,
    done: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let accounts = match domain::list_accounts(state, &me.principal).await {
        Ok(a) => a,
        Err(err) => return error_page(&err),
    };
    let now = crate::clock::now();
    let content = html! {
        p.breadcrumb { "Settings › Team" }
        h1 { "Accounts" }
        @if let Some(t) = done { p.notice.ok role="status" { (t) } }
        @if let Some(e) = error { p.notice.error role="alert" { (e) } }
        table {
            thead { tr { th { "Name" } th { "Created" } th { "Users" } th { "Email domains" } th { "Change" } } }
            tbody {
                @for a in &accounts {
                    tr {
                        td { strong { (a.name) } }
                        td { (time_cell(now, a.created_at)) }
                        td { a href=(format!("{TEAM_USERS}?account_id={}", a.id)) { "See users" } }
                        td.email-domains {
                            @if a.email_domains.is_empty() { span.muted { "Any" } }
                            @else { (a.email_domains.join(", ")) }
                        }
                        td {
                            form.inline-form method="post" action=(RENAME_PATH) {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="id" value=(a.id.0);
                                input type="text" name="name" value=(a.name) required maxlength="128" aria-label=(format!("Name of {}", a.name));
                                input type="text" name="email_domains" value=(a.email_domains.join(", ")) maxlength="2000" placeholder="any domain" aria-label=(format!("Email domains of {}", a.name));
                                button type="submit" { "Save" }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Email domains limit the addresses this account's admins can create or invite (comma-separated, such as example.com); empty allows any. You are not limited." }
        h2 { "Create an account" }
        form.card.inline-form method="post" action=(CREATE_PATH) {
            input type="hidden" name="csrf" value=(csrf);
            label { "Name" input type="text" name="name" required maxlength="128"; }
            label { "Email domains" input type="text" name="email_domains" maxlength="2000" placeholder="any domain"; }
            button.primary type="submit" { "Create account" }
        }
    };
    html_response(settings_page(me, csrf, "Accounts", PATH, content))
        .with_status(status)
        .into_response()
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email_domains: String,
}

csrf_field!(AccountForm);

/// The comma- or space-separated domains of a form field.
fn domains_of(field: &str) -> Vec<String> {
    field
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

async fn answer(
    state: &AppState,
    me: &Authed,
    csrf: &str,
    done: &str,
    result: crate::error::Result<crate::model::Account>,
) -> Response {
    match result {
        Ok(a) => Redirect::see_other(format!("{PATH}?done={done}&name={}", encode(&a.name)))
            .into_response(),
        Err(err @ (Error::Invalid { .. } | Error::Conflict { .. })) => {
            let (status, body) = describe(&err);
            render(state, me, csrf, None, Some(&body.message), status).await
        }
        Err(err) => error_page(&err),
    }
}

#[handler]
pub async fn create(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AccountForm>,
) -> Response {
    let domains = domains_of(&form.email_domains);
    let result = domain::create_account(&state, &me.principal, &form.name, &domains).await;
    answer(&state, &me, &form.csrf, "created", result).await
}

#[handler]
pub async fn rename(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AccountForm>,
) -> Response {
    let Ok(id) = form.id.trim().parse::<i64>() else {
        return error_page(&Error::NotFound);
    };
    let domains = domains_of(&form.email_domains);
    let result = domain::rename_account(
        &state,
        &me.principal,
        AccountId(id),
        Some(&form.name),
        Some(&domains),
    )
    .await;
    answer(&state, &me, &form.csrf, "renamed", result).await
}
