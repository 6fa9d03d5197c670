//! Settings › Security › Active Sessions: the My Sessions tab and the actions on one's
//! own sessions. The Users Sessions tab is in `admin_sessions`.

use maud::{Markup, PreEscaped, html};
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{SESSIONS_PATH, error_page, html_response, layout, page_session, relative, utc};
use crate::db;
use crate::domain::auth::Authed;
use crate::domain::model::Session;
use crate::domain::permissions::admin_scope;
use crate::domain::sessions as domain;
use crate::domain::tokens;
use crate::error::Error;
use crate::state::AppState;

pub const USERS_PATH: &str = "/settings/security/sessions/users";

#[derive(Deserialize, Default)]
pub struct Notice {
    done: Option<u64>,
}

/// Shown after an action: how many sessions it ended.
pub fn done_notice(done: Option<u64>) -> Option<String> {
    done.map(|n| match n {
        0 => "No session needed ending.".to_string(),
        1 => "1 session ended. It is signed out on its next request.".to_string(),
        n => format!("{n} sessions ended. They are signed out on their next request."),
    })
}

/// The page heading and the two tabs (Users Sessions only for admins and owners).
pub fn tabs(me: &Authed, active: &str) -> Markup {
    let is_admin = admin_scope(&me.principal).is_ok();
    html! {
        p.breadcrumb { "Settings › Security" }
        h1 { "Active sessions" }
        nav.tabs aria-label="Sessions" {
            a href=(SESSIONS_PATH) aria-current=[(active == "mine").then_some("page")] { "My Sessions" }
            a href=(super::history::PATH) aria-current=[(active == "history").then_some("page")] { "Sign-in history" }
            @if is_admin {
                a href=(USERS_PATH) aria-current=[(active == "users").then_some("page")] { "Users Sessions" }
            }
        }
    }
}

#[handler]
pub async fn show(req: &Request, state: Data<&AppState>, notice: Query<Notice>) -> Response {
    let (me, token) = match page_session(req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let list = match domain::list_mine(&state, &me).await {
        Ok(l) => l,
        Err(err) => return error_page(&err),
    };
    let csrf = tokens::csrf_for_session(&token);
    let now = db::now();
    let (current, others): (Vec<&Session>, Vec<&Session>) =
        list.iter().partition(|s| s.pk == me.session.pk);
    let body = html! {
        main {
            (tabs(&me, "mine"))
            @if state.mailer.is_none() && admin_scope(&me.principal).is_ok() {
                p.notice role="note" { "Email alerts are off: set " code { "mail.smtp_url" } " to email people when they sign in from a new device or country." }
            }
            @if let Some(n) = done_notice(notice.done) { p.notice.ok role="status" { (n) } }
            h2 { "This device" }
            @for s in &current {
                section.card.current-box aria-label="Current session" {
                    p { span.badge { "Current" } " " span.muted { "You are using this session. To end it, sign out." } }
                    dl.current {
                        div { dt { "Device" } dd { (device_cell(s)) } }
                        div { dt { "IP" } dd { (s.ip) } }
                        div { dt { "Location" } dd { (location_cell(s)) } }
                        div { dt { "Last active" } dd { (time_cell(now, s.last_active_at)) } }
                        div { dt { "Created" } dd { (time_cell(now, s.created_at)) } }
                    }
                }
            }
            h2 { "Other sessions (" (others.len()) ")" }
            @if others.is_empty() {
                p.muted { "You are not signed in anywhere else." }
            } @else {
                table {
                    thead { tr { th { "Device" } th { "IP" } th { "Location" } th { "Last active" } th { "Created" } th { span.sr { "Action" } } } }
                    tbody {
                        @for s in &others {
                            tr {
                                td { (device_cell(s)) }
                                td { (s.ip) }
                                td { (location_cell(s)) }
                                td { (time_cell(now, s.last_active_at)) }
                                td { (time_cell(now, s.created_at)) }
                                td {
                                    form method="post" action=(format!("{SESSIONS_PATH}/terminate")) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="id" value=(s.id.0);
                                        button.danger type="submit" { "Terminate" }
                                    }
                                }
                            }
                        }
                    }
                }
                div.actions {
                    form method="post" action=(format!("{SESSIONS_PATH}/end-others"))
                        data-confirm=(format!("End all {} other sessions? They will be signed out.", others.len())) {
                        input type="hidden" name="csrf" value=(csrf);
                        button.danger type="submit" { "End all other sessions" }
                    }
                }
            }
        }
    };
    html_response(layout("Active sessions", Some((&me, &csrf)), body)).into_response()
}

