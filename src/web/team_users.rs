//! Settings › Team › Users: an admin's people (the owner's: everyone's, with an account
//! filter): search, invite, and per person change role, disable / enable, send a
//! password reset, resend / revoke an invitation, delete. Every rule is in
//! `domain::people::admin_users`, `domain::people::team` and `domain::people::privacy`, shared with the API.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{CsrfForm, confirm_action, csrf_field, settings_page, time_cell};
use super::{encode, error_page, html_response, page_session};
use crate::domain::people::admin_users::{self as domain, NewUserRequest, UserChange, UserSummary};
use crate::domain::people::{privacy, team};
use crate::domain::permissions::{AdminScope, admin_scope};
use crate::domain::tokens;
use crate::error::Error;
use crate::http::errors::describe;
use crate::model::Authed;
use crate::model::{Account, AccountId, Role, UserId, UserStatus};
use crate::paths::{HISTORY, TEAM_USERS as PATH, USERS_SESSIONS};
use crate::state::AppState;

pub const INVITE_PATH: &str = "/settings/team/users/invite";
pub const ACTION_PATH: &str = "/settings/team/users/action";

#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    account_id: String,
    done: Option<String>,
    #[serde(default)]
    who: String,
    n: Option<u64>,
}

/// What the page says after an action.
fn done_text(f: &Filters) -> Option<String> {
    let who = if f.who.is_empty() { "The user" } else { &f.who };
    let sessions = |n: u64| match n {
        0 => "no session needed ending".to_string(),
        1 => "1 session ended".to_string(),
        n => format!("{n} sessions ended"),
    };
    Some(match f.done.as_deref()? {
        "role" => format!("{who}'s role was changed."),
        "disabled" => format!("{who} was disabled; {}.", sessions(f.n.unwrap_or(0))),
        "enabled" => format!("{who} was enabled and can sign in again."),
        "reset" => format!("A password reset link was sent to {who}."),
        "verified" => format!("{who}'s email address is now verified."),
        "unverified" => format!("{who}'s email address is no longer verified."),
        "revoked" => format!("The invitation of {who} was withdrawn."),
        "factors-reset" => format!(
            "{who}'s second factors were removed and they were emailed; {}.",
            sessions(f.n.unwrap_or(0))
        ),
        "deleted" => format!(
            "{who} was deleted with their data; {}.",
            sessions(f.n.unwrap_or(0))
        ),
        _ => return None,
    })
}

/// What the page shows above the list, when an action just made a link or failed.
#[derive(Default)]
struct Flash<'a> {
    invite: Option<(&'a str, &'a str)>,
    error: Option<&'a str>,
}

fn roles_up_to(me: &Authed) -> Vec<Role> {
    Role::ALL
        .iter()
        .copied()
        .filter(|r| r.rank() <= me.principal.role.rank())
        .collect()
}

