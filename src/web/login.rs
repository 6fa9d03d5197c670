//! `/login` and `/logout` for browsers.

use maud::{Markup, html};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{next_step_redirect, signed_in_redirect};
use super::{AdminNote, ended_notice_with, error_page, html_response, layout};
use crate::domain::factors::webauthn;
use crate::domain::signin::check::{authenticate, authenticate_held};
use crate::domain::signin::flow::{SignInOutcome, SignInRequest, sign_in, sign_out};
use crate::domain::signin::passkey as passkeys;
use crate::domain::signin::second_step::{ENROL_TTL, SECOND_STEP_TTL};
use crate::domain::tokens;
use crate::error::Error;
use crate::http::cookies;
use crate::http::cookies::SESSION_COOKIE;
use crate::http::errors::describe;
use crate::paths::{self, SESSIONS as SESSIONS_PATH};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    rd: Option<String>,
    ended: Option<String>,
    /// Who ended the session and why, signed by this server for that session and an
    /// hour (see `refused_token`).
    why: Option<String>,
    sid: Option<String>,
    exp: Option<String>,
    sig: Option<String>,
    out: Option<String>,
    created: Option<String>,
    reset: Option<String>,
    expired: Option<String>,
    /// The address to fill in (an OpenID `login_hint`).
    email: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rd: String,
}

/// Where to go after sign-in, and the application the session is for. Only a configured
/// application's URL or a path on Doorman itself is followed: no open redirect.
fn destination(state: &AppState, rd: &str) -> (String, String) {
    // A control character cannot go into a `Location` header (the redirect would lose
    // it), nor belongs in an address: such an `rd` is ignored.
    if rd.chars().any(|c| c.is_control()) {
        return (SESSIONS_PATH.to_string(), "web".into());
    }
    if let Some((app, target)) = state.config.application_for(rd) {
        return (target, app.name.clone());
    }
    let local = rd.starts_with('/') && !rd.starts_with("//") && !rd.starts_with("/\\");
    if local {
        (rd.to_string(), "web".into())
    } else {
        (SESSIONS_PATH.to_string(), "web".into())
    }
}

#[handler]
pub async fn show(req: &Request, state: Data<&AppState>, query: Query<LoginQuery>) -> Response {
    let query = query.0;
    let rd = query.rd.unwrap_or_default();
    if let Some(token) = cookies::presented_token(req)
        && authenticate(&state, &token).await.is_ok()
    {
        return Redirect::see_other(destination(&state, &rd).0).into_response();
    }
    let notice = if let Some(reason) = &query.ended {
        let note = AdminNote {
            why: query.why.clone(),
            sid: query.sid.clone(),
            exp: query.exp.clone(),
            sig: query.sig.clone(),
        };
        Some(ended_notice_with(&state, reason, &note))
    } else if query.out.is_some() {
        Some("You have signed out.".to_string())
    } else if query.created.is_some() {
        Some("The owner account is ready. Sign in with it.".to_string())
    } else if query.reset.is_some() {
        Some(
            "Your password was reset, so all your sessions were ended. Sign in with the new password."
                .to_string(),
        )
    } else if query.expired.is_some() {
        Some("That sign-in took too long or was already used. Please sign in again.".to_string())
    } else {
        None
    };
    let email: String = query
        .email
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(254)
        .collect();
    render(
        req,
        &state,
        &rd,
        &email,
        notice.as_deref(),
        None,
        StatusCode::OK,
    )
}

fn render(
    req: &Request,
    state: &AppState,
    rd: &str,
    email: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = cookies::get(req, cookies::PRE_CSRF_COOKIE)
        .filter(|c| c.len() >= 20 && c.len() <= 64)
        .unwrap_or_else(tokens::new_csrf);
    let body = form(&csrf, rd, email, notice, error, webauthn::enabled(state));
    let mut resp = html_response(layout("Sign in", None, body))
        .with_status(status)
        .into_response();
    let cookie = cookies::build(
        &state.config.server,
        cookies::PRE_CSRF_COOKIE,
        &csrf,
        Some(3600),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn form(
    csrf: &str,
    rd: &str,
    email: &str,
    notice: Option<&str>,
    error: Option<&str>,
    passkeys: bool,
) -> Markup {
    html! {
        main.narrow {
            h1 { "Sign in" }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            form.card method="post" action=(paths::LOGIN) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="rd" value=(rd);
                label { "Email" input type="email" name="email" value=(email) required autocomplete="username" autofocus; }
                label { "Password" input type="password" name="password" required autocomplete="current-password"; }
                button.primary type="submit" { "Sign in" }
            }
            @if passkeys {
                section.card.passkey-login data-passkey {
                    button type="button" data-ceremony="get" data-begin="/login/passkey/begin" { "Sign in with a passkey" }
                    p.muted.passkey-status role="status" {}
                    form method="post" action="/login/passkey" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="rd" value=(rd);
                        input type="hidden" name="credential" value="";
                    }
                }
                script src="/assets/passkeys.js" defer {}
            }
            p { a href=(paths::FORGOT) { "Forgot your password?" } }
        }
    }
}