pub fn device_cell(s: &Session) -> Markup {
    html! {
        span.device title=(s.user_agent) {
            (PreEscaped(device_icon(&s.device.category)))
            span { (s.device.label()) }
        }
    }
}

pub fn location_cell(s: &Session) -> Markup {
    html! {
        @if let Some(flag) = s.location.country_code.as_deref().and_then(flag) {
            span aria-hidden="true" { (flag) " " }
        }
        (s.location.label())
    }
}

pub fn time_cell(now: i64, t: i64) -> Markup {
    html! { time datetime=(utc(t)) title=(utc(t)) { (relative(now, t)) } }
}

/// The flag emoji of a two-letter country code.
fn flag(code: &str) -> Option<String> {
    let bytes = code.as_bytes();
    if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    bytes
        .iter()
        .map(|b| char::from_u32(0x1F1E6 + u32::from(b.to_ascii_uppercase() - b'A')))
        .collect()
}

fn device_icon(category: &str) -> &'static str {
    match category {
        "Smartphone" | "Mobile phone" => {
            r#"<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"><rect x="7" y="2" width="10" height="20" rx="2"/><path d="M11 18h2"/></svg>"#
        }
        "Desktop" => {
            r#"<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"><rect x="2" y="4" width="20" height="13" rx="2"/><path d="M8 21h8M12 17v4"/></svg>"#
        }
        _ => {
            r#"<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"><circle cx="12" cy="12" r="9"/><path d="M12 8v5M12 16h.01"/></svg>"#
        }
    }
}

#[derive(Deserialize)]
pub struct TerminateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// The checks every action form needs: a live session and its CSRF token.
pub async fn form_session(req: &Request, state: &AppState, csrf: &str) -> Result<Authed, Response> {
    let (me, token) = page_session(req, state).await?;
    let expected = tokens::csrf_for_session(&token);
    if !tokens::constant_time_eq(expected.as_bytes(), csrf.as_bytes()) {
        return Err(error_page(&Error::Forbidden(
            "This form has expired or did not come from Doorman. Reload the page and try again."
                .into(),
        )));
    }
    Ok(me)
}

/// Reads a form, answering 400 with a page when it cannot be read. (The error is the
/// response itself, returned at once by the handler, so its size does not matter.)
#[allow(clippy::result_large_err)]
pub fn read_form<T>(form: poem::Result<Form<T>>) -> Result<T, Response> {
    form.map(|f| f.0)
        .map_err(|_| error_page(&Error::invalid("bad_form", "The form could not be read.")))
}

#[handler]
pub async fn terminate(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<TerminateForm>>,
) -> Response {
    let form = match read_form(form) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let me = match form_session(req, &state, &form.csrf).await {
        Ok(me) => me,
        Err(resp) => return resp,
    };
    match domain::end_mine(&state, &me, &form.id).await {
        Ok(()) => Redirect::see_other(format!("{SESSIONS_PATH}?done=1")).into_response(),
        Err(err) => error_page(&err),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

#[handler]
pub async fn end_others(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<ConfirmForm>>,
) -> Response {
    let form = match read_form(form) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let me = match form_session(req, &state, &form.csrf).await {
        Ok(me) => me,
        Err(resp) => return resp,
    };
    if form.confirm != "yes" {
        let count = match domain::list_mine(&state, &me).await {
            Ok(l) => l.len().saturating_sub(1),
            Err(err) => return error_page(&err),
        };
        return confirm_page(
            &me,
            &form.csrf,
            &format!("End all {count} other sessions?"),
            "Every other device signed in as you will be signed out on its next request. This device stays signed in.",
            &format!("{SESSIONS_PATH}/end-others"),
            &[],
            SESSIONS_PATH,
        );
    }
    match domain::end_my_others(&state, &me).await {
        Ok(n) => Redirect::see_other(format!("{SESSIONS_PATH}?done={n}")).into_response(),
        Err(err) => error_page(&err),
    }
}

/// The no-JavaScript confirmation step: the same form again with `confirm=yes`.
pub fn confirm_page(
    me: &Authed,
    csrf: &str,
    question: &str,
    detail: &str,
    action: &str,
    fields: &[(&str, String)],
    cancel: &str,
) -> Response {
    let body = html! {
        main.narrow {
            h1 { (question) }
            p { (detail) }
            form.card method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirm" value="yes";
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                div.actions {
                    button.danger type="submit" { "Yes, end them" }
                    a.button href=(cancel) { "Cancel" }
                }
            }
        }
    };
    html_response(layout("Confirm", Some((me, csrf)), body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert_eq!(flag("de").as_deref(), Some("🇩🇪"));
        assert_eq!(flag("X1"), None);
        assert_eq!(flag("USA"), None);
    }
}
