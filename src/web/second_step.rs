//! The sign-in's second step for browsers (`/login/verify`) and the enrolment of a
//! required second factor right after the password (`/login/enrol`). The challenge is
//! in an HttpOnly cookie: it works in this browser only, for 5 (15) minutes.

use maud::{Markup, html};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Form, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{
    recovery_codes_card, set_signed_in_cookies, signed_in_redirect, totp_setup,
};
use super::{error_page, html_response, layout};
use crate::domain::factors::webauthn;
use crate::domain::signin::passkey as passkeys;
use crate::domain::signin::second_step::{self, Purpose};
use crate::domain::tokens;
use crate::error::Error;
use crate::http::cookies;
use crate::http::errors::describe;
use crate::paths;
use crate::state::AppState;

/// Where a person goes after signing in with a recovery code: to look at their factors.
const REVIEW: &str = "?review=1";

fn expired(state: &AppState) -> Response {
    let mut resp = Redirect::see_other(format!("{}?expired=1", paths::LOGIN)).into_response();
    let clear = cookies::build(&state.config.server, cookies::CHALLENGE_COOKIE, "", Some(0));
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The double-submit CSRF value of the pages before sign-in (the sign-in form's).
fn pre_csrf(req: &Request) -> (String, bool) {
    match cookies::get(req, cookies::PRE_CSRF_COOKIE).filter(|c| c.len() >= 20 && c.len() <= 64) {
        Some(c) => (c, false),
        None => (tokens::new_csrf(), true),
    }
}

fn page(
    state: &AppState,
    title: &str,
    csrf: (String, bool),
    body: Markup,
    status: StatusCode,
) -> Response {
    let mut resp = html_response(layout(title, None, body))
        .with_status(status)
        .into_response();
    if csrf.1 {
        let c = cookies::build(
            &state.config.server,
            cookies::PRE_CSRF_COOKIE,
            &csrf.0,
            Some(3600),
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn csrf_ok(req: &Request, given: &str) -> bool {
    let expected = cookies::get(req, cookies::PRE_CSRF_COOKIE).unwrap_or_default();
    !expected.is_empty() && tokens::constant_time_eq(expected.as_bytes(), given.as_bytes())
}

fn verify_form(csrf: &str, methods: &[&str], passkey: Option<&str>, error: Option<&str>) -> Markup {
    let totp = methods.contains(&"totp");
    html! {
        main.narrow {
            h1 { "Two-step verification" }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            @if let Some(options) = passkey {
                section.card.passkey-step data-passkey {
                    p { "Use your passkey or security key." }
                    button.primary type="button" data-ceremony="get" data-options=(options) { "Use a passkey" }
                    p.muted.passkey-status role="status" {}
                    form method="post" action=(format!("{}/passkey", paths::LOGIN_VERIFY)) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="credential" value="";
                    }
                }
                script src="/assets/passkeys.js" defer {}
            }
            form.card method="post" action=(paths::LOGIN_VERIFY) {
                input type="hidden" name="csrf" value=(csrf);
                @if totp {
                    label { "Code from your authenticator app"
                        input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="16" required autofocus; }
                } @else {
                    label { "Recovery code"
                        input type="text" name="code" autocomplete="one-time-code" maxlength="16" required; }
                }
                p.muted { "Lost your device? Enter one of your recovery codes (" code { "xxxx-xxxx" } ") instead." }
                button.primary type="submit" { "Verify" }
            }
            p { a href=(paths::LOGIN) { "Start over" } }
        }
    }
}

#[handler]
pub async fn show_verify(req: &Request, state: Data<&AppState>) -> Response {
    let token = cookies::get(req, cookies::CHALLENGE_COOKIE).unwrap_or_default();
    match second_step::find(&state, &token, Purpose::SecondFactor).await {
        Ok(Some(found)) => {
            let options = match passkey_options(&state, &token, &found.methods).await {
                Ok(o) => o,
                Err(err) => return error_page(&err),
            };
            let csrf = pre_csrf(req);
            let body = verify_form(&csrf.0, &found.methods, options.as_deref(), None);
            page(&state, "Two-step verification", csrf, body, StatusCode::OK)
        }
        Ok(None) => expired(&state),
        Err(err) => error_page(&err),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

#[handler]
pub async fn submit_verify(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<CodeForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    let (token, target) = match pending(req, &state, &form.csrf).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    match second_step::complete(&state, &token, &form.code, client).await {
        Ok(signed) => {
            let used_recovery = signed
                .session
                .auth_methods
                .contains(crate::model::AuthMethod::RecoveryCode);
            if used_recovery {
                let review = format!("{}{REVIEW}", paths::SECOND_FACTORS);
                signed_in_redirect(&state, &signed, &review)
            } else {
                signed_in_redirect(&state, &signed, &target)
            }
        }
        Err(err) => refused_step(req, &state, &token, &err).await,
    }
}

/// The browser's pending second step, for a submitted form: its challenge token and
/// where the sign-in goes; or the page to show instead (a stale form or challenge).
/// The token is read before the form's CSRF value is checked, as the challenge cookie
/// is what binds the step to this browser.
async fn pending(
    req: &Request,
    state: &AppState,
    csrf: &str,
) -> Result<(String, String), Response> {
    let token = cookies::get(req, cookies::CHALLENGE_COOKIE).unwrap_or_default();
    if !csrf_ok(req, csrf) {
        return Err(expired(state));
    }
    match second_step::find(state, &token, Purpose::SecondFactor).await {
        Ok(Some(found)) => Ok((token, found.challenge.target)),
        Ok(None) => Err(expired(state)),
        Err(err) => Err(error_page(&err)),
    }
}

/// A refused second step: a wrong code or too many tries asks again (while the
/// challenge lasts); anything else is an error page.
async fn refused_step(req: &Request, state: &AppState, token: &str, err: &Error) -> Response {
    if !matches!(err, Error::InvalidCode | Error::RateLimited { .. }) {
        return error_page(err);
    }
    let (status, body) = describe(err);
    match second_step::find(state, token, Purpose::SecondFactor).await {
        Ok(Some(found)) => {
            verify_again(req, state, token, &found.methods, &body.message, status).await
        }
        _ => expired(state),
    }
}

/// A passkey ceremony for the second step, when the person has a passkey.
async fn passkey_options(
    state: &AppState,
    token: &str,
    methods: &[&str],
) -> crate::error::Result<Option<String>> {
    if !methods.contains(&"passkey") || !webauthn::enabled(state) {
        return Ok(None);
    }
    passkeys::second_step_options(state, token).await
}

async fn verify_again(
    req: &Request,
    state: &AppState,
    token: &str,
    methods: &[&str],
    message: &str,
    status: StatusCode,
) -> Response {
    let options = passkey_options(state, token, methods).await.ok().flatten();
    let csrf = pre_csrf(req);
    let markup = verify_form(&csrf.0, methods, options.as_deref(), Some(message));
    page(state, "Two-step verification", csrf, markup, status)
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    credential: String,
}

/// The second step with a passkey: the answer of the ceremony the page started.
#[handler]
pub async fn submit_passkey(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<PasskeyForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    let (token, target) = match pending(req, &state, &form.csrf).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    match passkeys::complete_second_step(&state, &token, &form.credential, client).await {
        Ok(signed) => signed_in_redirect(&state, &signed, &target),
        Err(err) => refused_step(req, &state, &token, &err).await,
    }
}

fn enrol_page(
    state: &AppState,
    req: &Request,
    key: &crate::domain::factors::manage::TotpEnrolment,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = pre_csrf(req);
    let body = html! {
        main.narrow {
            h1 { "Set up a second factor" }
            p { "Your account needs a second factor before you can go on: an authenticator app on your phone gives you a new 6-digit code every 30 seconds." }
            (totp_setup(key, paths::LOGIN_ENROL, &csrf.0, error))
            p { a href=(paths::LOGIN) { "Start over" } }
        }
    };
    page(state, "Set up a second factor", csrf, body, status)
}

#[handler]
pub async fn show_enrol(req: &Request, state: Data<&AppState>) -> Response {
    let token = cookies::get(req, cookies::CHALLENGE_COOKIE).unwrap_or_default();
    match second_step::enrolment_key(&state, &token).await {
        Ok(Some((_, key))) => enrol_page(&state, req, &key, None, StatusCode::OK),
        Ok(None) => expired(&state),
        Err(err) => error_page(&err),
    }
}

#[handler]
pub async fn submit_enrol(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<CodeForm>>,
) -> Response {
    let token = cookies::get(req, cookies::CHALLENGE_COOKIE).unwrap_or_default();
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    if !csrf_ok(req, &form.csrf) {
        return expired(&state);
    }
    let target = match second_step::find(&state, &token, Purpose::Enrol).await {
        Ok(Some(found)) => found.challenge.target,
        Ok(None) => return expired(&state),
        Err(err) => return error_page(&err),
    };
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    match second_step::finish_enrolment(&state, &token, &form.code, client).await {
        Ok((signed, codes)) => {
            let body = html! {
                main.narrow {
                    h1 { "Your second factor is set up" }
                    p.notice.ok role="status" { "Your authenticator app is active. From now on, signing in asks for its code." }
                    (recovery_codes_card(&codes))
                    p { a.button.primary href=(target) { "I have saved them, continue" } }
                }
            };
            let mut resp =
                html_response(layout("Second factor set up", None, body)).into_response();
            set_signed_in_cookies(&state, &signed, &mut resp);
            resp
        }
        Err(err @ (Error::InvalidCode | Error::RateLimited { .. })) => {
            let (status, body) = describe(&err);
            match second_step::enrolment_key(&state, &token).await {
                Ok(Some((_, key))) => enrol_page(&state, req, &key, Some(&body.message), status),
                _ => expired(&state),
            }
        }
        Err(err) => error_page(&err),
    }
}