#[handler]
pub async fn show(
    req: &Request,
    state: Data<&AppState>,
    f: poem::Result<Query<Filters>>,
) -> Response {
    let (me, token) = match page_session(req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let f = f.map(|q| q.0).unwrap_or_default();
    let csrf = tokens::csrf_for_session(&token);
    render(&state, &me, &csrf, &f, &Flash::default(), StatusCode::OK).await
}

async fn render(
    state: &AppState,
    me: &Authed,
    csrf: &str,
    f: &Filters,
    flash: &Flash<'_>,
    status: StatusCode,
) -> Response {
    let scope = match admin_scope(&me.principal) {
        Ok(s) => s,
        Err(err) => return error_page(&err),
    };
    let account = f.account_id.trim().parse().ok().map(AccountId);
    let users = match domain::list_users(state, &me.principal, account, Some(f.q.clone())).await {
        Ok(u) => u,
        Err(err) => return error_page(&err),
    };
    let accounts = if scope == AdminScope::All {
        match domain::list_accounts(state, &me.principal).await {
            Ok(a) => a,
            Err(err) => return error_page(&err),
        }
    } else {
        Vec::new()
    };
    let now = crate::clock::now();
    let content = html! {
        p.breadcrumb { "Settings › Team" }
        h1 { "Users" }
        @if let Some(text) = done_text(f) { p.notice.ok role="status" { (text) } }
        @if let Some(e) = flash.error { p.notice.error role="alert" { (e) } }
        @if let Some((email, url)) = flash.invite { (invite_link(state, email, url)) }
        @if state.mailer.is_none() {
            p.notice role="note" { "Email is off (no " code { "mail.smtp_url" } "): invitations and password resets are not emailed. The invitation link is shown once here, for you to pass on." }
        }
        (search_form(f, &accounts))
        p.muted { (users.len()) " user" @if users.len() != 1 { "s" } }
        (table(me, csrf, &users, now, scope))
        (invite_form(me, csrf, &accounts))
    };
    html_response(settings_page(me, csrf, "Users", PATH, content))
        .with_status(status)
        .into_response()
}

fn invite_link(state: &AppState, email: &str, url: &str) -> Markup {
    html! {
        div.notice.ok role="status" {
            p { "Invitation created for " strong { (email) } "."
                @if state.mailer.is_some() { " It is on its way by email." } }
            p { "Their link, shown only now (it works once, until the invitation expires):" }
            p.link-box { (url) }
        }
    }
}

fn search_form(f: &Filters, accounts: &[Account]) -> Markup {
    html! {
        form.filters method="get" action=(PATH) role="search" {
            label { "Email or name contains" input type="search" name="q" value=(f.q) maxlength="254"; }
            @if !accounts.is_empty() {
                label { "Account"
                    select name="account_id" {
                        option value="" { "All accounts" }
                        @for a in accounts {
                            option value=(a.id.0) selected[f.account_id == a.id.0.to_string()] { (a.name) }
                        }
                    }
                }
            }
            button type="submit" { "Search" }
        }
    }
}

fn status_badge(s: UserStatus) -> Markup {
    match s {
        UserStatus::Active => html! { span.badge { "active" } },
        UserStatus::Invited => html! { span.badge.invited { "invited" } },
        UserStatus::Disabled => html! { span.badge.disabled { "disabled" } },
    }
}

fn table(me: &Authed, csrf: &str, users: &[UserSummary], now: i64, scope: AdminScope) -> Markup {
    html! {
        @if users.is_empty() {
            p.muted { "No users match." }
        } @else {
            table.users {
                thead { tr {
                    th { "Email" } th { "Name" }
                    @if scope == AdminScope::All { th { "Account" } }
                    th { "Role" } th { "Status" }
                    th { "Second factor" }
                    th { "Last sign-in" } th { "Active sessions" } th { span.sr { "Actions" } }
                } }
                tbody {
                    @for u in users {
                        tr {
                            td {
                                (u.user.email)
                                @if !u.user.email_verified && u.user.status != UserStatus::Invited {
                                    " " span.badge.unverified title="Not proven: this address matches no application's allow_emails until the person follows an emailed link, or the owner verifies it." { "unverified" }
                                }
                            }
                            td { (u.user.name) }
                            @if scope == AdminScope::All { td { (u.user.account_name) } }
                            td { (u.user.role) }
                            td { (status_badge(u.user.status)) }
                            td { @if u.second_factor { span.badge { "on" } } @else { span.muted { "off" } } }
                            td {
                                @match u.last_sign_in_at {
                                    Some(t) => { (time_cell(now, t)) br; a.muted href=(format!("{HISTORY}?user_id={}", u.user.id)) { "History" } }
                                    None => { span.muted { "Never" } }
                                }
                            }
                            td { a href=(format!("{USERS_SESSIONS}?user_id={}", u.user.id)) { (u.active_sessions) } }
                            td { (row_actions(me, csrf, u)) }
                        }
                    }
                }
            }
        }
    }
}

/// One hidden-field action form inside a row's menu.
fn action_form(csrf: &str, id: UserId, what: &str, label: &str, confirm: Option<String>) -> Markup {
    html! {
        form method="post" action=(ACTION_PATH) data-confirm=[confirm.as_deref()] {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="id" value=(id.0);
            input type="hidden" name="action" value=(what);
            button.danger[confirm.is_some()] type="submit" { (label) }
        }
    }
}

fn ends(n: i64) -> String {
    match n {
        0 => "They have no active session.".into(),
        1 => "This ends 1 active session.".into(),
        n => format!("This ends {n} active sessions."),
    }
}

fn row_actions(me: &Authed, csrf: &str, u: &UserSummary) -> Markup {
    let user = &u.user;
    if user.id == me.principal.user_id {
        return html! { span.muted { "You" } };
    }
    let id = user.id;
    html! {
        details.row-actions {
            summary { "Actions ▾" }
            div.menu-box {
                form method="post" action=(ACTION_PATH) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="id" value=(id.0);
                    input type="hidden" name="action" value="role";
                    select name="role" aria-label="Role" {
                        @for r in roles_up_to(me) { option value=(r) selected[r == user.role] { (r) } }
                    }
                    button type="submit" { "Change role" }
                }
                @match user.status {
                    UserStatus::Active => {
                        (action_form(csrf, id, "reset", "Send password reset", None))
                        (action_form(csrf, id, "disable", "Disable", Some(format!("Disable {}? {}", user.email, ends(u.active_sessions)))))
                    }
                    UserStatus::Disabled => {
                        (action_form(csrf, id, "enable", "Enable", None))
                    }
                    UserStatus::Invited => {
                        (action_form(csrf, id, "resend", "Resend invitation", None))
                        (action_form(csrf, id, "revoke", "Revoke invitation", Some(format!("Withdraw the invitation of {}? Their link stops working.", user.email))))
                    }
                }
                @if me.principal.role == Role::Owner && user.status != UserStatus::Invited {
                    @if user.email_verified {
                        (action_form(csrf, id, "unverify", "Mark email unverified", None))
                    } @else {
                        (action_form(csrf, id, "verify", "Mark email verified", None))
                    }
                }
                @if u.second_factor {
                    (action_form(csrf, id, "reset-factors", "Reset second factors", Some(format!("Remove every second factor of {}? {}", user.email, ends(u.active_sessions)))))
                }
                (action_form(csrf, id, "delete", "Delete user", Some(format!("Delete {} and all their data? {}", user.email, ends(u.active_sessions)))))
            }
        }
    }
}

