//! Settings › Profile: one's name, email (changed only once the new address confirms),
//! password (moved here from the old Security › Password page, whose address
//! redirects), and the sections later features add (second factors, notification
//! preferences).

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{
    CsrfForm, csrf_field, link_refused, pre_csrf, pre_csrf_ok, settings_page, stale_form,
    with_pre_csrf,
};
use super::{error_page, html_response, layout, page_session};
use crate::domain::people::profile;
use crate::domain::people::users::change_own_password;
use crate::domain::tokens;
use crate::error::Error;
use crate::http::errors::describe;
use crate::model::Authed;
use crate::paths::{self, EMAIL_CANCEL, EMAIL_CONFIRM, EXPORT, PROFILE};
use crate::state::AppState;

pub const NAME_PATH: &str = "/settings/profile/name";
pub const EMAIL_PATH: &str = "/settings/profile/email-change";
pub const PASSWORD_PATH: &str = "/settings/profile/password";

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    n: Option<u64>,
}

/// What the page says after an action.
fn done_text(done: &Done) -> Option<String> {
    Some(match done.done.as_deref()? {
        "name" => "Your name was saved.".into(),
        "email" => "We sent a confirmation link to the new address. Your email changes when you open it; until then it stays as it is.".into(),
        "email_changed" => "Your email address was changed.".into(),
        "password" => match done.n.unwrap_or(0) {
            0 => "Your password was changed.".into(),
            1 => "Your password was changed, and your 1 other session was signed out.".into(),
            n => format!("Your password was changed, and your {n} other sessions were signed out."),
        },
        _ => return None,
    })
}

/// Which section a refusal belongs to, and what it says.
type Refusal<'a> = Option<(&'static str, &'a str)>;

fn error_in(section: &str, refusal: Refusal<'_>) -> Markup {
    html! {
        @if let Some((s, message)) = refusal && s == section {
            p.notice.error role="alert" { (message) }
        }
    }
}

fn name_section(me: &Authed, csrf: &str, refusal: Refusal<'_>) -> Markup {
    html! {
        section.card #name {
            h2 { "Name" }
            (error_in("name", refusal))
            form method="post" action=(NAME_PATH) class="inline-form" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Display name" input type="text" name="name" value=(me.principal.name) required maxlength="128"; }
                button.primary type="submit" { "Save name" }
            }
        }
    }
}

fn email_section(me: &Authed, csrf: &str, refusal: Refusal<'_>) -> Markup {
    html! {
        section.card #email {
            h2 { "Email" }
            p { "You sign in with " strong { (me.principal.email) } ". Alerts and notices go there." }
            (error_in("email", refusal))
            form method="post" action=(EMAIL_PATH) class="inline-form" {
                input type="hidden" name="csrf" value=(csrf);
                label { "New email" input type="email" name="new_email" required maxlength="254" autocomplete="email"; }
                label { "Current password" input type="password" name="current_password" required autocomplete="current-password"; }
                button type="submit" { "Change email" }
            }
            p.muted { "We send a link to the new address; the change happens when you open it. The old address is told." }
        }
    }
}

fn password_section(state: &AppState, csrf: &str, refusal: Refusal<'_>) -> Markup {
    let min = state.config.security.password_min_length;
    html! {
        section.card #password {
            h2 { "Password" }
            (error_in("password", refusal))
            form.stacked.narrowish method="post" action=(PASSWORD_PATH) {
                input type="hidden" name="csrf" value=(csrf);
                label { "Current password" input type="password" name="current" required autocomplete="current-password"; }
                label { (format!("New password ({min} characters or more, not easy to guess)")) input type="password" name="new" required minlength=(min) autocomplete="new-password"; }
                label.check { input type="checkbox" name="keep_current" value="yes" checked; " Keep me signed in on this device" }
                p.muted { "Every other session will be signed out." }
                button.primary type="submit" { "Change password" }
            }
        }
    }
}

fn data_section() -> Markup {
    html! {
        section.card #data {
            h2 { "Your data" }
            p {
                a href=(EXPORT) download="doorman-data.json" { "Download my data" }
                " " span.muted { "(JSON: your profile, sessions, devices, sign-in history and alerts)" }
            }
        }
    }
}

