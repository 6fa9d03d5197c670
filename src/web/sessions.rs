//! Settings › Security › Active Sessions: the My Sessions tab and the actions on one's
//! own sessions. The Users Sessions tab is in `admin_sessions`.

use maud::html;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{
    AppSignOutForm, CsrfForm, Guarded, StepUpFields, app_sign_outs, confirm_its_you, confirm_page,
    csrf_field, done_notice, geo_attribution, session_cells, session_headings, settings_page, tabs,
};
use super::{client_of, error_page, html_response, page_session, presented, refused_token};
use crate::domain::people::privacy;
use crate::domain::permissions::admin_scope;
use crate::domain::sessions as domain;
use crate::domain::tokens;
use crate::http::export::DataExport;
use crate::model::Session;
use crate::paths::{EXPORT, SESSIONS as SESSIONS_PATH};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct Notice {
    done: Option<u64>,
}

#[handler]
pub async fn show(req: &Request, state: Data<&AppState>, notice: Query<Notice>) -> Response {
    let token = match presented(req) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let (me, list) = match domain::list_mine_by_token(&state, &token, client_of(req, &state)).await
    {
        Ok(found) => found,
        Err(err) => return refused_token(req, &state, &err, &token).await,
    };
    let csrf = tokens::csrf_for_session(&token);
    let now = crate::clock::now();
    let (current, others): (Vec<&Session>, Vec<&Session>) =
        list.iter().partition(|s| s.pk == me.session.pk);
    let body = html! {
        div {
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
                        @for (heading, cell) in session_cells(s, now) {
                            div { dt { (heading) } dd { (cell) } }
                        }
                    }
                }
            }
            h2 { "Other sessions (" (others.len()) ")" }
            @if others.is_empty() {
                p.muted { "You are not signed in anywhere else." }
            } @else {
                table {
                    thead { tr { @for h in session_headings() { th { (h) } } th { span.sr { "Action" } } } }
                    tbody {
                        @for s in &others {
                            tr {
                                @for (_, cell) in session_cells(s, now) { td { (cell) } }
                                td {
                                    form method="post" action=(format!("{SESSIONS_PATH}/terminate")) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="id" value=(s.id.0);
                                        button.danger type="submit" { "Terminate" }
                                    }
                                    (app_sign_outs(&format!("{SESSIONS_PATH}/apps/sign-out"), &csrf, s))
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
            h2 { "Your data" }
            p {
                a href=(EXPORT) download="doorman-data.json" { "Download my data" }
                " " span.muted { "(JSON: your profile, sessions, devices, sign-in history and alerts)" }
            }
            (geo_attribution())
        }
    };
    html_response(settings_page(
        &me,
        &csrf,
        "Active sessions",
        SESSIONS_PATH,
        body,
    ))
    .into_response()
}

#[derive(Deserialize)]
pub struct TerminateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

#[handler]
pub async fn terminate(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<TerminateForm>,
) -> Response {
    match domain::end_mine(&state, &me, &form.id).await {
        Ok(()) => Redirect::see_other(format!("{SESSIONS_PATH}?done=1")).into_response(),
        Err(err) => error_page(&err),
    }
}

csrf_field!(TerminateForm, ConfirmForm);

/// "Sign out of Grafana" on one of my sessions: that app only (SPEC §21).
#[handler]
pub async fn sign_out_app(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AppSignOutForm>,
) -> Response {
    let who = crate::domain::oidc::sign_out::As::Owner;
    match crate::domain::oidc::sign_out::sign_out_of_app(
        &state,
        &me,
        &form.id,
        &form.client_id,
        who,
    )
    .await
    {
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
    #[serde(flatten)]
    step_up: StepUpFields,
}

#[handler]
pub async fn end_others(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, token }: CsrfForm<ConfirmForm>,
) -> Response {
    if form.confirm != "yes" {
        let count = match domain::list_mine_by_token(&state, &token, || None).await {
            Ok((_, l)) => l.len().saturating_sub(1),
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
    let guarded = Guarded {
        what: "end all your other sessions",
        action: &format!("{SESSIONS_PATH}/end-others"),
        fields: &[("confirm", "yes".to_string())],
        cancel: SESSIONS_PATH,
    };
    if let Err(page) = confirm_its_you(req, &state, &me, &form.csrf, &form.step_up, &guarded).await
    {
        return page;
    }
    match domain::end_my_others(&state, &me).await {
        Ok(n) => Redirect::see_other(format!("{SESSIONS_PATH}?done={n}")).into_response(),
        Err(err) => error_page(&err),
    }
}

/// "Download my data": the same JSON document as `GET /api/v1/me/export`.
#[handler]
pub async fn export(req: &Request, state: Data<&AppState>) -> Response {
    let (me, _) = match page_session(req, &state).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    match privacy::export_mine(&state, &me.principal).await {
        Ok(export) => Response::builder()
            .content_type("application/json; charset=utf-8")
            .header(
                "Content-Disposition",
                "attachment; filename=\"doorman-data.json\"",
            )
            .header("Cache-Control", "no-store")
            .body(DataExport::from(&export).to_json_string()),
        Err(err) => error_page(&err),
    }
}
