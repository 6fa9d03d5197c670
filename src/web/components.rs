//! What several pages show or do the same way: the settings menu and the frame of
//! every settings page, the Active Sessions tabs, a session's cells, the time element,
//! the confirmation step, [`CsrfForm`], the prologue of every action (read the form,
//! check its CSRF token, find the session), and the CSRF token of forms shown before
//! sign-in.

use maud::{Markup, PreEscaped, html};
use poem::http::{HeaderValue, header};
use poem::web::Form;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use serde::de::DeserializeOwned;

use super::{error_page, html_response, layout, page_session};
use crate::clock::{relative, utc};
use crate::domain::permissions::admin_scope;
use crate::error::Error;
use crate::http::cookies;
use crate::http::errors::describe;
use crate::model::Authed;
use crate::model::Session;
use crate::paths;
use crate::state::AppState;

/// Who sees an entry of the settings menu.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    Admins,
    Owner,
}

/// The settings menu, group by group: (group, label, path, who sees it, the paths
/// under it that mark it current). A new page is one line here.
fn menu_entries() -> Vec<(&'static str, &'static str, &'static str, Audience)> {
    vec![
        (
            "Security",
            "Active Sessions",
            paths::SESSIONS,
            Audience::Everyone,
        ),
        (
            "Security",
            "Second factors",
            paths::SECOND_FACTORS,
            Audience::Everyone,
        ),
        (
            "Security",
            "Security log",
            paths::SECURITY_LOG,
            Audience::Everyone,
        ),
        ("Account", "Profile", paths::PROFILE, Audience::Everyone),
        (
            "Account",
            "Sign-in alerts",
            paths::NOTIFICATIONS,
            Audience::Everyone,
        ),
        ("Team", "Users", paths::TEAM_USERS, Audience::Admins),
        ("Team", "Accounts", paths::TEAM_ACCOUNTS, Audience::Owner),
        ("Team", "Team log", paths::TEAM_LOG, Audience::Admins),
    ]
}

/// The settings menu; `current` is the path of the page shown (an entry is current
/// for its own path and every path under it, e.g. the Sessions tabs).
pub fn settings_menu(me: &Authed, current: &str) -> Markup {
    let role = me.principal.role;
    let sees = |a: Audience| match a {
        Audience::Everyone => true,
        Audience::Admins => role.rank() >= crate::model::Role::Admin.rank(),
        Audience::Owner => role == crate::model::Role::Owner,
    };
    let entries: Vec<_> = menu_entries().into_iter().filter(|e| sees(e.3)).collect();
    // The Sign-in history tab lives beside Active Sessions.
    let current = if current == paths::HISTORY {
        paths::SESSIONS
    } else {
        current
    };
    let mut groups: Vec<&str> = Vec::new();
    for e in &entries {
        if !groups.contains(&e.0) {
            groups.push(e.0);
        }
    }
    html! {
        nav.menu aria-label="Settings" {
            p.menu-title { "Settings" }
            @for g in &groups {
                p.menu-group { (g) }
                ul {
                    @for e in entries.iter().filter(|e| e.0 == *g) {
                        @let here = current == e.2 || current.starts_with(&format!("{}/", e.2));
                        li { a href=(e.2) aria-current=[here.then_some("page")] { (e.1) } }
                    }
                }
            }
        }
    }
}

/// The frame of every settings page: the settings menu beside the page's content.
pub fn settings_page(
    me: &Authed,
    csrf: &str,
    title: &str,
    current: &str,
    content: Markup,
) -> Markup {
    layout(
        title,
        Some((me, csrf)),
        html! {
            main.settings {
                (settings_menu(me, current))
                div.content { (content) }
            }
        },
    )
}

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
            main.narrow {
                h1 { "This link does not work" }
                p.notice.error role="alert" { (body.message) }
                p { a href=(paths::LOGIN) { "Go to the sign-in page" } }
            }
        },
    );
    html_response(markup).with_status(status).into_response()
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
    html! {
        p.breadcrumb { "Settings › Security" }
        h1 { "Active sessions" }
        (nav_tabs(me, active))
    }
}

