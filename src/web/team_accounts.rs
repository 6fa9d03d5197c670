//! Settings › Team › Accounts (the owner only): list, create and rename accounts.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, handler};
use serde::Deserialize;

use super::components::session::time_cell;
use super::extract::{CsrfForm, PageResult, PageSession, csrf_field};
use super::nav::settings_page;
use super::{encode, html_response};
use crate::domain::people::admin_users as domain;
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
    state: Data<&AppState>,
    PageSession { me, csrf, .. }: PageSession,
    done: poem::Result<Query<Done>>,
) -> PageResult {
    let done = done.map(|d| d.0).unwrap_or_default();
    let text = match done.done.as_deref() {
        Some("created") => Some(format!("The account {} was created.", done.name)),
        Some("renamed") => Some(format!(
            "The account is now called {}. Its email domains were saved.",
            done.name
        )),
        _ => None,
    };
    render(&state, &me, &csrf, text.as_deref(), None, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    me: &Authed,
    csrf: &str,
    done: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> PageResult {
    let accounts = domain::list_accounts(state, &me.principal).await?;
    let now = crate::clock::now();
    let content = html! {
        @if let Some(t) = done { p.notice.ok role="status" { (t) } }
        @if let Some(e) = error { p.notice.error role="alert" { (e) } }
        table.cards.accounts {
            thead { tr { th { "Name" } th { "Created" } th { "Users" } th { "Email domains" } th { "Change" } } }
            tbody {
                @for a in &accounts {
                    tr {
                        td { strong { (a.name) } }
                        td data-label="Created" { (time_cell(now, a.created_at)) }
                        td data-label="Users" { a href=(format!("{TEAM_USERS}?account_id={}", a.id)) { "See users" } }
                        td.email-domains data-label="Email domains" {
                            @if a.email_domains.is_empty() { span.muted { "Any" } }
                            @else { (a.email_domains.join(", ")) }
                        }
                        td data-label="Change" {
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
    Ok(
        html_response(settings_page(me, csrf, "Accounts", PATH, content))
            .with_status(status)
            .into_response(),
    )
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
) -> PageResult {
    match result {
        Ok(a) => Ok(
            Redirect::see_other(format!("{PATH}?done={done}&name={}", encode(&a.name)))
                .into_response(),
        ),
        Err(err @ (Error::Invalid { .. } | Error::Conflict { .. })) => {
            let (status, body) = describe(&err);
            render(state, me, csrf, None, Some(&body.message), status).await
        }
        Err(err) => Err(err.into()),
    }
}

#[handler]
pub async fn create(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AccountForm>,
) -> PageResult {
    let domains = domains_of(&form.email_domains);
    let result = domain::create_account(&state, &me.principal, &form.name, &domains).await;
    answer(&state, &me, &form.csrf, "created", result).await
}

#[handler]
pub async fn rename(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AccountForm>,
) -> PageResult {
    let id = form.id.trim().parse::<i64>().map_err(|_| Error::NotFound)?;
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