fn invite_form(me: &Authed, csrf: &str, accounts: &[Account]) -> Markup {
    html! {
        h2 #invite { "Invite a person" }
        form.card.inline-form method="post" action=(INVITE_PATH) {
            input type="hidden" name="csrf" value=(csrf);
            label { "Email" input type="email" name="email" required maxlength="254"; }
            label { "Name" input type="text" name="name" required maxlength="128"; }
            label { "Role"
                select name="role" {
                    @for r in roles_up_to(me) { option value=(r) selected[r == Role::User] { (r) } }
                }
            }
            @if !accounts.is_empty() {
                label { "Account"
                    select name="account_id" {
                        @for a in accounts {
                            option value=(a.id.0) selected[a.id == me.principal.account_id] { (a.name) }
                        }
                    }
                }
            }
            button.primary type="submit" { "Invite user" }
        }
        p.muted { "They get an email with a link to choose their name and password; the link works once." }
    }
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    account_id: String,
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    confirm: String,
}

csrf_field!(InviteForm, ActionForm);

/// A refusal of what was asked: the page again with the message (same status as the
/// API's), or the error page for anything else.
async fn refused(state: &AppState, me: &Authed, csrf: &str, err: &Error) -> Response {
    match err {
        Error::Invalid { .. } | Error::Conflict { .. } | Error::Forbidden(_) => {
            let (status, body) = describe(err);
            let flash = Flash {
                error: Some(&body.message),
                ..Flash::default()
            };
            render(state, me, csrf, &Filters::default(), &flash, status).await
        }
        other => error_page(other),
    }
}

#[handler]
pub async fn invite(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<InviteForm>,
) -> Response {
    let Some(role) = Role::parse(form.role.trim()) else {
        return refused(
            &state,
            &me,
            &form.csrf,
            &Error::invalid("invalid_role", "Choose a role."),
        )
        .await;
    };
    let request = NewUserRequest {
        email: form.email,
        name: form.name,
        role,
        password: None,
        invite: true,
        account_id: form.account_id.trim().parse().ok().map(AccountId),
    };
    match domain::create_user(&state, &me.principal, request).await {
        Ok(created) => {
            let url = created.invite_url.unwrap_or_default();
            let flash = Flash {
                invite: Some((&created.user.email, &url)),
                error: None,
            };
            render(
                &state,
                &me,
                &form.csrf,
                &Filters::default(),
                &flash,
                StatusCode::OK,
            )
            .await
        }
        Err(err) => refused(&state, &me, &form.csrf, &err).await,
    }
}

fn back(done: &str, who: &str, n: Option<usize>) -> Response {
    let mut target = format!("{PATH}?done={done}&who={}", encode(who));
    if let Some(n) = n {
        target.push_str(&format!("&n={n}"));
    }
    Redirect::see_other(target).into_response()
}