/// The Settings › Security tabs alone, for a page with its own heading.
pub fn nav_tabs(me: &Authed, active: &str) -> Markup {
    let is_admin = admin_scope(&me.principal).is_ok();
    html! {
        nav.tabs aria-label="Security" {
            a href=(paths::SESSIONS) aria-current=[(active == "mine").then_some("page")] { "My Sessions" }
            a href=(paths::SECURITY_LOG) aria-current=[(active == "log").then_some("page")] { "Security log" }
            a href=(paths::HISTORY) aria-current=[(active == "history").then_some("page")] { "Sign-in history" }
            a href=(paths::NOTIFICATIONS) aria-current=[(active == "notifications").then_some("page")] { "Alerts" }
            @if is_admin {
                a href=(paths::USERS_SESSIONS) aria-current=[(active == "users").then_some("page")] { "Users Sessions" }
                a href=(paths::TEAM_LOG) aria-current=[(active == "team-log").then_some("page")] { "Team log" }
            }
            a href=(paths::SECOND_FACTORS) aria-current=[(active == "factors").then_some("page")] { "Second factors" }
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

/// "Sign out of Grafana" per app the session signed in to (SPEC §21): each form posts
/// `id` and `client_id` to `action`; the page's handler ends that grant only.
pub fn app_sign_outs(action: &str, csrf: &str, s: &Session) -> Markup {
    html! {
        @for a in &s.signed_in_to {
            form.app-sign-out method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="id" value=(s.id.0);
                input type="hidden" name="client_id" value=(a.client_id);
                button type="submit" { "Sign out of " (a.name) }
            }
        }
    }
}

/// The form of an app sign-out button ([`app_sign_outs`]).
#[derive(serde::Deserialize)]
pub struct AppSignOutForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub client_id: String,
}

csrf_field!(AppSignOutForm);

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
        @if !s.signed_in_to.is_empty() || !s.applications_used.is_empty() {
            br;
            span.muted.used {
                @if !s.signed_in_to.is_empty() {
                    span.signed-in {
                        "Signed in to "
                        @for (i, a) in s.signed_in_to.iter().enumerate() {
                            @if i > 0 { ", " }
                            (a.name)
                        }
                    }
                }
                @if !s.signed_in_to.is_empty() && !s.applications_used.is_empty() { " · " }
                @if !s.applications_used.is_empty() {
                    @if s.signed_in_to.is_empty() { "Used with " } @else { "used with " }
                    @for (i, u) in s.applications_used.iter().enumerate() {
                        @if i > 0 { ", " }
                        (u.name)
                    }
                }
            }
        }
        br;
        span.muted.methods { "Signed in with " (auth_methods_label(s)) }
    }
}

/// The flag (an embedded SVG) and the place in words, the trusted network's name first;
/// for a session now used from another country, where it is now seen from.
pub fn location_cell(s: &Session) -> Markup {
    html! {
        span.place {
            (flag_img(s.location.country_code.as_deref()))
            span { (s.location.label()) }
        }
        @if let Some(moved) = &s.moved_to {
            span.moved {
                (flag_img(moved.location.country_code.as_deref()))
                "Now seen from " (moved.location.place())
                " (signed in from " (s.location.place()) ")"
            }
        }
    }
}

/// A country's flag from the embedded flag-icons set, beside the name (never instead of
/// it: the name is the text, the flag decoration).
pub fn flag_img(code: Option<&str>) -> Markup {
    html! {
        @if let Some(file) = code.and_then(flag_file) {
            img.flag src=(file) alt="" width="20" height="15";
        }
    }
}

/// "IP geolocation by DB-IP", which the database's licence (CC BY 4.0) asks for on every
/// page that shows a location.
pub fn geo_attribution() -> Markup {
    html! {
        p.attribution.muted {
            a href="https://db-ip.com" { "IP geolocation by DB-IP" }
        }
    }
}

pub fn time_cell(now: i64, t: i64) -> Markup {
    html! { time datetime=(utc(t)) title=(utc(t)) { (relative(now, t)) } }
}

/// The address of a two-letter country code's flag, when the embedded set has one.
fn flag_file(code: &str) -> Option<String> {
    let bytes = code.as_bytes();
    if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let path = format!("flags/4x3/{}.svg", code.to_ascii_lowercase());
    super::asset_exists(&path).then(|| format!("/assets/{path}"))
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
    confirm_action(
        me,
        csrf,
        question,
        detail,
        action,
        fields,
        cancel,
        "Yes, end them",
    )
}

