//! The security log: the Security log tab (one's own events) and the team's log
//! (`/settings/team/log`: admins see their account's, the owner every account's).

mod lines;

use maud::{Markup, html};
use poem::web::{Data, Query};
use poem::{IntoResponse, handler};
use serde::Deserialize;

use super::extract::{AdminPage, PageResult, PageSession};
use super::nav::settings_page;
use super::{encode, html_response};
use crate::domain::audit::events::{self, EventPage, EventQuery};
use crate::domain::people::admin_users::{self, UserSummary};
use crate::domain::permissions::AdminScope;
use crate::model::{Account, EventType};
use crate::paths::{SECURITY_LOG, TEAM_LOG};
use crate::state::AppState;
use lines::{Line, Reader};

/// The filters as they arrive from the GET form; empty means "any".
#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    #[serde(default, rename = "type")]
    kind: String,
    /// The team log's user picker: an email address.
    #[serde(default)]
    user: String,
    /// A user's id: what a link to one user's events carries when they have no email
    /// any more (a deleted user's events stay listable for the owner).
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
            &self.user,
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
            ("user", &self.user),
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
    state: Data<&AppState>,
    PageSession { me, csrf, .. }: PageSession,
    filters: poem::Result<Query<Filters>>,
) -> PageResult {
    let f = filters.map(|q| q.0).unwrap_or_default();
    let page = events::list_mine(&state, &me, &f.query()?).await?;
    let body = html! {
        p.muted { "What happened to your account: sign-ins, refused attempts, ended sessions, alerts and changes." }
        (filter_form(SECURITY_LOG, &f, None, None))
        (listing(SECURITY_LOG, &f, &page, Reader::Person))
    };
    Ok(html_response(settings_page(
        &me,
        &csrf,
        "Security log",
        SECURITY_LOG,
        body,
    ))
    .into_response())
}

/// The team's log: the events of the caller's account (admins) or of every account,
/// with an account filter (the owner).
#[handler]
pub async fn team(
    state: Data<&AppState>,
    AdminPage { me, csrf, scope }: AdminPage,
    filters: poem::Result<Query<Filters>>,
) -> PageResult {
    let f = filters.map(|q| q.0).unwrap_or_default();
    let people = admin_users::list_users(&state, &me.principal, None, None).await?;
    let mut q = f.query()?;
    if let Some(id) = pick_user(&f.user, &people)? {
        q.user_id = Some(id);
    }
    let page = events::list_admin(&state, &me, &q).await?;
    let accounts = if scope == AdminScope::All {
        admin_users::list_accounts(&state, &me.principal).await?
    } else {
        Vec::new()
    };
    let body = html! {
        p.muted {
            @if scope == AdminScope::All { "Security events of every account." }
            @else { "Security events of " (me.principal.account_name) "." }
        }
        (filter_form(TEAM_LOG, &f, Some(&accounts), Some(&people)))
        (listing(TEAM_LOG, &f, &page, Reader::Admin))
    };
    Ok(html_response(settings_page(&me, &csrf, "Team log", TEAM_LOG, body)).into_response())
}

/// The user the picker names, by email, among those the admin may see; None when the
/// picker is empty. An address nobody in scope has is a clear error, the same whether
/// or not someone elsewhere has it.
fn pick_user(email: &str, people: &[UserSummary]) -> Result<Option<i64>, crate::error::Error> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    people
        .iter()
        .find(|p| p.user.email.eq_ignore_ascii_case(email))
        .map(|p| Some(p.user.id.0))
        .ok_or_else(|| {
            crate::error::Error::invalid(
                "unknown_user",
                format!(
                    "Nobody in your team has the email {}.",
                    email.chars().take(254).collect::<String>()
                ),
            )
        })
}

