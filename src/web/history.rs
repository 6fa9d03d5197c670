//! The Sign-in history tab: one's own sign-in attempts, successes and failures.

use maud::html;
use poem::web::{Data, Query};
use poem::{IntoResponse, handler};
use serde::Deserialize;

use super::components::session::{flag_img, geo_attribution, time_cell};
use super::extract::{PageResult, PageSession};
use super::nav::settings_page;
use super::{encode, html_response};
use crate::domain::audit::history;
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
    state: Data<&AppState>,
    PageSession { me, csrf, .. }: PageSession,
    q: poem::Result<Query<HistoryQuery>>,
) -> PageResult {
    let q = q.map(|q| q.0).unwrap_or_default();
    let page = history::list(&state, &me, q.user_id, None, Some(&q.cursor)).await?;
    let now = crate::clock::now();
    let body = html! {
        div {
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
                table.cards.history {
                    thead { tr { th { "When" } th { "Outcome" } th { "Device" } th { "Location" } } }
                    tbody {
                        @for r in &page.items {
                            tr {
                                td { (time_cell(now, r.at)) span.exact { (crate::clock::utc(r.at)) } }
                                td data-label="Outcome" {
                                    @if r.success { span.badge { "Signed in" } }
                                    @else { span.badge.fail { "Refused" } " " span.muted { (outcome(&r.reason)) } }
                                }
                                td data-label="Device" {
                                    @for (i, part) in r.device.label().split(" · ").enumerate() {
                                        @if i > 0 { " · " }
                                        span.nw { (part) }
                                    }
                                }
                                td data-label="Location" {
                                    span.place { (flag_img(r.location.country_code.as_deref())) span { (r.location.label()) } }
                                    span.ip { (r.ip) }
                                }
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
    Ok(html_response(settings_page(&me, &csrf, "Sign-in history", PATH, body)).into_response())
}

fn outcome(reason: &str) -> &'static str {
    match reason {
        "wrong_password" => "wrong password",
        "user_disabled" => "account disabled",
        "rate_limited" => "too many attempts",
        _ => "refused",
    }
}