/// [`confirm_page`] with the confirming button's label.
#[allow(clippy::too_many_arguments)]
pub fn confirm_action(
    me: &Authed,
    csrf: &str,
    question: &str,
    detail: &str,
    action: &str,
    fields: &[(&str, String)],
    cancel: &str,
    button: &str,
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
                    button.danger type="submit" { (button) }
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
        assert_eq!(flag_file("DE").as_deref(), Some("/assets/flags/4x3/de.svg"));
        assert_eq!(flag_file("X1"), None);
        assert_eq!(flag_file("USA"), None);
        assert_eq!(flag_file("QQ"), None, "no such flag");
        let cell = flag_img(Some("jp")).into_string();
        assert!(cell.contains(r#"src="/assets/flags/4x3/jp.svg""#), "{cell}");
    }
}

/// The two fields a "Confirm it's you" form adds to the form of the action it guards.
#[derive(serde::Deserialize, Default, Clone)]
pub struct StepUpFields {
    #[serde(default)]
    pub step_up_password: String,
    #[serde(default)]
    pub step_up_code: String,
    /// A passkey's answer, and the ceremony it answers.
    #[serde(default)]
    pub step_up_passkey: String,
    #[serde(default)]
    pub step_up_credential: String,
}

impl StepUpFields {
    pub fn proof(&self) -> crate::domain::factors::step_up::Proof {
        if !self.step_up_credential.is_empty() {
            return crate::domain::factors::step_up::Proof::Passkey {
                token: self.step_up_passkey.clone(),
                credential: self.step_up_credential.clone(),
            };
        }
        crate::domain::factors::step_up::Proof::from_fields(
            Some(self.step_up_password.clone()),
            Some(self.step_up_code.clone()),
        )
    }
}

/// What a guarded action is, for the "Confirm it's you" page: what it does ("end all
/// other sessions"), where its form posts, its fields (with `confirm=yes` when it had
/// its confirmation already) and where Cancel goes.
pub struct Guarded<'a> {
    pub what: &'a str,
    pub action: &'a str,
    pub fields: &'a [(&'a str, String)],
    pub cancel: &'a str,
}

/// "Confirm it's you" before a sensitive action (SPEC §12), the same check for every
/// page that has one: the action goes ahead (`Ok`) when the session confirmed recently
/// or the form carries a right password or code; otherwise the answer is the page that
/// asks, inline, and then posts the same action again with everything it had.
pub async fn confirm_its_you(
    req: &Request,
    state: &AppState,
    me: &Authed,
    csrf: &str,
    step_up: &StepUpFields,
    guarded: &Guarded<'_>,
) -> Result<(), Response> {
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    match crate::domain::factors::step_up::require(state, me, &client, step_up.proof()).await {
        Ok(()) => Ok(()),
        Err(err) => {
            Err(step_up_refusal(me, csrf, guarded, &err).unwrap_or_else(|| error_page(&err)))
        }
    }
}

/// The answer to a guarded action the domain refused for want of a (right) proof: the
/// "Confirm it's you" page, with what went wrong when a proof was given. `None` for
/// any other error.
pub fn step_up_refusal(
    me: &Authed,
    csrf: &str,
    guarded: &Guarded<'_>,
    err: &Error,
) -> Option<Response> {
    match err {
        Error::StepUpRequired => Some(step_up_page(me, csrf, guarded, None, 200)),
        Error::Invalid {
            code: "wrong_password" | "missing_proof",
            ..
        }
        | Error::InvalidCode
        | Error::RateLimited { .. } => {
            let (status, body) = crate::http::errors::describe(err);
            Some(step_up_page(
                me,
                csrf,
                guarded,
                Some(&body.message),
                status.as_u16(),
            ))
        }
        _ => None,
    }
}

