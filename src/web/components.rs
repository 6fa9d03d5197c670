//! What several pages show or do the same way: the Active Sessions tabs, a session's
//! cells, the time element, the confirmation step, and [`CsrfForm`], the prologue of
//! every action (read the form, check its CSRF token, find the session).

use maud::{Markup, PreEscaped, html};
use poem::web::Form;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use serde::de::DeserializeOwned;

use super::{error_page, html_response, layout, page_session};
use crate::clock::{relative, utc};
use crate::domain::auth::Authed;
use crate::domain::model::Session;
use crate::domain::permissions::admin_scope;
use crate::error::Error;
use crate::http::paths;
use crate::state::AppState;

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
            a href=(paths::SESSIONS) aria-current=[(active == "mine").then_some("page")] { "My Sessions" }
            a href=(paths::SECURITY_LOG) aria-current=[(active == "log").then_some("page")] { "Security log" }
            a href=(paths::HISTORY) aria-current=[(active == "history").then_some("page")] { "Sign-in history" }
            @if is_admin {
                a href=(paths::USERS_SESSIONS) aria-current=[(active == "users").then_some("page")] { "Users Sessions" }
                a href=(paths::TEAM_LOG) aria-current=[(active == "team-log").then_some("page")] { "Team log" }
            }
        }
    }
}

/// What every listing shows of a session, heading and cell, in order: the current
/// session's box, the My Sessions table and the Users Sessions table all render from
/// here, so a new column is one line.
pub fn session_cells(s: &Session, now: i64) -> [(&'static str, Markup); 5] {
    [
        ("Device", device_cell(s)),
        ("IP", html! { (s.ip) }),
        ("Location", location_cell(s)),
        ("Last active", time_cell(now, s.last_active_at)),
        ("Created", time_cell(now, s.created_at)),
    ]
}

/// The headings of [`session_cells`], for a table's head.
pub fn session_headings() -> impl Iterator<Item = &'static str> {
    ["Device", "IP", "Location", "Last active", "Created"].into_iter()
}

pub fn device_cell(s: &Session) -> Markup {
    html! {
        span.device title=(s.user_agent) {
            (PreEscaped(device_icon(&s.device.category)))
            span { (s.device.label()) }
        }
        @if !s.applications_used.is_empty() {
            br;
            span.muted.used {
                "Used with "
                @for (i, u) in s.applications_used.iter().enumerate() {
                    @if i > 0 { ", " }
                    (u.name)
                }
            }
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

/// A form that carries the session's CSRF token in a `csrf` field.
pub trait CsrfField {
    fn csrf(&self) -> &str;
}

/// Implements [`CsrfField`] for forms whose token is their `csrf` field.
macro_rules! csrf_field {
    ($($form:ty),* $(,)?) => {
        $(impl $crate::web::components::CsrfField for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}
pub(crate) use csrf_field;

/// An action's form, read, with its CSRF token checked against a live session: the
/// prologue of every page action. When any of it fails, the handler never runs and the
/// browser gets the page that says why (400 unreadable, 403 wrong token, or the
/// sign-in page when the session has ended).
pub struct CsrfForm<T> {
    pub me: Authed,
    pub form: T,
    /// The session's secret, for a handler that checks it again with more to read.
    pub token: String,
}

impl<'a, T: DeserializeOwned + CsrfField + Send> FromRequest<'a> for CsrfForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let form = Form::<T>::from_request(req, body).await.map_err(|_| {
            answer(error_page(&Error::invalid(
                "bad_form",
                "The form could not be read.",
            )))
        })?;
        let state = req
            .data::<AppState>()
            .ok_or_else(|| answer(error_page(&Error::Internal("no state".into()))))?;
        let (me, token) = form_session(req, state, form.csrf())
            .await
            .map_err(answer)?;
        Ok(CsrfForm {
            me,
            form: form.0,
            token,
        })
    }
}

fn answer(resp: Response) -> poem::Error {
    poem::Error::from_response(resp)
}

/// The checks every action form needs: a live session and its CSRF token.
async fn form_session(
    req: &Request,
    state: &AppState,
    csrf: &str,
) -> Result<(Authed, String), Response> {
    let (me, token) = page_session(req, state).await?;
    if !crate::http::csrf_matches(&token, csrf.as_bytes()) {
        return Err(error_page(&Error::Forbidden(
            "This form has expired or did not come from Doorman. Reload the page and try again."
                .into(),
        )));
    }
    Ok((me, token))
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
