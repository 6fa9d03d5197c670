//! Server-rendered pages (maud), usable without JavaScript. Pages are thin: they call
//! domain/ and render.

pub mod admin_sessions;
pub mod alert_answer;
pub mod alert_link;
pub mod components;
pub mod extract;
pub mod forward_auth;
pub mod history;
pub mod invite;
pub mod login;
pub mod nav;
pub mod notifications;
pub mod profile;
pub mod recovery;
pub mod second_factors;
pub mod second_step;
pub mod security_log;
pub mod sessions;
pub mod setup;
pub mod team_accounts;
pub mod team_users;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Redirect;
use poem::{IntoResponse, Request, Response, Route, get, handler, post};
use rust_embed::RustEmbed;

use crate::domain::signin::check::{
    NOTICE_TTL, admin_end_explanation, authenticate, authenticate_from, authenticate_held,
    notice_is_sealed, seal_notice,
};
use crate::error::Error;
use crate::http::errors::{ENDED_NOTICE, describe};
use crate::model::Authed;
use crate::model::EndReason;
use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

use crate::http::cookies;
use crate::paths::{self, SESSIONS as SESSIONS_PATH, USERS_SESSIONS};

pub fn routes() -> Route {
    Route::new()
        .at("/", get(index))
        .at(paths::LOGIN, get(login::show).post(login::submit))
        .at("/logout", post(login::logout))
        .at(
            paths::LOGIN_VERIFY,
            get(second_step::show_verify).post(second_step::submit_verify),
        )
        .at(
            format!("{}/passkey", paths::LOGIN_VERIFY),
            post(second_step::submit_passkey),
        )
        .at("/login/passkey/begin", post(login::passkey_begin))
        .at("/login/passkey", post(login::passkey_submit))
        .at(
            paths::LOGIN_ENROL,
            get(second_step::show_enrol).post(second_step::submit_enrol),
        )
        .at(
            second_step::ENROL_PASSKEY,
            post(second_step::enrol_with_passkey),
        )
        .at(paths::SECOND_FACTORS, get(second_factors::show))
        .at(
            format!("{}/totp", paths::SECOND_FACTORS),
            post(second_factors::add_totp),
        )
        .at(
            format!("{}/passkey", paths::SECOND_FACTORS),
            post(second_factors::add_passkey),
        )
        .at(
            format!("{}/passkey/begin", paths::SECOND_FACTORS),
            post(second_factors::begin_passkey),
        )
        .at(
            format!("{}/passkey/finish", paths::SECOND_FACTORS),
            post(second_factors::finish_passkey),
        )
        .at(
            format!("{}/step-up/passkey", paths::SECOND_FACTORS),
            post(second_factors::step_up_passkey),
        )
        .at(
            format!("{}/activate", paths::SECOND_FACTORS),
            post(second_factors::activate),
        )
        .at(
            format!("{}/rename", paths::SECOND_FACTORS),
            post(second_factors::rename),
        )
        .at(
            format!("{}/remove", paths::SECOND_FACTORS),
            post(second_factors::remove),
        )
        .at(
            format!("{}/recovery-codes", paths::SECOND_FACTORS),
            post(second_factors::recovery_codes),
        )
        .at(
            format!("{}/policy", paths::SECOND_FACTORS),
            post(second_factors::save_policy),
        )
        .at(
            format!("{}/reset", paths::SECOND_FACTORS),
            post(second_factors::reset),
        )
        .at("/setup", get(setup::show).post(setup::submit))
        .at(SESSIONS_PATH, get(sessions::show))
        .at(paths::EXPORT, get(sessions::export))
        .at(
            format!("{SESSIONS_PATH}/terminate"),
            post(sessions::terminate),
        )
        .at(
            format!("{SESSIONS_PATH}/end-others"),
            post(sessions::end_others),
        )
        .at(
            format!("{SESSIONS_PATH}/apps/sign-out"),
            post(sessions::sign_out_app),
        )
        .at(
            format!("{}/apps/sign-out", USERS_SESSIONS),
            post(admin_sessions::sign_out_app),
        )
        .at(USERS_SESSIONS, get(admin_sessions::show))
        .at(
            format!("{}/terminate", USERS_SESSIONS),
            post(admin_sessions::terminate),
        )
        .at(
            format!("{}/end-listed", USERS_SESSIONS),
            post(admin_sessions::end_listed),
        )
        .at(
            paths::PASSWORD,
            get(profile::old_password_page).post(profile::submit_password),
        )
        .at(paths::PROFILE, get(profile::show))
        .at(profile::NAME_PATH, post(profile::submit_name))
        .at(profile::EMAIL_PATH, post(profile::submit_email))
        .at(profile::PASSWORD_PATH, post(profile::submit_password))
        .at(profile::TIME_ZONE_PATH, post(profile::submit_time_zone))
        .at(
            paths::EMAIL_CONFIRM,
            get(profile::confirm_show).post(profile::confirm_submit),
        )
        .at(
            paths::EMAIL_CANCEL,
            get(profile::cancel_show).post(profile::cancel_submit),
        )
        .at(paths::TEAM_USERS, get(team_users::show))
        .at(team_users::INVITE_PATH, post(team_users::invite))
        .at(team_users::ACTION_PATH, post(team_users::act))
        .at(paths::TEAM_ACCOUNTS, get(team_accounts::show))
        .at(team_accounts::CREATE_PATH, post(team_accounts::create))
        .at(team_accounts::RENAME_PATH, post(team_accounts::rename))
        .at(paths::INVITE, get(invite::show).post(invite::submit))
        .at(
            paths::FORGOT,
            get(recovery::show_forgot).post(recovery::submit_forgot),
        )
        .at(
            paths::RESET,
            get(recovery::show_reset).post(recovery::submit_reset),
        )
        .at(history::PATH, get(history::show))
        .at(notifications::PATH, get(notifications::show))
        .at(notifications::save_path(), post(notifications::save))
        .at(notifications::lock_path(), post(notifications::lock))
        .at(paths::SECURITY_LOG, get(security_log::mine))
        .at(paths::TEAM_LOG, get(security_log::team))
        .at(
            alert_link::PATH,
            get(alert_link::show).post(alert_link::submit),
        )
        .at(
            paths::ALERT_CONFIRM,
            get(alert_answer::show_confirm).post(alert_answer::submit_confirm),
        )
        .at(
            paths::ALERT_SECURE,
            get(alert_answer::show_secure).post(alert_answer::submit_secure),
        )
        .at("/assets/*path", get(asset))
}