fn step_up_page(
    me: &Authed,
    csrf: &str,
    g: &Guarded<'_>,
    error: Option<&str>,
    status: u16,
) -> Response {
    let body = html! {
        main.narrow {
            h1 { "Confirm it's you" }
            p { "To " (g.what) ", enter your password again. A code from your authenticator app (or a recovery code) works too." }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            @if me.session.auth_methods.contains(crate::model::AuthMethod::Passkey) {
                section.card.passkey-step-up data-passkey {
                    button.primary type="button" data-ceremony="get" data-begin=(format!("{}/step-up/passkey", paths::SECOND_FACTORS)) { "Confirm with a passkey" }
                    p.muted.passkey-status role="status" {}
                    form method="post" action=(g.action) {
                        input type="hidden" name="csrf" value=(csrf);
                        @for (name, value) in g.fields {
                            input type="hidden" name=(name) value=(value);
                        }
                        input type="hidden" name="step_up_passkey" data-ceremony-token value="";
                        input type="hidden" name="step_up_credential" data-credential value="";
                    }
                }
                script src="/assets/passkeys.js" defer {}
            }
            form.card method="post" action=(g.action) {
                input type="hidden" name="csrf" value=(csrf);
                @for (name, value) in g.fields {
                    input type="hidden" name=(name) value=(value);
                }
                label { "Password" input type="password" name="step_up_password" autocomplete="current-password" autofocus; }
                label { "Or a code" input type="text" name="step_up_code" autocomplete="one-time-code" inputmode="text" maxlength="16"; }
                div.actions {
                    button.primary type="submit" { "Confirm and continue" }
                    a.button href=(g.cancel) { "Cancel" }
                }
            }
        }
    };
    let status = poem::http::StatusCode::from_u16(status).unwrap_or(poem::http::StatusCode::OK);
    html_response(layout("Confirm it's you", Some((me, csrf)), body))
        .with_status(status)
        .into_response()
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

/// "Password + authenticator app": how a session was signed in, for the listings.
pub fn auth_methods_label(s: &Session) -> String {
    s.auth_methods.label()
}

/// A QR code of `text` as inline SVG, drawn here (no third-party service sees the key).
pub fn qr_svg(text: &str) -> Markup {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // The renderer's own XML declaration cannot stand inside HTML.
            let svg = match svg.find("<svg") {
                Some(i) => svg[i..].to_string(),
                None => svg,
            };
            html! { div.qr role="img" aria-label="QR code of the authenticator key" { (PreEscaped(svg)) } }
        }
        Err(_) => html! { p.muted { "The key is too long for a QR code: type it in." } },
    }
}

/// The key of a new authenticator, as a QR code and as text, and the form that
/// activates it with its first code.
pub fn totp_setup(
    key: &crate::domain::factors::manage::TotpEnrolment,
    action: &str,
    csrf: &str,
    error: Option<&str>,
) -> Markup {
    let grouped: String = key
        .secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        section.card.totp-setup aria-label="Set up an authenticator app" {
            ol {
                li { "Open your authenticator app (Google Authenticator, 1Password, Aegis, …) and scan this code:" }
            }
            (qr_svg(&key.otpauth_uri))
            p { "Or type this key in: " code.key data-secret=(key.secret) { (grouped) } }
            ol start="2" {
                li { "Enter the 6-digit code the app shows:" }
            }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="id" value=(key.id);
                label { "Code" input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" required autofocus; }
                button.primary type="submit" { "Activate" }
            }
        }
    }
}

/// Recovery codes, shown once.
pub fn recovery_codes_card(codes: &[String]) -> Markup {
    html! {
        section.card.recovery-codes aria-label="Recovery codes" {
            h2 { "Your recovery codes" }
            p { "Keep these somewhere safe (a password manager, or on paper). Each one signs you in once if you lose your second factor. " strong { "They are shown only now." } }
            ul.codes {
                @for c in codes { li { code { (c) } } }
            }
        }
    }
}

/// The Users page's "Reset second factors" button for one user (admins).
pub fn reset_button(csrf: &str, user: crate::model::UserId, back: &str) -> Markup {
    html! {
        form method="post" action=(format!("{}/reset", paths::SECOND_FACTORS))
            data-confirm="Remove every second factor of this user and sign them out everywhere?" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="user_id" value=(user.0);
            input type="hidden" name="back" value=(back);
            button.danger type="submit" { "Reset second factors" }
        }
    }
}