/// Second factors (SPEC §12): managed on their own page, where "Confirm it's you" and
/// the enrolment steps live.
fn second_factors_section() -> Markup {
    html! {
        section.card #second-factors {
            h2 { "Second factors" }
            p { "Authenticator apps, passkeys and security keys, and your recovery codes." }
            p { a href=(paths::SECOND_FACTORS) { "Manage second factors" } }
        }
    }
}

/// Which sign-in alerts the person gets (SPEC §14), on their own page.
fn alerts_section() -> Markup {
    html! {
        section.card #alerts {
            h2 { "Sign-in alerts" }
            p { "Choose which sign-in alerts you get by email: a new device, a new country, an impossible journey, a session that moves. Security notices are always sent." }
            p { a href=(paths::NOTIFICATIONS) { "Choose sign-in alerts" } }
        }
    }
}

/// The page's sections, in order.
fn sections(state: &AppState, me: &Authed, csrf: &str, refusal: Refusal<'_>) -> Vec<Markup> {
    vec![
        name_section(me, csrf, refusal),
        email_section(me, csrf, refusal),
        password_section(state, csrf, refusal),
        second_factors_section(),
        alerts_section(),
        data_section(),
    ]
}

fn page(
    state: &AppState,
    me: &Authed,
    csrf: &str,
    done: &Done,
    refusal: Refusal<'_>,
    status: StatusCode,
) -> Response {
    let content = html! {
        p.breadcrumb { "Settings › Account" }
        h1 { "Profile" }
        @if let Some(text) = done_text(done) { p.notice.ok role="status" { (text) } }
        @for s in sections(state, me, csrf, refusal) { (s) }
    };
    html_response(settings_page(me, csrf, "Profile", PROFILE, content))
        .with_status(status)
        .into_response()
}

#[handler]
pub async fn show(req: &Request, state: Data<&AppState>, done: Query<Done>) -> Response {
    match page_session(req, &state).await {
        Ok((me, token)) => page(
            &state,
            &me,
            &tokens::csrf_for_session(&token),
            &done,
            None,
            StatusCode::OK,
        ),
        Err(resp) => resp,
    }
}

/// The old Security › Password address.
#[handler]
pub fn old_password_page() -> Redirect {
    Redirect::permanent(format!("{PROFILE}#password"))
}