#[handler]
pub async fn act(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<ActionForm>,
) -> Response {
    let Ok(id) = form.id.trim().parse::<i64>().map(UserId) else {
        return error_page(&Error::NotFound);
    };
    let target = match domain::user_summary(&state, &me.principal, id).await {
        Ok(t) => t,
        Err(err) => return error_page(&err),
    };
    let who = target.user.email.clone();
    let p = &me.principal;
    let destructive = matches!(
        form.action.as_str(),
        "disable" | "revoke" | "delete" | "reset-factors"
    );
    if destructive && form.confirm != "yes" {
        return confirm(&me, &form, &target);
    }
    let result = match form.action.as_str() {
        "role" => match Role::parse(form.role.trim()) {
            Some(role) => change(
                &state,
                &me,
                id,
                UserChange {
                    role: Some(role),
                    ..Default::default()
                },
            )
            .await
            .map(|_| back("role", &who, None)),
            None => Err(Error::invalid("invalid_role", "Choose a role.")),
        },
        "disable" | "enable" => {
            let status = if form.action == "disable" {
                UserStatus::Disabled
            } else {
                UserStatus::Active
            };
            change(
                &state,
                &me,
                id,
                UserChange {
                    status: Some(status),
                    ..Default::default()
                },
            )
            .await
            .map(|_| {
                let n = (status == UserStatus::Disabled).then_some(target.active_sessions as usize);
                back(if n.is_some() { "disabled" } else { "enabled" }, &who, n)
            })
        }
        "verify" | "unverify" => {
            let verified = form.action == "verify";
            change(
                &state,
                &me,
                id,
                UserChange {
                    email_verified: Some(verified),
                    ..Default::default()
                },
            )
            .await
            .map(|_| back(if verified { "verified" } else { "unverified" }, &who, None))
        }
        "reset" => team::send_password_reset(&state, p, id)
            .await
            .map(|()| back("reset", &who, None)),
        "resend" => match team::resend_invitation(&state, p, id).await {
            Ok(url) => {
                let flash = Flash {
                    invite: Some((&who, &url)),
                    error: None,
                };
                return render(
                    &state,
                    &me,
                    &form.csrf,
                    &Filters::default(),
                    &flash,
                    StatusCode::OK,
                )
                .await;
            }
            Err(err) => Err(err),
        },
        "reset-factors" => crate::domain::factors::policy::admin_reset(&state, &me, id)
            .await
            .map(|n| back("factors-reset", &who, Some(n))),
        "revoke" => team::revoke_invitation(&state, p, id)
            .await
            .map(|()| back("revoked", &who, None)),
        "delete" => privacy::delete_user(&state, p, id)
            .await
            .map(|()| back("deleted", &who, Some(target.active_sessions as usize))),
        _ => Err(Error::invalid("bad_form", "Unknown action.")),
    };
    match result {
        Ok(resp) => resp,
        Err(err) => refused(&state, &me, &form.csrf, &err).await,
    }
}

async fn change(
    state: &AppState,
    me: &Authed,
    id: UserId,
    change: UserChange,
) -> crate::error::Result<()> {
    domain::update_user(state, &me.principal, id, change)
        .await
        .map(|_| ())
}

/// The no-JavaScript confirmation of a destructive action, saying what it will end.
fn confirm(me: &Authed, form: &ActionForm, target: &UserSummary) -> Response {
    let email = &target.user.email;
    let (question, detail, button) = match form.action.as_str() {
        "disable" => (
            format!("Disable {email}?"),
            format!(
                "{} They cannot sign in until enabled again.",
                ends(target.active_sessions)
            ),
            "Yes, disable",
        ),
        "reset-factors" => (
            format!("Remove every second factor of {email}?"),
            format!(
                "Their authenticator apps, passkeys and recovery codes are removed and they are emailed. {}",
                ends(target.active_sessions)
            ),
            "Yes, reset them",
        ),
        "revoke" => (
            format!("Withdraw the invitation of {email}?"),
            "Their invitation link stops working and they are removed from the list.".to_string(),
            "Yes, withdraw it",
        ),
        _ => (
            format!("Delete {email}?"),
            format!(
                "{} Their sessions, devices, sign-in history and alerts are erased. This cannot be undone.",
                ends(target.active_sessions)
            ),
            "Yes, delete",
        ),
    };
    confirm_action(
        me,
        &form.csrf,
        &question,
        &detail,
        ACTION_PATH,
        &[("id", form.id.clone()), ("action", form.action.clone())],
        PATH,
        button,
    )
}
