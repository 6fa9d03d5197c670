//! The Sign-in history tab: one's own sign-in attempts, successes and failures.

use maud::html;
use poem::web::{Data, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{flag_img, geo_attribution, settings_page, tabs, time_cell};
use super::{encode, error_page, html_response, page_session};
use crate::domain::audit::history;
use crate::domain::tokens;
use crate::state::AppState;

pub use crate::paths::HISTORY as PATH;

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    cursor: String,
    /// Another user's history (admins, for users in their scope; the Users page links
    /// here).
    user_id: Option<i64>,
}

#[handler]
pub async fn show(
    req: &Request,
    state: Data<&AppState>,
    q: poem::Result<Query<HistoryQuery>>,
) -> Response {
    let (me, token) = match page_session(req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let q = q.map(|q| q.0).unwrap_or_default();
    let page = match history::list(&state, &me, q.user_id, None, Some(&q.cursor)).await {
        Ok(p) => p,
        Err(err) => return error_page(&err),
    };
    let csrf = tokens::csrf_for_session(&token);
    let now = crate::clock::now();
    let body = html! {
        div {
            (tabs(&me, "history"))
            @if let Some(id) = q.user_id.filter(|id| *id != me.principal.user_id.0) {
                p.notice {
                    "The sign-in history of "
                    @match page.items.first() { Some(r) => { strong { (r.email) } } None => { "user " (id) } }
                    ". " a href=(format!("{}?user_id={id}", crate::paths::USERS_SESSIONS)) { "Their sessions" }
                }
            }
            @if page.items.is_empty() {
                p.muted { "No sign-ins yet." }
            } @else {
                table {
                    thead { tr { th { "When" } th { "Outcome" } th { "Device" } th { "IP" } th { "Location" } } }
                    tbody {
                        @for r in &page.items {
                            tr {
                                td { (time_cell(now, r.at)) }
                                td {
                                    @if r.success { span.badge { "Signed in" } }
                                    @else { span.badge.fail { "Refused" } " " span.muted { (outcome(&r.reason)) } }
                                }
                                td { (r.device.label()) }
                                td { (r.ip) }
                                td { span.place { (flag_img(r.location.country_code.as_deref())) span { (r.location.label()) } } }
                            }
                        }
                    }
                }
                @if let Some(next) = &page.next_cursor {
                    div.pager { span {} a href=(format!("{PATH}?cursor={}{}", encode(next), q.user_id.map(|u| format!("&user_id={u}")).unwrap_or_default())) { "Older →" } }
                }
            }
            (geo_attribution())
        }
    };
    html_response(settings_page(&me, &csrf, "Sign-in history", PATH, body)).into_response()
}

fn outcome(reason: &str) -> &'static str {
    match reason {
        "wrong_password" => "wrong password",
        "user_disabled" => "account disabled",
        "rate_limited" => "too many attempts",
        _ => "refused",
    }
}
