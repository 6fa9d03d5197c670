//! Settings › Security › Active Sessions: the My Sessions tab and the actions on one's
//! own sessions. The Users Sessions tab is in `admin_sessions`.

use maud::html;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::confirm::{Confirm, confirm_page};
use super::components::session::{AppSignOutForm, app_sign_outs};
use super::components::session::{
    apps_notice, done_notice, geo_attribution, session_cells, session_headings,
};
use super::components::step_up::{Guarded, StepUpFields, confirm_its_you};
use super::extract::{Client, CsrfForm, PageResult, PageSession, csrf_field};
use super::nav::settings_page;
use super::{client_of, error_page, html_response, presented, refused_token};
use crate::domain::factors::step_up;
use crate::domain::oidc::sign_out;
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
    /// The session just ended or signed out of an app: its apps' sign-outs are told.
    session: Option<String>,
    /// The app it was signed out of, alone.
    app: Option<String>,
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
    let fresh = step_up::is_fresh(&state, &me);
    let alerted = match domain::alerted(&state, &list).await {
        Ok(a) => a,
        Err(err) => return error_page(&err),
    };
    let apps = match &notice.session {
        Some(id) => sign_out::apps_of(&state, &me, id, sign_out::As::Owner)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let body = html! {
        div {
            @if state.mailer.is_none() && admin_scope(&me.principal).is_ok() {
                p.notice role="note" { "Email alerts are off: set " code { "mail.smtp_url" } " to email people when they sign in from a new device or country." }
            }
            @if let Some(n) = done_notice(notice.done) { p.notice.ok role="status" { (n) } }
            @if let Some(n) = apps_notice(&apps, notice.app.as_deref(), now) { (n) }
            h2 { "This device" }
            @for s in &current {
                section.card.current-box aria-label="Current session" {
                    p { span.badge { "Current" } " " span.muted { "You are using this session. To end it, sign out." } }
                    dl.current {
                        @for (heading, cell) in session_cells(s, now, alerted.contains(&s.pk)) {
                            div { dt { (heading) } dd { (cell) } }
                        }
                    }
                    (app_sign_outs(&format!("{SESSIONS_PATH}/apps/sign-out"), &csrf, s))
                }
            }
            h2 { "Other sessions (" (others.len()) ")" }
            @if others.is_empty() {
                p.muted { "You are not signed in anywhere else." }
            } @else {
                table.sessions.cards {
                    thead { tr { @for h in session_headings() { th { (h) } } th { span.sr { "Action" } } } }
                    tbody {
                        @for s in &others {
                            tr {
                                @for (heading, cell) in session_cells(s, now, alerted.contains(&s.pk)) { td data-label=(heading) { (cell) } }
                                td.act {
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
                    // One confirmation (SPEC §22): the browser's dialog when the session
                    // confirmed it is its person recently; otherwise the server's page,
                    // which asks for the password at the same time.
                    form method="post" action=(format!("{SESSIONS_PATH}/end-others"))
                        data-confirm=[fresh.then(|| format!("End all {} other sessions? They will be signed out.", others.len()))] {
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
) -> PageResult {
    domain::end_mine(&state, &me, &form.id).await?;
    let id = super::encode(&form.id);
    Ok(Redirect::see_other(format!("{SESSIONS_PATH}?done=1&session={id}")).into_response())
}

csrf_field!(TerminateForm, ConfirmForm);

/// "Sign out of Grafana" on one of my sessions: that app only (SPEC §21).
#[handler]
pub async fn sign_out_app(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AppSignOutForm>,
) -> Response {
    match sign_out::sign_out_of_app(&state, &me, &form.id, &form.client_id, sign_out::As::Owner)
        .await
    {
        Ok(()) => {
            let (id, app) = (super::encode(&form.id), super::encode(&form.client_id));
            Redirect::see_other(format!("{SESSIONS_PATH}?session={id}&app={app}")).into_response()
        }
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
    state: Data<&AppState>,
    Client(client): Client,
    CsrfForm { me, form, token }: CsrfForm<ConfirmForm>,
) -> PageResult {
    if form.confirm != "yes" {
        let (_, list) = domain::list_mine_by_token(&state, &token, || None).await?;
        let count = list.len().saturating_sub(1);
        let question = format!("End all {count} other sessions?");
        let action = format!("{SESSIONS_PATH}/end-others");
        let confirm = Confirm {
            step_up: !step_up::is_fresh(&state, &me),
            ..Confirm::new(
                &question,
                "Every other device signed in as you will be signed out on its next request. This device stays signed in.",
                &action,
                &[],
                SESSIONS_PATH,
            )
        };
        return Ok(confirm_page(&me, &form.csrf, &confirm));
    }
    let guarded = Guarded {
        what: "end all your other sessions",
        action: &format!("{SESSIONS_PATH}/end-others"),
        fields: &[("confirm", "yes".to_string())],
        cancel: SESSIONS_PATH,
    };
    confirm_its_you(&state, &client, &me, &form.csrf, &form.step_up, &guarded).await?;
    let n = domain::end_my_others(&state, &me).await?;
    Ok(Redirect::see_other(format!("{SESSIONS_PATH}?done={n}")).into_response())
}

/// "Download my data": the same JSON document as `GET /api/v1/me/export`.
#[handler]
pub async fn export(state: Data<&AppState>, PageSession { me, .. }: PageSession) -> PageResult {
    let export = privacy::export_mine(&state, &me.principal).await?;
    Ok(Response::builder()
        .content_type("application/json; charset=utf-8")
        .header(
            "Content-Disposition",
            "attachment; filename=\"doorman-data.json\"",
        )
        .header("Cache-Control", "no-store")
        .body(DataExport::from(&export).to_json_string()))
}