#[handler]
pub async fn submit(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<LoginForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return render(
            req,
            &state,
            "",
            "",
            None,
            Some("The form could not be read. Please try again."),
            StatusCode::BAD_REQUEST,
        );
    };
    let expected = cookies::get(req, cookies::PRE_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokens::constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return render(
            req,
            &state,
            &form.rd,
            &form.email,
            None,
            Some("This form has expired. Please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let (target, application) = destination(&state, &form.rd);
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    let device_id = cookies::get(req, cookies::DEVICE_COOKIE);
    let result = sign_in(
        &state,
        SignInRequest {
            email: form.email.clone(),
            password: form.password,
            device_id,
            application,
            target: target.clone(),
        },
        client,
    )
    .await;
    match result {
        Ok(SignInOutcome::SignedIn(signed)) => signed_in_redirect(&state, &signed, &target),
        Ok(SignInOutcome::SecondStep(pending)) => {
            next_step_redirect(&state, &pending, paths::LOGIN_VERIFY, SECOND_STEP_TTL)
        }
        Ok(SignInOutcome::MustEnrol(pending)) => {
            next_step_redirect(&state, &pending, paths::LOGIN_ENROL, ENROL_TTL)
        }
        Err(err @ (Error::InvalidCredentials | Error::RateLimited { .. })) => {
            let (status, body) = describe(&err);
            render(
                req,
                &state,
                &form.rd,
                &form.email,
                None,
                Some(&body.message),
                status,
            )
        }
        Err(err) => error_page(&err),
    }
}

/// The password was right: on to the second step (or the enrolment), with the challenge
/// in a cookie for as long as it lives, and the device cookie already set.
#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rd: String,
    #[serde(default)]
    credential: String,
}

fn pre_csrf_ok(req: &Request, given: &str) -> bool {
    let expected = cookies::get(req, cookies::PRE_CSRF_COOKIE).unwrap_or_default();
    !expected.is_empty() && tokens::constant_time_eq(expected.as_bytes(), given.as_bytes())
}

/// "Sign in with a passkey": the options of a new ceremony (JSON, for the page's
/// script), its token in the challenge cookie.
#[handler]
pub async fn passkey_begin(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<PasskeyForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if !pre_csrf_ok(req, &form.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let (target, application) = destination(&state, &form.rd);
    let device = cookies::get(req, cookies::DEVICE_COOKIE).unwrap_or_default();
    let from = crate::client_ip::ip_of(req, &state.config.server.trusted_proxies);
    match passkeys::begin_passwordless(&state, &application, &target, &device, from).await {
        Ok(ceremony) => {
            let mut resp = Response::builder()
                .content_type("application/json")
                .header(header::CACHE_CONTROL, "no-store")
                .body(ceremony.options);
            let cookie = cookies::build(
                &state.config.server,
                cookies::CHALLENGE_COOKIE,
                &ceremony.token,
                Some(300),
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(err) => {
            let (status, body) = describe(&err);
            poem::web::Json(body).with_status(status).into_response()
        }
    }
}

/// The answer of a "Sign in with a passkey" ceremony: signed in, or the sign-in page
/// saying why not.
#[handler]
pub async fn passkey_submit(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<PasskeyForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(&Error::invalid("bad_form", "The form could not be read."));
    };
    if !pre_csrf_ok(req, &form.csrf) {
        let msg = "This form has expired. Please sign in again.";
        return render(
            req,
            &state,
            &form.rd,
            "",
            None,
            Some(msg),
            StatusCode::FORBIDDEN,
        );
    }
    let token = cookies::get(req, cookies::CHALLENGE_COOKIE).unwrap_or_default();
    let target = match passkeys::passwordless_target(&state, &token).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            let msg = "That sign-in took too long. Please try again.";
            return render(
                req,
                &state,
                &form.rd,
                "",
                None,
                Some(msg),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(err) => return error_page(&err),
    };
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    match passkeys::complete_passwordless(&state, &token, &form.credential, client).await {
        Ok(signed) => signed_in_redirect(&state, &signed, &target),
        Err(err @ (Error::InvalidCode | Error::RateLimited { .. })) => {
            let msg = match err {
                Error::RateLimited { .. } => describe(&err).1.message,
                _ => "That passkey could not sign you in. Use your password, or another passkey."
                    .into(),
            };
            render(
                req,
                &state,
                &form.rd,
                "",
                None,
                Some(&msg),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(err) => error_page(&err),
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub async fn logout(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<LogoutForm>>,
) -> Response {
    let clear = cookies::build(&state.config.server, SESSION_COOKIE, "", Some(0));
    let signed_out = || {
        let mut resp = Redirect::see_other("/login?out=1").into_response();
        if let Ok(v) = HeaderValue::from_str(&clear) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
        resp
    };
    let Some(token) = cookies::presented_token(req) else {
        return signed_out();
    };
    let csrf = form.map(|f| f.0.csrf).unwrap_or_default();
    if !tokens::constant_time_eq(csrf.as_bytes(), tokens::csrf_for_session(&token).as_bytes()) {
        return error_page(&Error::Forbidden(
            "This form has expired. Go back, reload the page and try again.".into(),
        ));
    }
    // A session held at enrolment may always sign out (SPEC §19).
    match authenticate_held(&state, &token, || None).await {
        Ok(authed) => match sign_out(&state, &authed).await {
            Ok(()) => signed_out(),
            Err(err) => error_page(&err),
        },
        Err(Error::Unauthenticated(_)) => signed_out(),
        Err(err) => error_page(&err),
    }
}
