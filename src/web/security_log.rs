//! The security log: the Security log tab (one's own events) and the team's log
//! (`/settings/team/log`: admins see their account's, the owner every account's).

use maud::{Markup, html};
use poem::web::{Data, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use serde_json::Value;

use super::components::{nav_tabs, settings_page, time_cell};
use super::{encode, error_page, html_response, page_session};
use crate::domain::audit::events::{self, Event, EventPage, EventQuery};
use crate::domain::permissions::{AdminScope, admin_scope};
use crate::domain::tokens;
use crate::model::{Account, EventType};
use crate::paths::{SECURITY_LOG, TEAM_LOG};
use crate::state::AppState;

/// The filters as they arrive from the GET form; empty means "any".
#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    account_id: String,
    /// `YYYY-MM-DD`, from that day on.
    #[serde(default)]
    since: String,
    /// `YYYY-MM-DD`, up to the end of that day.
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

impl Filters {
    fn query(&self) -> Result<EventQuery, crate::error::Error> {
        let day = |label: &str, s: &str| -> Result<Option<i64>, crate::error::Error> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            crate::clock::parse_day(s).map(Some).ok_or_else(|| {
                crate::error::Error::invalid(
                    "invalid_date",
                    format!("The {label} date is not a date (YYYY-MM-DD)."),
                )
            })
        };
        let id = |label: &str, s: &str| -> Result<Option<i64>, crate::error::Error> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            s.trim().parse().map(Some).map_err(|_| {
                crate::error::Error::invalid("invalid_id", format!("The {label} is not a number."))
            })
        };
        Ok(EventQuery {
            kind: Some(self.kind.clone()).filter(|k| !k.is_empty()),
            user_id: id("user id", &self.user_id)?,
            account_id: id("account", &self.account_id)?,
            since: day("from", &self.since)?,
            until: day("to", &self.until)?.map(|t| t + 86_399),
            limit: None,
            cursor: Some(self.cursor.clone()).filter(|c| !c.is_empty()),
        })
    }

    fn has_filter(&self) -> bool {
        [
            &self.kind,
            &self.user_id,
            &self.account_id,
            &self.since,
            &self.until,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }

    /// The filters as a query string (without cursor), for the next page's link.
    fn query_string(&self) -> String {
        [
            ("type", &self.kind),
            ("user_id", &self.user_id),
            ("account_id", &self.account_id),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}&", encode(v)))
        .collect()
    }
}