/// A refusal shown in its section of the page, or the error page.
fn refused_in(
    state: &AppState,
    me: &Authed,
    csrf: &str,
    section: &'static str,
    err: &Error,
) -> Response {
    match err {
        Error::Invalid { .. } | Error::Conflict { .. } | Error::RateLimited { .. } => {
            let (status, body) = describe(err);
            page(
                state,
                me,
                csrf,
                &Done::default(),
                Some((section, &body.message)),
                status,
            )
        }
        other => error_page(other),
    }
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    current_password: String,
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

csrf_field!(NameForm, EmailForm, PasswordForm);

#[handler]
pub async fn submit_name(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<NameForm>,
) -> Response {
    match profile::rename(&state, &me, &form.name).await {
        Ok(_) => Redirect::see_other(format!("{PROFILE}?done=name")).into_response(),
        Err(err) => refused_in(&state, &me, &form.csrf, "name", &err),
    }
}

#[handler]
pub async fn submit_email(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<EmailForm>,
) -> Response {
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    match profile::request_email_change(
        &state,
        &me,
        &client,
        &form.new_email,
        form.current_password,
    )
    .await
    {
        Ok(()) => Redirect::see_other(format!("{PROFILE}?done=email")).into_response(),
        Err(err) => refused_in(&state, &me, &form.csrf, "email", &err),
    }
}

#[handler]
pub async fn submit_password(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<PasswordForm>,
) -> Response {
    let keep = form.keep_current == "yes";
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    match change_own_password(&state, &me, &client, form.current, form.new, keep).await {
        Ok(n) if keep => {
            Redirect::see_other(format!("{PROFILE}?done=password&n={n}")).into_response()
        }
        Ok(_) => {
            Redirect::see_other(format!("{}?ended=password_changed", paths::LOGIN)).into_response()
        }
        Err(err) => refused_in(&state, &me, &form.csrf, "password", &err),
    }
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The page behind an email-change link: says what would change, and changes it only
/// with its one POST (mail scanners follow GET links). Works signed in or not.
#[handler]
pub async fn confirm_show(
    req: &Request,
    state: Data<&AppState>,
    q: poem::Result<Query<TokenQuery>>,
) -> Response {
    let token = q.map(|q| q.0.token).unwrap_or_default();
    let (user, new_email) = match profile::email_change_target(&state, &token).await {
        Ok(found) => found,
        Err(err) => return link_refused(&err),
    };
    let csrf = pre_csrf(req);
    let body = html! {
        main.narrow {
            h1 { "Confirm your new email" }
            p { "Change the email of your Doorman account from " strong { (user.email) } " to " strong { (new_email) } "?" }
            form.card method="post" action=(EMAIL_CONFIRM) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="token" value=(token);
                button.primary type="submit" { "Yes, use " (new_email) }
            }
        }
    };
    let resp = html_response(layout("Confirm your new email", None, body)).into_response();
    with_pre_csrf(&state, resp, &csrf)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

#[handler]
pub async fn confirm_submit(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<ConfirmForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    if !pre_csrf_ok(req, &form.csrf) {
        return error_page(&stale_form());
    }
    match profile::confirm_email_change(&state, &form.token).await {
        Ok(user) => {
            let body = html! {
                main.narrow {
                    h1 { "Email changed" }
                    p.notice.ok role="status" { "Your Doorman account's email is now " strong { (user.email) } ". Sign in with it from now on." }
                    p { a href=(PROFILE) { "Go to your profile" } }
                }
            };
            html_response(layout("Email changed", None, body)).into_response()
        }
        Err(err @ (Error::Invalid { .. } | Error::Conflict { .. })) => link_refused(&err),
        Err(err) => error_page(&err),
    }
}

/// The page behind the old address's "cancel this change" link: says what it would
/// cancel, and cancels only with its one POST. Works signed in or not.
#[handler]
pub async fn cancel_show(
    req: &Request,
    state: Data<&AppState>,
    q: poem::Result<Query<TokenQuery>>,
) -> Response {
    let token = q.map(|q| q.0.token).unwrap_or_default();
    let (user, new_email) = match profile::email_cancel_target(&state, &token).await {
        Ok(found) => found,
        Err(err) => return link_refused(&err),
    };
    let csrf = pre_csrf(req);
    let body = html! {
        main.narrow {
            h1 { "Cancel the email change" }
            p { "Someone asked to change the email of the Doorman account " strong { (user.email) } " to " strong { (new_email) } ". Cancel it, and the email stays as it is?" }
            form.card method="post" action=(EMAIL_CANCEL) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="token" value=(token);
                button.primary type="submit" { "Cancel the change" }
            }
        }
    };
    let resp = html_response(layout("Cancel the email change", None, body)).into_response();
    with_pre_csrf(&state, resp, &csrf)
}

#[handler]
pub async fn cancel_submit(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<ConfirmForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    if !pre_csrf_ok(req, &form.csrf) {
        return error_page(&stale_form());
    }
    match profile::cancel_email_change(&state, &form.token).await {
        Ok((user, new_email)) => {
            let body = html! {
                main.narrow {
                    h1 { "Email change cancelled" }
                    p.notice.ok role="status" { "The change to " strong { (new_email) } " was cancelled: the Doorman account's email stays " strong { (user.email) } "." }
                    p { "If you did not ask for it, someone may know your password: sign in and change it." }
                    p { a href=(PROFILE) { "Go to your profile" } }
                }
            };
            html_response(layout("Email change cancelled", None, body)).into_response()
        }
        Err(err @ (Error::Invalid { .. } | Error::Conflict { .. })) => link_refused(&err),
        Err(err) => error_page(&err),
    }
}