fn filter_form(
    action: &str,
    f: &Filters,
    accounts: Option<&[Account]>,
    people: Option<&[UserSummary]>,
) -> Markup {
    html! {
        form.filters method="get" action=(action) role="search" {
            label { "What"
                select name="type" {
                    option value="" { "Everything" }
                    @for t in EventType::ALL {
                        option value=(t.as_str()) selected[f.kind == t.as_str()] { (label(t)) }
                    }
                }
            }
            @if let Some(people) = people {
                label { "User"
                    input type="email" name="user" list="log-people" value=(f.user)
                        placeholder="name@example.com" autocomplete="off";
                }
                datalist #log-people {
                    @for p in people { option value=(p.user.email) { (p.user.name) } }
                }
                @if !f.user_id.is_empty() { input type="hidden" name="user_id" value=(f.user_id); }
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

fn listing(action: &str, f: &Filters, page: &EventPage, reader: Reader) -> Markup {
    let now = crate::clock::now();
    let lines = lines::lines(&page.items, reader);
    html! {
        @if f.has_filter() {
            p.notice role="status" {
                "Showing " (page.items.len()) @if page.next_cursor.is_some() { "+" }
                " event" @if page.items.len() != 1 { "s" } " matching the filters."
            }
        }
        @if lines.is_empty() {
            p.muted { "No events." }
        } @else {
            ol.log {
                @for l in &lines { (entry(action, f, l, reader, now)) }
            }
            @if let Some(next) = &page.next_cursor {
                div.pager { span {} a href=(format!("{action}?{}cursor={}", f.query_string(), encode(next))) { "Older →" } }
            }
        }
    }
}

/// One line: the exact time (and how long ago), the sentence, where it came from.
fn entry(action: &str, f: &Filters, l: &Line, reader: Reader, now: i64) -> Markup {
    let exact = crate::clock::utc(l.at);
    html! {
        li.(l.severity.class()) {
            p.log-when {
                time datetime=(exact) { (exact) } " · " (crate::clock::relative(now, l.at))
                @if let Some(word) = l.severity.word() { " · " strong.log-sev { (word) } }
            }
            p.log-what { (l.sentence) }
            @if !l.origin.is_empty() || reader == Reader::Admin {
                p.log-origin {
                    (l.origin)
                    @if reader == Reader::Admin && let Some((id, email)) = &l.user {
                        @if !l.origin.is_empty() { " · " }
                        (only_user(action, f, *id, email.as_deref()))
                    }
                }
            }
        }
    }
}

/// The link to one user's events.
fn only_user(action: &str, f: &Filters, id: i64, email: Option<&str>) -> Markup {
    let only = match email {
        Some(e) => Filters {
            user: e.to_string(),
            user_id: String::new(),
            cursor: String::new(),
            ..f.clone()
        },
        None => Filters {
            user: String::new(),
            user_id: id.to_string(),
            cursor: String::new(),
            ..f.clone()
        },
    };
    html! { a href=(format!("{action}?{}", only.query_string())) { "Only this user's events" } }
}

/// A few words for a type, for the filter.
fn label(t: &EventType) -> &'static str {
    match t {
        EventType::SessionCreated => "Sign-ins",
        EventType::SessionEnded => "Sessions ended",
        EventType::SessionMoved => "Sessions that moved",
        EventType::LoginFailed => "Refused sign-ins",
        EventType::AlertQueued => "Alerts queued",
        EventType::AlertSent => "Alerts emailed",
        EventType::AlertSuppressed => "Alerts held back",
        EventType::AlertConfirmed => "Alerts confirmed",
        EventType::AlertReported => "Sign-ins reported as not me",
        EventType::UserInvited => "Invitations",
        EventType::UserCreated => "Users created",
        EventType::UserInvitationAccepted => "Invitations accepted",
        EventType::UserDisabled => "Users disabled",
        EventType::UserEnabled => "Users enabled",
        EventType::UserDeleted => "Users deleted",
        EventType::UserRoleChanged => "Role changes",
        EventType::UserPasswordChanged => "Password changes",
        EventType::UserPasswordReset => "Password resets",
        EventType::UserEmailChanged => "Email changes",
        EventType::UserSecondFactorAdded => "Second factors added",
        EventType::UserSecondFactorRemoved => "Second factors removed",
        EventType::UserSecondFactorsReset => "Second factors reset",
        EventType::AccessDenied => "Access refused",
        EventType::PolicyChanged => "Second-factor policy changes",
        EventType::AppSignedIn => "Sign-ins to apps",
        EventType::AppTokenRefused => "App tokens refused",
        EventType::AppSignedOut => "Sign-outs of apps",
        EventType::AppLogoutFailed => "App sign-outs not delivered",
    }
}
