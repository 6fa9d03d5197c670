//! Settings › Security › Second factors: a person's authenticator apps and passkeys,
//! their recovery codes, and (admins) the account's "require a second factor". The
//! factor list is [`section`], so that another page (the Profile) can show it too;
//! its actions post here and come back here.

use maud::{Markup, html};
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{
    CsrfForm, Guarded, StepUpFields, csrf_field, nav_tabs, recovery_codes_card, settings_page,
    step_up_refusal, time_cell, totp_setup,
};
use super::{error_page, html_response, page_session};
use crate::domain::factors::manage::{self as factors, Overview};
use crate::domain::factors::passkeys;
use crate::domain::factors::{policy, webauthn};
use crate::domain::permissions::admin_scope;
use crate::domain::tokens;
use crate::error::Error;
use crate::model::Authed;
use crate::model::UserId;
use crate::paths::SECOND_FACTORS as PATH;
use crate::state::AppState;

fn action(name: &str) -> String {
    format!("{PATH}/{name}")
}

/// The account policy an admin sees on the page: the account's name and whether a
/// second factor is required of everyone in it.
pub struct Policy {
    pub account: String,
    pub required: bool,
    /// Required by `security.require_second_factor` for the whole install.
    pub install: bool,
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "passkey" => "Passkey",
        _ => "Authenticator app",
    }
}