/// The Security log tab: the events about the signed-in person.
#[handler]
pub async fn mine(
    req: &Request,
    state: Data<&AppState>,
    filters: poem::Result<Query<Filters>>,
) -> Response {
    let (me, token) = match page_session(req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let f = filters.map(|q| q.0).unwrap_or_default();
    let page = match f.query() {
        Ok(q) => events::list_mine(&state, &me, &q).await,
        Err(err) => Err(err),
    };
    let page = match page {
        Ok(p) => p,
        Err(err) => return error_page(&err),
    };
    let csrf = tokens::csrf_for_session(&token);
    let body = html! {
        p.breadcrumb { "Settings › Security" }
        h1 { "Security log" }
        (nav_tabs(&me, "log"))
        p.muted { "What happened to your account: sign-ins, refused attempts, ended sessions, alerts and changes." }
        (filter_form(SECURITY_LOG, &f, None, false))
        (listing(SECURITY_LOG, &f, &page, false))
    };
    html_response(settings_page(
        &me,
        &csrf,
        "Security log",
        SECURITY_LOG,
        body,
    ))
    .into_response()
}

/// The team's log: the events of the caller's account (admins) or of every account,
/// with an account filter (the owner).
#[handler]
pub async fn team(
    req: &Request,
    state: Data<&AppState>,
    filters: poem::Result<Query<Filters>>,
) -> Response {
    let (me, token) = match page_session(req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let scope = match admin_scope(&me.principal) {
        Ok(s) => s,
        Err(err) => return error_page(&err),
    };
    let f = filters.map(|q| q.0).unwrap_or_default();
    let page = match f.query() {
        Ok(q) => events::list_admin(&state, &me, &q).await,
        Err(err) => Err(err),
    };
    let page = match page {
        Ok(p) => p,
        Err(err) => return error_page(&err),
    };
    let accounts = if scope == AdminScope::All {
        match crate::domain::people::admin_users::list_accounts(&state, &me.principal).await {
            Ok(a) => a,
            Err(err) => return error_page(&err),
        }
    } else {
        Vec::new()
    };
    let csrf = tokens::csrf_for_session(&token);
    let body = html! {
        p.breadcrumb { "Settings › Team" }
        h1 { "Team log" }
        (nav_tabs(&me, "team-log"))
        p.muted {
            @if scope == AdminScope::All { "Security events of every account." }
            @else { "Security events of " (me.principal.account_name) "." }
        }
        (filter_form(TEAM_LOG, &f, Some(&accounts), true))
        (listing(TEAM_LOG, &f, &page, true))
    };
    html_response(settings_page(
        &me,
        &csrf,
        "Team security log",
        TEAM_LOG,
        body,
    ))
    .into_response()
}

fn filter_form(action: &str, f: &Filters, accounts: Option<&[Account]>, is_team: bool) -> Markup {
    html! {
        form.filters method="get" action=(action) role="search" {
            label { "Type"
                select name="type" {
                    option value="" { "Any" }
                    @for t in EventType::ALL {
                        option value=(t.as_str()) selected[f.kind == t.as_str()] { (t.as_str()) }
                    }
                }
            }
            @if is_team {
                label { "User id" input type="text" inputmode="numeric" name="user_id" value=(f.user_id) size="6"; }
            }
            @if let Some(accounts) = accounts.filter(|a| !a.is_empty()) {
                label { "Account"
                    select name="account_id" {
                        option value="" { "All accounts" }
                        @for a in accounts {
                            option value=(a.id) selected[f.account_id == a.id.to_string()] { (a.name) }
                        }
                    }
                }
            }
            label { "From" input type="date" name="since" value=(f.since); }
            label { "To" input type="date" name="until" value=(f.until); }
            button type="submit" { "Filter" }
            @if f.has_filter() { " " a href=(action) { "Clear" } }
        }
    }
}

fn listing(action: &str, f: &Filters, page: &EventPage, is_team: bool) -> Markup {
    let now = crate::clock::now();
    html! {
        @if f.has_filter() {
            p.notice role="status" {
                "Showing " (page.items.len()) @if page.next_cursor.is_some() { "+" }
                " event" @if page.items.len() != 1 { "s" } " matching the filters."
            }
        }
        @if page.items.is_empty() {
            p.muted { "No events." }
        } @else {
            table.events {
                thead { tr {
                    th { "When" } th { "Event" }
                    @if is_team { th { "User" } }
                    th { "By" } th { "Device" } th { "IP" } th { "Location" } th { "Details" }
                } }
                tbody {
                    @for e in &page.items {
                        tr {
                            td { (time_cell(now, e.at)) }
                            td { span.badge.(badge_class(&e.kind)) { (label(&e.kind)) } br; code.muted { (e.kind) } }
                            @if is_team {
                                td { (user_cell(action, f, e)) }
                            }
                            td { (actor_cell(e)) }
                            td { (e.device.label()) }
                            td { (e.ip) }
                            td { (e.location.label()) }
                            td { (details(e)) }
                        }
                    }
                }
            }
            @if let Some(next) = &page.next_cursor {
                div.pager { span {} a href=(format!("{action}?{}cursor={}", f.query_string(), encode(next))) { "Older →" } }
            }
        }
    }
}

fn user_cell(action: &str, f: &Filters, e: &Event) -> Markup {
    match &e.user {
        Some((id, email)) => {
            let only = Filters {
                user_id: id.to_string(),
                cursor: String::new(),
                ..f.clone()
            };
            let text = email
                .clone()
                .unwrap_or_else(|| format!("deleted user #{id}"));
            html! { a href=(format!("{action}?{}", only.query_string())) title="Only this user's events" { (text) } }
        }
        None => html! { span.muted { "—" } },
    }
}

fn actor_cell(e: &Event) -> Markup {
    match (&e.actor, &e.user) {
        (Some((a, _)), Some((u, _))) if a == u => html! { span.muted { "themself" } },
        (Some((id, email)), _) => {
            html! { (email.clone().unwrap_or_else(|| format!("deleted user #{id}"))) }
        }
        (None, _) => html! { span.muted { "—" } },
    }
}

/// A few words for the type.
fn label(kind: &str) -> &'static str {
    let Some(t) = EventType::parse(kind) else {
        return "Event";
    };
    match t {
        EventType::SessionCreated => "Signed in",
        EventType::SessionEnded => "Session ended",
        EventType::SessionMoved => "Session moved",
        EventType::LoginFailed => "Sign-in refused",
        EventType::AlertQueued => "Alert queued",
        EventType::AlertSent => "Alert sent",
        EventType::AlertSuppressed => "Alert held back",
        EventType::AlertConfirmed => "Alert confirmed",
        EventType::AlertReported => "Reported \"not me\"",
        EventType::UserInvited => "Invited",
        EventType::UserCreated => "User created",
        EventType::UserInvitationAccepted => "Invitation accepted",
        EventType::UserDisabled => "User disabled",
        EventType::UserEnabled => "User enabled",
        EventType::UserDeleted => "User deleted",
        EventType::UserRoleChanged => "Role changed",
        EventType::UserPasswordChanged => "Password changed",
        EventType::UserPasswordReset => "Password reset",
        EventType::UserEmailChanged => "Email changed",
        EventType::UserSecondFactorAdded => "Second factor added",
        EventType::UserSecondFactorRemoved => "Second factor removed",
        EventType::UserSecondFactorsReset => "Second factors reset",
        EventType::AccessDenied => "Access refused",
        EventType::AppSignedIn => "Signed in to an app",
        EventType::AppTokenRefused => "App token refused",
        EventType::AppSignedOut => "Signed out of an app",
        EventType::AppLogoutFailed => "App sign-out not delivered",
        EventType::PolicyChanged => "Second-factor policy changed",
    }
}

fn badge_class(kind: &str) -> &'static str {
    match kind {
        "login.failed" | "access.denied" | "app.token_refused" | "app.logout_failed"
        | "alert.reported" | "user.disabled" | "user.deleted" => "fail",
        _ => "plain",
    }
}

/// Details the other columns already show, or ids only a script wants.
const NOT_SHOWN: [&str; 4] = ["by", "device_id", "device_hash", "alert_id"];

/// The details worth reading, as `key: value` pairs.
fn details(e: &Event) -> Markup {
    let parsed: Value = serde_json::from_str(&e.details).unwrap_or(Value::Null);
    let Some(map) = parsed.as_object() else {
        return html! {};
    };
    html! {
        @for (k, v) in map {
            @if !v.is_null() && !NOT_SHOWN.contains(&k.as_str()) {
                span.detail { span.muted { (k.replace('_', " ")) ": " } (plain(v)) } " "
            }
        }
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.replace('_', " "),
        other => other.to_string(),
    }
}