#[handler]
async fn index(req: &Request, state: poem::web::Data<&AppState>) -> Response {
    match cookies::presented_token(req) {
        Some(token) if authenticate(&state, &token).await.is_ok() => {
            Redirect::see_other(SESSIONS_PATH).into_response()
        }
        _ => Redirect::see_other(paths::LOGIN).into_response(),
    }
}

/// Whether an embedded asset exists (a flag, before pointing an image at it).
pub fn asset_exists(path: &str) -> bool {
    Assets::get(path).is_some()
}

#[handler]
fn asset(req: &Request) -> Response {
    let path = req.uri().path().trim_start_matches("/assets/");
    match Assets::get(path) {
        Some(file) => {
            let mime = match path.rsplit('.').next() {
                Some("css") => "text/css; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                _ => "application/octet-stream",
            };
            Response::builder()
                .header(header::CONTENT_TYPE, mime)
                .header(header::CACHE_CONTROL, "public, max-age=3600")
                .body(file.data.into_owned())
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The session of a page request, or the response that sends the browser to sign in:
/// with the "Your session has ended" notice when it presented a session that ended.
pub async fn page_session(req: &Request, state: &AppState) -> Result<(Authed, String), Response> {
    let token = presented(req)?;
    let checked = if enrols(req.original_uri().path()) {
        authenticate_held(state, &token, client_of(req, state)).await
    } else {
        authenticate_from(state, &token, client_of(req, state)).await
    };
    match checked {
        Ok(authed) => Ok((authed, token)),
        Err(err) => Err(refused_token(req, state, &err, &token).await),
    }
}

/// The pages a session held at enrolment may use (SPEC §19): adding a second factor
/// (with its step-up and recovery codes), not the admin's policy and reset forms.
fn enrols(path: &str) -> bool {
    path.strip_prefix(paths::SECOND_FACTORS)
        .is_some_and(|rest| !matches!(rest, "/policy" | "/reset"))
}

/// [`refused`] for the session `token`: a session an administrator ended sends the
/// browser to the sign-in page with who ended it and why (one more read, for a refused
/// request only), signed so that the page can show it.
pub async fn refused_token(req: &Request, state: &AppState, err: &Error, token: &str) -> Response {
    let mut resp = refused(req, state, err);
    if !matches!(
        err,
        Error::Unauthenticated(Some(EndReason::TerminatedByAdmin))
    ) {
        return resp;
    }
    let Some((session, why)) = admin_end_explanation(state, token).await else {
        return resp;
    };
    if let Some(to) = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    {
        let until = crate::clock::now() + NOTICE_TTL;
        let sig = seal_notice(&state.link_key, &session, until, &why);
        let to = format!(
            "{to}&why={}&sid={}&exp={until}&sig={sig}",
            encode(&why),
            encode(&session)
        );
        if let Ok(v) = HeaderValue::from_str(&to) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
    }
    resp
}

/// The request's client address, for the session check to ask when it wrote the
/// session's activity (and only then).
pub fn client_of<'a>(
    req: &'a Request,
    state: &'a AppState,
) -> impl FnOnce() -> Option<std::net::IpAddr> + 'a {
    move || {
        Some(crate::client_ip::ip_of(
            req,
            &state.config.server.trusted_proxies,
        ))
    }
}

/// The session token a page request presents, or the way to the sign-in page.
#[allow(clippy::result_large_err)]
pub fn presented(req: &Request) -> Result<String, Response> {
    cookies::presented_token(req).ok_or_else(|| to_login(req, None))
}

/// What a page answers when its session check (or a domain call that made it) failed:
/// an ended session goes to the sign-in page, with the notice of why.
pub fn refused(req: &Request, state: &AppState, err: &Error) -> Response {
    match err {
        Error::Unauthenticated(reason) => {
            let why = reason.map(|r| r.as_str()).unwrap_or("unknown");
            let mut resp = to_login(req, Some(why));
            let clear = cookies::build(
                &state.config.server,
                crate::http::cookies::SESSION_COOKIE,
                "",
                Some(0),
            );
            if let Ok(v) = HeaderValue::from_str(&clear) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        // Held at enrolment: the page where a factor is added.
        Error::EnrolmentRequired => {
            Redirect::see_other(format!("{}?enrol=required", paths::SECOND_FACTORS)).into_response()
        }
        err => error_page(err),
    }
}

fn to_login(req: &Request, ended: Option<&str>) -> Response {
    let mut target = String::from(paths::LOGIN);
    let back = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut params = vec![];
    if let Some(why) = ended {
        params.push(format!("ended={why}"));
    }
    if req.method() == poem::http::Method::GET && back != "/" {
        params.push(format!("rd={}", encode(back)));
    }
    if !params.is_empty() {
        target.push('?');
        target.push_str(&params.join("&"));
    }
    Redirect::see_other(target).into_response()
}

/// Percent-encodes a query parameter value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The administrator's words an ended session's sign-in address carries (`why`), signed
/// by this server for that session (`sid`) until `exp` (`sig`).
#[derive(Debug, Default)]
pub struct AdminNote {
    pub why: Option<String>,
    pub sid: Option<String>,
    pub exp: Option<String>,
    pub sig: Option<String>,
}

/// The notice shown on the sign-in page for `?ended=<reason>`, with the administrator's
/// words when the page's address carries them signed and unexpired (SPEC §19); else the
/// plain notice.
pub fn ended_notice_with(state: &AppState, reason: &str, note: &AdminNote) -> String {
    let sealed = |why: &str, sid: &str, exp: &str, sig: &str| {
        exp.parse::<i64>().is_ok_and(|exp| {
            notice_is_sealed(&state.link_key, sid, exp, why, sig, crate::clock::now())
        })
    };
    match (&note.why, &note.sid, &note.exp, &note.sig) {
        (Some(why), Some(sid), Some(exp), Some(sig)) if sealed(why, sid, exp, sig) => {
            format!("{ENDED_NOTICE} {why}")
        }
        _ => ended_notice(reason),
    }
}

/// The notice shown on the sign-in page for `?ended=<reason>`.
pub fn ended_notice(reason: &str) -> String {
    match crate::model::EndReason::parse(reason).and_then(|r| r.explanation()) {
        Some(why) => format!("{ENDED_NOTICE} {why}"),
        None => ENDED_NOTICE.to_string(),
    }
}

/// The page of an address that leads nowhere (404), in the frame of every page.
pub fn not_found_page() -> Response {
    let markup = layout(
        "Page not found",
        None,
        html! {
            main.narrow #main {
                h1 { "Page not found" }
                p { "There is no page at this address. It may have moved, or the link may be mistyped." }
                p { a.button href="/" { "Go to Doorman" } }
            }
        },
    );
    html_response(markup)
        .with_status(StatusCode::NOT_FOUND)
        .into_response()
}

/// A page-shaped error: the same status and message the API would give.
pub fn error_page(err: &Error) -> Response {
    let (status, body) = describe(err);
    let markup = layout(
        "Error",
        None,
        html! {
            main.narrow #main {
                h1 { "Something is not right" }
                p.notice.error { (body.message) }
                p { a href="/" { "Back to Doorman" } }
            }
        },
    );
    html_response(markup).with_status(status).into_response()
}

pub fn html_response(markup: Markup) -> poem::web::Html<String> {
    poem::web::Html(markup.into_string())
}

/// The frame of every page. `who` is the signed-in user and the session's CSRF token.
pub fn layout(title: &str, who: Option<(&Authed, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Doorman" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { (PreEscaped(DOOR_ICON)) " Doorman" }
                    @if let Some((authed, csrf)) = who {
                        nav {
                            span.who { (authed.principal.email) }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                (body)
                script src="/assets/app.js" defer {}
            }
        }
    }
}

const DOOR_ICON: &str = r#"<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"><path d="M4 21h16M6 21V3h12v18M14 12h.01"/></svg>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(encode("/a b?c=d&e"), "/a%20b%3Fc%3Dd%26e");
    }
}
