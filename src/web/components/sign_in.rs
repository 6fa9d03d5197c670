//! Around a sign-in: the double-submit CSRF value of the forms shown before it, the
//! page of a link that does not work, and the redirects (with their cookies) that end a
//! sign-in or lead to its next step.

use maud::html;
use poem::http::{HeaderValue, header};
use poem::{IntoResponse, Request, Response};

use crate::error::Error;
use crate::http::cookies;
use crate::http::errors::describe;
use crate::paths;
use crate::state::AppState;
use crate::web::{html_response, layout};

/// The CSRF token of a form shown before sign-in (double-submit: the same random
/// value in a cookie and in the form): the browser's, or a new one.
pub fn pre_csrf(req: &Request) -> String {
    cookies::get(req, cookies::PRE_CSRF_COOKIE)
        .filter(|c| c.len() >= 20 && c.len() <= 64)
        .unwrap_or_else(crate::domain::tokens::new_csrf)
}

/// A page answer that also sets the pre-sign-in CSRF cookie to `csrf`.
pub fn with_pre_csrf(state: &AppState, mut resp: Response, csrf: &str) -> Response {
    let cookie = cookies::build(
        &state.config.server,
        cookies::PRE_CSRF_COOKIE,
        csrf,
        Some(3600),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Whether a form shown before sign-in came back with the browser's CSRF token.
pub fn pre_csrf_ok(req: &Request, given: &str) -> bool {
    let expected = cookies::get(req, cookies::PRE_CSRF_COOKIE).unwrap_or_default();
    !expected.is_empty()
        && crate::domain::tokens::constant_time_eq(expected.as_bytes(), given.as_bytes())
}

/// The "this form expired" refusal of a pre-sign-in form.
pub fn stale_form() -> Error {
    Error::Forbidden(
        "This form has expired or did not come from Doorman. Reload the page and try again.".into(),
    )
}

/// A link that does not work: a page that says why (400), changing nothing.
pub fn link_refused(err: &Error) -> Response {
    let (status, body) = describe(err);
    let markup = layout(
        "Link",
        None,
        html! {
            main.narrow #main {
                h1 { "This link does not work" }
                p.notice.error role="alert" { (body.message) }
                p { a href=(paths::LOGIN) { "Go to the sign-in page" } }
            }
        },
    );
    html_response(markup).with_status(status).into_response()
}

/// The answer to a completed sign-in: the session and device cookies, the pre-sign-in
/// cookies cleared, and the way on to `target`.
pub fn signed_in_redirect(
    state: &AppState,
    signed: &crate::domain::signin::issue::SignedIn,
    target: &str,
) -> Response {
    let mut resp = poem::web::Redirect::see_other(target).into_response();
    set_signed_in_cookies(state, signed, &mut resp);
    resp
}

/// The way to a sign-in's next step (the second factor, or enrolment), with its
/// challenge cookie.
pub fn next_step_redirect(
    state: &AppState,
    pending: &crate::domain::signin::second_step::Pending,
    page: &str,
    ttl: i64,
) -> Response {
    use crate::http::cookies;
    let server = &state.config.server;
    let mut resp = poem::web::Redirect::see_other(page).into_response();
    for cookie in [
        cookies::build(
            server,
            cookies::CHALLENGE_COOKIE,
            &pending.challenge,
            Some(ttl),
        ),
        cookies::build(
            server,
            cookies::DEVICE_COOKIE,
            &pending.device_id,
            Some(cookies::DEVICE_MAX_AGE),
        ),
    ] {
        if let Ok(v) = poem::http::HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
        }
    }
    resp
}

/// The cookies of [`signed_in_redirect`], on any answer.
pub fn set_signed_in_cookies(
    state: &AppState,
    signed: &crate::domain::signin::issue::SignedIn,
    resp: &mut Response,
) {
    use crate::http::cookies;
    let server = &state.config.server;
    let max_age = state.config.sessions.max_lifetime.as_secs() as i64;
    for cookie in [
        cookies::build(
            server,
            cookies::SESSION_COOKIE,
            &signed.token,
            Some(max_age),
        ),
        cookies::build(
            server,
            cookies::DEVICE_COOKIE,
            &signed.device_id,
            Some(cookies::DEVICE_MAX_AGE),
        ),
        cookies::build(server, cookies::PRE_CSRF_COOKIE, "", Some(0)),
        cookies::build(server, cookies::CHALLENGE_COOKIE, "", Some(0)),
    ] {
        if let Ok(v) = poem::http::HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
        }
    }
}