/// The person's factors with their actions, adding one, and the recovery codes.
pub fn section(
    csrf: &str,
    o: &Overview,
    passkeys_enabled: bool,
    policy: Option<&Policy>,
    now: i64,
) -> Markup {
    html! {
        section.second-factors aria-label="Second factors" {
            @if o.has_active() {
                p.status.on { "Two-step verification is " strong { "on" } ": signing in asks for a second factor after your password." }
            } @else {
                p.status.off { "Two-step verification is " strong { "off" } ". Add an authenticator app or a passkey so that a stolen password is not enough to sign in as you." }
            }
            @if !o.factors.is_empty() {
                table.factors {
                    thead { tr { th { "Factor" } th { "Name" } th { "Added" } th { "Last used" } th { span.sr { "Actions" } } } }
                    tbody {
                        @for f in &o.factors {
                            tr {
                                td { (kind_label(&f.kind)) @if !f.active { br; span.badge.muted { "Not activated" } } }
                                td {
                                    form.inline method="post" action=(action("rename")) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="id" value=(f.id);
                                        input type="text" name="name" value=(f.name) maxlength="64" aria-label="Name" required;
                                        button type="submit" { "Rename" }
                                    }
                                }
                                td { (time_cell(now, f.created_at)) }
                                td { @if let Some(t) = f.last_used_at { (time_cell(now, t)) } @else { span.muted { "Never" } } }
                                td {
                                    form method="post" action=(action("remove"))
                                        data-confirm=(format!("Remove {}? You will no longer be able to sign in with it.", f.name)) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="id" value=(f.id);
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.add-factors {
                form.card method="post" action=(action("totp")) {
                    h3 { "Add an authenticator app" }
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Name" input type="text" name="name" placeholder="Phone" maxlength="64"; }
                    button.primary type="submit" { "Add authenticator app" }
                }
                @if passkeys_enabled {
                    form.card.add-passkey method="post" action=(action("passkey")) {
                        h3 { "Add a passkey or security key" }
                        input type="hidden" name="csrf" value=(csrf);
                        label { "Name" input type="text" name="name" placeholder="Laptop" maxlength="64"; }
                        button.primary type="submit" { "Add passkey" }
                        p.muted { "Your device's screen lock, a phone or a security key. It also lets you sign in without a password." }
                    }
                }
            }
            @if o.has_active() {
                h3 { "Recovery codes" }
                p { (o.recovery_codes_left) " of 10 recovery codes left. Each signs you in once when you cannot use your second factor." }
                form method="post" action=(action("recovery-codes"))
                    data-confirm="Get new recovery codes? The old ones stop working." {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Get new recovery codes" }
                }
            }
            @if let Some(p) = policy {
                h3 { "Policy" }
                @if p.install {
                    p.muted { "A second factor is required for everyone on this Doorman (" code { "security.require_second_factor" } ")." }
                }
                form method="post" action=(action("policy")) {
                    input type="hidden" name="csrf" value=(csrf);
                    label.check {
                        input type="checkbox" name="required" value="yes" checked[p.required];
                        " Require a second factor for everyone in " (p.account)
                    }
                    p.muted { "People without one set one up right after their password at their next sign-in." }
                    button type="submit" { "Save policy" }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Notice {
    done: Option<String>,
    review: Option<String>,
}

fn notice_text(done: &str) -> Option<&'static str> {
    Some(match done {
        "added" => "Your authenticator app is active.",
        "passkey" => "Your passkey is added.",
        "removed" => "The factor is removed.",
        "renamed" => "The factor is renamed.",
        "policy" => "The policy is saved.",
        "reset" => "The user's second factors are removed and their sessions ended.",
        _ => return None,
    })
}

async fn policy_of(state: &AppState, me: &Authed) -> Option<Policy> {
    admin_scope(&me.principal).ok()?;
    let required = policy::account_policy(state, me.principal.account_id)
        .await
        .ok()?;
    Some(Policy {
        account: me.principal.account_name.clone(),
        required,
        install: state.config.security.require_second_factor,
    })
}

fn frame(me: &Authed, csrf: &str, title: &str, body: Markup) -> Response {
    let body = html! {
        p.breadcrumb { "Settings › Security" }
        h1 { (title) }
        (nav_tabs(me, "factors"))
        (body)
    };
    html_response(settings_page(me, csrf, title, PATH, body)).into_response()
}

#[handler]
pub async fn show(req: &Request, state: Data<&AppState>, notice: Query<Notice>) -> Response {
    let (me, token) = match page_session(req, &state).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let csrf = tokens::csrf_for_session(&token);
    let o = match factors::overview(&state, me.principal.user_id).await {
        Ok(o) => o,
        Err(err) => return error_page(&err),
    };
    let policy = policy_of(&state, &me).await;
    let done = notice.done.as_deref().and_then(notice_text);
    let body = html! {
        @if let Some(n) = done { p.notice.ok role="status" { (n) } }
        @if me.enrolment_pending {
            p.notice.error role="alert" #enrol-required {
                "A second factor is now required for your account. Add one below to go on: until then this session can only add a factor or sign out."
            }
        }
        @if notice.review.is_some() {
            p.notice role="status" { "You signed in with a recovery code, which cannot be used again. Check your second factors below: remove any you no longer have, and get new recovery codes if few are left." }
        }
        (section(&csrf, &o, crate::domain::factors::webauthn::enabled(&state), policy.as_ref(), crate::clock::now()))
    };
    frame(&me, &csrf, "Second factors", body)
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(flatten)]
    step_up: StepUpFields,
}

#[derive(Deserialize)]
pub struct ActivateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: i64,
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct IdForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: i64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    confirm: String,
    #[serde(flatten)]
    step_up: StepUpFields,
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    required: String,
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_id: i64,
    #[serde(default)]
    back: String,
    #[serde(default)]
    confirm: String,
}

csrf_field!(AddForm, ActivateForm, IdForm, PolicyForm, ResetForm);

fn client(req: &Request, state: &AppState) -> crate::model::ClientInfo {
    crate::client_ip::from_request(req, &state.config.server.trusted_proxies)
}

fn setup_page(
    me: &Authed,
    csrf: &str,
    key: &factors::TotpEnrolment,
    error: Option<&str>,
) -> Response {
    let body = html! {
        (totp_setup(key, &action("activate"), csrf, error))
        p { a href=(PATH) { "Cancel" } }
    };
    frame(me, csrf, "Add an authenticator app", body)
}

#[handler]
pub async fn add_totp(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AddForm>,
) -> Response {
    let proof = form.step_up.proof();
    match factors::start_totp(&state, &me, &client(req, &state), &form.name, proof).await {
        Ok(key) => setup_page(&me, &form.csrf, &key, None),
        Err(err) => {
            let fields = [("name", form.name.clone())];
            let guarded = Guarded {
                what: "add an authenticator app",
                action: &action("totp"),
                fields: &fields,
                cancel: PATH,
            };
            step_up_refusal(&me, &form.csrf, &guarded, &err).unwrap_or_else(|| error_page(&err))
        }
    }
}

#[handler]
pub async fn add_passkey(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AddForm>,
) -> Response {
    let proof = form.step_up.proof();
    let client = client(req, &state);
    match passkeys::start_registration(&state, &me, &client, &form.name, proof).await {
        Ok(ceremony) => frame(
            &me,
            &form.csrf,
            "Add a passkey",
            html! {
                section.card data-passkey {
                    p { "Press the button, then follow your browser: it asks for your screen lock, your phone or your security key." }
                    button.primary type="button" data-ceremony="create" data-options=(ceremony.options) { "Create passkey" }
                    p.muted.passkey-status role="status" {}
                    form method="post" action=(action("passkey/finish")) {
                        input type="hidden" name="csrf" value=(form.csrf);
                        input type="hidden" name="token" value=(ceremony.token);
                        input type="hidden" name="credential" value="";
                    }
                    noscript { p.notice.error { "Passkeys need JavaScript." } }
                }
                p { a href=(PATH) { "Cancel" } }
                script src="/assets/passkeys.js" defer {}
            },
        ),
        Err(err) => {
            let fields = [("name", form.name.clone())];
            let guarded = Guarded {
                what: "add a passkey",
                action: &action("passkey"),
                fields: &fields,
                cancel: PATH,
            };
            step_up_refusal(&me, &form.csrf, &guarded, &err).unwrap_or_else(|| error_page(&err))
        }
    }
}

#[derive(Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    credential: String,
}

csrf_field!(FinishForm);

#[handler]
pub async fn finish_passkey(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<FinishForm>,
) -> Response {
    match passkeys::finish_registration(&state, &me, &form.token, &form.credential).await {
        Ok(Some(codes)) => frame(
            &me,
            &form.csrf,
            "Passkey added",
            html! {
                p.notice.ok role="status" { "Your passkey is added." }
                (recovery_codes_card(&codes))
                p { a.button.primary href=(PATH) { "I have saved them, continue" } }
            },
        ),
        Ok(None) => Redirect::see_other(format!("{PATH}?done=passkey")).into_response(),
        Err(err) => error_page(&err),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

csrf_field!(CsrfOnly);

/// The passkey ceremony of a "Confirm it's you" page (JSON for its script).
#[handler]
pub async fn step_up_passkey(
    state: Data<&AppState>,
    CsrfForm { me, .. }: CsrfForm<CsrfOnly>,
) -> Response {
    match webauthn::step_up_ceremony(&state, &me).await {
        Ok(Some(c)) => Response::builder()
            .content_type("application/json")
            .header("Cache-Control", "no-store")
            .body(format!(
                r#"{{"ceremony":"{}","options":{}}}"#,
                c.token, c.options
            )),
        Ok(None) => poem::http::StatusCode::NOT_FOUND.into_response(),
        Err(err) => {
            let (status, body) = crate::http::errors::describe(&err);
            poem::web::Json(body).with_status(status).into_response()
        }
    }
}

#[handler]
pub async fn activate(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<ActivateForm>,
) -> Response {
    match factors::activate_mine(&state, &me, &client(req, &state), form.id, &form.code).await {
        Ok(done) => match done.recovery_codes {
            Some(codes) => frame(
                &me,
                &form.csrf,
                "Authenticator app added",
                html! {
                    p.notice.ok role="status" { "Your authenticator app is active. From now on, signing in asks for its code." }
                    (recovery_codes_card(&codes))
                    p { a.button.primary href=(PATH) { "I have saved them, continue" } }
                },
            ),
            None => Redirect::see_other(format!("{PATH}?done=added")).into_response(),
        },
        Err(err @ (Error::InvalidCode | Error::RateLimited { .. })) => {
            let (_, body) = crate::http::errors::describe(&err);
            let p = &me.principal;
            match factors::pending_totp(&state, p.user_id, &p.email, form.id).await {
                Ok(Some(key)) => setup_page(&me, &form.csrf, &key, Some(&body.message)),
                Ok(None) => error_page(&Error::NotFound),
                Err(err) => error_page(&err),
            }
        }
        Err(err) => error_page(&err),
    }
}

#[handler]
pub async fn rename(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<IdForm>,
) -> Response {
    match factors::rename(&state, &me, form.id, &form.name).await {
        Ok(()) => Redirect::see_other(format!("{PATH}?done=renamed")).into_response(),
        Err(err) => error_page(&err),
    }
}

/// The no-JavaScript confirmation of a factor's removal or of new recovery codes.
fn confirm(me: &Authed, csrf: &str, question: &str, detail: &str, to: &str, id: i64) -> Response {
    frame(
        me,
        csrf,
        question,
        html! {
            p { (detail) }
            form.card method="post" action=(to) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirm" value="yes";
                input type="hidden" name="id" value=(id);
                div.actions {
                    button.danger type="submit" { "Yes, go ahead" }
                    a.button href=(PATH) { "Cancel" }
                }
            }
        },
    )
}

#[handler]
pub async fn remove(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<IdForm>,
) -> Response {
    let to = action("remove");
    if form.confirm != "yes" {
        return confirm(
            &me,
            &form.csrf,
            "Remove this factor?",
            "You will no longer be able to sign in with it.",
            &to,
            form.id,
        );
    }
    let proof = form.step_up.proof();
    match factors::remove(&state, &me, &client(req, &state), form.id, proof).await {
        Ok(()) => Redirect::see_other(format!("{PATH}?done=removed")).into_response(),
        Err(err) => {
            let fields = [("confirm", "yes".to_string()), ("id", form.id.to_string())];
            let guarded = Guarded {
                what: "remove a second factor",
                action: &to,
                fields: &fields,
                cancel: PATH,
            };
            step_up_refusal(&me, &form.csrf, &guarded, &err).unwrap_or_else(|| error_page(&err))
        }
    }
}

#[handler]
pub async fn recovery_codes(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<IdForm>,
) -> Response {
    let to = action("recovery-codes");
    if form.confirm != "yes" {
        return confirm(
            &me,
            &form.csrf,
            "Get new recovery codes?",
            "Your current recovery codes stop working.",
            &to,
            0,
        );
    }
    let proof = form.step_up.proof();
    match factors::regenerate_recovery_codes(&state, &me, &client(req, &state), proof).await {
        Ok(codes) => frame(
            &me,
            &form.csrf,
            "New recovery codes",
            html! {
                p.notice.ok role="status" { "Your old recovery codes no longer work." }
                (recovery_codes_card(&codes))
                p { a.button.primary href=(PATH) { "I have saved them, continue" } }
            },
        ),
        Err(err) => {
            let fields = [("confirm", "yes".to_string())];
            let guarded = Guarded {
                what: "get new recovery codes",
                action: &to,
                fields: &fields,
                cancel: PATH,
            };
            step_up_refusal(&me, &form.csrf, &guarded, &err).unwrap_or_else(|| error_page(&err))
        }
    }
}

#[handler]
pub async fn save_policy(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<PolicyForm>,
) -> Response {
    let on = form.required == "yes";
    match policy::set_account_policy(&state, &me, me.principal.account_id, on).await {
        Ok(()) => Redirect::see_other(format!("{PATH}?done=policy")).into_response(),
        Err(err) => error_page(&err),
    }
}

#[handler]
pub async fn reset(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<ResetForm>,
) -> Response {
    let local = form.back.starts_with('/') && !form.back.starts_with("//");
    let back = if local { form.back.as_str() } else { PATH };
    if form.confirm != "yes" {
        return frame(
            &me,
            &form.csrf,
            "Reset this user's second factors?",
            html! {
                p { "Every second factor and recovery code of the user is removed, and all their sessions end. They are emailed, and set up a new factor at their next sign-in if one is required." }
                form.card method="post" action=(action("reset")) {
                    input type="hidden" name="csrf" value=(form.csrf);
                    input type="hidden" name="confirm" value="yes";
                    input type="hidden" name="user_id" value=(form.user_id);
                    input type="hidden" name="back" value=(back);
                    div.actions {
                        button.danger type="submit" { "Yes, reset them" }
                        a.button href=(back) { "Cancel" }
                    }
                }
            },
        );
    }
    match policy::admin_reset(&state, &me, UserId(form.user_id)).await {
        Ok(ended) => {
            // Back on this page, the notice says what happened; elsewhere (the sessions
            // listing) it says how many sessions ended, as that page's notices do.
            let sep = if back.contains('?') { '&' } else { '?' };
            let done = if back == PATH {
                "reset".to_string()
            } else {
                ended.to_string()
            };
            Redirect::see_other(format!("{back}{sep}done={done}")).into_response()
        }
        Err(err) => error_page(&err),
    }
}
