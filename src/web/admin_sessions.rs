//! The Users Sessions tab: admins see, search and end the sessions of their account's
//! users; the owner, of every account.

use std::collections::HashSet;

use maud::{Markup, html};
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, handler};
use serde::Deserialize;

use super::components::confirm::{Confirm, REASON_LABEL, confirm_page};
use super::components::factors::reset_button;
use super::components::session::{AppSignOutForm, app_sign_outs};
use super::components::session::{
    apps_notice, done_notice, geo_attribution, session_cells, session_headings,
};
use super::components::step_up::{Guarded, StepUpFields, confirm_its_you};
use super::extract::{AdminPage, Client, CsrfForm, PageResult, csrf_field};
use super::nav::settings_page;
use super::{encode, html_response};
use crate::domain::factors::step_up;
use crate::domain::oidc::sign_out;
use crate::domain::ops::backup;
use crate::domain::permissions::{AdminScope, admin_scope};
use crate::domain::sessions::{self as domain, AdminQuery, Page};
use crate::model::Authed;
use crate::model::BackupRecord;
use crate::model::{Account, UserId};
use crate::paths::USERS_SESSIONS as USERS_PATH;
use crate::state::AppState;

/// The tab's filters as they arrive in the query string or a form. Empty fields mean
/// "any", so a plain GET form can submit all of them.
#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    application: String,
    #[serde(default)]
    cursor: String,
    done: Option<u64>,
    /// The session just ended or signed out of an app: its apps' sign-outs are told.
    #[serde(default)]
    session: String,
    /// The app it was signed out of, alone.
    #[serde(default)]
    app: String,
}

impl Filters {
    fn query(&self) -> AdminQuery {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        AdminQuery {
            q: some(&self.q),
            user_id: self.user_id.trim().parse().ok(),
            account_id: self.account_id.trim().parse().ok(),
            application: some(&self.application),
        }
    }

    /// The filters as a query string (without cursor), to come back to the same view.
    fn query_string(&self) -> String {
        [
            ("q", &self.q),
            ("user_id", &self.user_id),
            ("account_id", &self.account_id),
            ("application", &self.application),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }

    fn hidden_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("q", self.q.clone()),
            ("user_id", self.user_id.clone()),
            ("account_id", self.account_id.clone()),
            ("application", self.application.clone()),
        ]
    }

    /// [`Self::back`] telling where the sign-outs of the session `id`'s apps stand
    /// (`app`: the one it was signed out of).
    fn back_told(&self, done: Option<usize>, id: &str, app: Option<&str>) -> String {
        let back = self.back(done);
        let sep = if back.contains('?') { '&' } else { '?' };
        let mut url = format!("{back}{sep}session={}", encode(id));
        if let Some(app) = app {
            url.push_str(&format!("&app={}", encode(app)));
        }
        url
    }

    fn back(&self, done: Option<usize>) -> String {
        let mut qs = self.query_string();
        if let Some(n) = done {
            if !qs.is_empty() {
                qs.push('&');
            }
            qs.push_str(&format!("done={n}"));
        }
        if qs.is_empty() {
            USERS_PATH.to_string()
        } else {
            format!("{USERS_PATH}?{qs}")
        }
    }
}

#[handler]
pub async fn show(
    state: Data<&AppState>,
    AdminPage { me, csrf, scope }: AdminPage,
    filters: poem::Result<Query<Filters>>,
) -> PageResult {
    let f = filters.map(|q| q.0).unwrap_or_default();
    let query = f.query();
    let page = domain::admin_list(&state, &me, &query, None, Some(&f.cursor)).await?;
    let count = domain::admin_count(&state, &me, &query).await?;
    let accounts = if scope == AdminScope::All {
        crate::domain::people::admin_users::list_accounts(&state, &me.principal).await?
    } else {
        Vec::new()
    };
    let mut applications = vec!["web".to_string(), "api".to_string()];
    applications.extend(state.config.applications.iter().map(|a| a.name.clone()));
    // "Reset second factors" only for a person who has some.
    let reset_for = match f.user_id.trim().parse::<i64>() {
        Ok(uid) => {
            crate::domain::people::admin_users::user_summary(&state, &me.principal, UserId(uid))
                .await
                .ok()
                .filter(|u| u.second_factor)
                .map(|u| u.user.id)
        }
        Err(_) => None,
    };
    let bulk = Bulk {
        csrf: &csrf,
        filters: &f,
        endable: count.endable,
        who: page
            .items
            .first()
            .filter(|_| !f.user_id.is_empty())
            .map(|s| s.user_email.as_str()),
        fresh: step_up::is_fresh(&state, &me),
        reset_for,
    };
    let alerted = domain::alerted(&state, &page.items).await?;
    let apps = if f.session.is_empty() {
        Vec::new()
    } else {
        sign_out::apps_of(&state, &me, &f.session, sign_out::As::Admin).await?
    };
    let now = crate::clock::now();
    let body = html! {
        div {
            @if let Some(n) = done_notice(f.done) { p.notice.ok role="status" { (n) } }
            @if let Some(n) = apps_notice(&apps, Some(f.app.as_str()).filter(|a| !a.is_empty()), now) { (n) }
            (filter_form(&f, &accounts, &applications))
            @if let Some(u) = page.items.first().filter(|_| !f.user_id.is_empty()) {
                p.notice { "Showing the sessions of " strong { (u.user_email) } "." }
            }
            p.muted { (count.matching) " active session" @if count.matching != 1 { "s" } " match." }
            @if page.items.is_empty() {
                p.muted { "No active sessions match." }
            } @else {
                (results(&me, scope, &page, &csrf, &f, now, &alerted))
                (bulk_actions(&query, &bulk))
            }
            @if let Some(b) = backup::status(&state, &me.principal) { (backup_footer(&b, now)) }
            (geoip_footer(&state.geo.name(), state.geo.build_epoch(), now))
        }
    };
    Ok(html_response(settings_page(
        &me,
        &csrf,
        "Active sessions",
        USERS_PATH,
        body,
    ))
    .into_response())
}

/// The owner's view of the scheduled backups: the last good one, or the last failure
/// when it is newer (its detail is in the server log, not on the page).
fn backup_footer(b: &BackupRecord, now: i64) -> Markup {
    let when = |t: i64| {
        format!(
            "{} ({})",
            crate::clock::utc(t),
            crate::clock::relative(now, t)
        )
    };
    let failed_last = b
        .last_failure
        .is_some_and(|f| b.last_success.is_none_or(|s| f >= s));
    html! {
        footer.backup-status {
            @if let (true, Some(f)) = (failed_last, b.last_failure) {
                p.notice.error role="status" {
                    "The last backup failed at " (when(f)) "; see the server log. "
                    @if let Some(s) = b.last_success { "Last good backup: " (when(s)) "." } @else { "There is no good backup yet." }
                }
            } @else if let Some(s) = b.last_success {
                p.muted { "Last backup: " (when(s)) "." }
            } @else {
                p.muted { "No backup has been taken yet." }
            }
        }
    }
}

/// Location data older than this is called out: DB-IP publishes a new edition monthly.
const GEOIP_STALE_DAYS: i64 = 365;

/// "Location data: DB-IP Lite, built 2026-06-05", the attribution, and a notice when the
/// data is more than a year old.
fn geoip_footer(name: &str, built: u64, now: i64) -> Markup {
    let built = i64::try_from(built).unwrap_or(0);
    let date = crate::clock::utc(built)
        .chars()
        .take(10)
        .collect::<String>();
    let stale = built > 0 && now - built > GEOIP_STALE_DAYS * 86_400;
    html! {
        footer.geoip-status {
            @if built > 0 {
                p.muted { "Location data: " (name) ", built " (date) "." }
            }
            @if stale {
                p.notice role="note" {
                    "The location data is more than " (GEOIP_STALE_DAYS) " days old, so some places may be wrong. "
                    "See “Updating the location data” in docs/OPERATIONS.md; new editions are at "
                    a href="https://db-ip.com/db/download/ip-to-city-lite" { "db-ip.com" } "."
                }
            }
            (geo_attribution())
        }
    }
}

/// The search box and the filters.
fn filter_form(f: &Filters, accounts: &[Account], applications: &[String]) -> Markup {
    html! {
        form.filters method="get" action=(USERS_PATH) role="search" {
            label { "Email contains" input type="search" name="q" value=(f.q) placeholder="e.g. @acme.com"; }
            @if !accounts.is_empty() {
                label { "Account"
                    select name="account_id" {
                        option value="" { "All accounts" }
                        @for a in accounts {
                            option value=(a.id) selected[f.account_id == a.id.to_string()] { (a.name) }
                        }
                    }
                }
            }
            label { "Application"
                select name="application" {
                    option value="" { "Any" }
                    @for app in applications {
                        option value=(app) selected[&f.application == app] { (app) }
                    }
                }
            }
            @if !f.user_id.is_empty() {
                input type="hidden" name="user_id" value=(f.user_id);
            }
            button type="submit" { "Search" }
            a.button href=(USERS_PATH) { "Clear" }
        }
    }
}

/// One page of matching sessions, each with its Terminate button, and the pager.
fn results(
    me: &Authed,
    scope: AdminScope,
    page: &Page,
    csrf: &str,
    f: &Filters,
    now: i64,
    alerted: &HashSet<i64>,
) -> Markup {
    html! {
        table.sessions.cards {
            thead { tr { th { "User" } @for h in session_headings() { th { (h) } } th { span.sr { "Actions" } } } }
            tbody {
                @for s in &page.items {
                    tr {
                        td.user data-label="User" {
                            a href=(format!("{USERS_PATH}?user_id={}", s.user_id)) title="Only this user's sessions" { (s.user_email) }
                            @if scope == AdminScope::All { br; span.muted { (s.account_name) } }
                        }
                        @for (heading, cell) in session_cells(s, now, alerted.contains(&s.pk)) { td data-label=(heading) { (cell) } }
                        td.act {
                            @if s.pk == me.session.pk {
                                span.badge { "Current" }
                            } @else {
                                form method="post" action=(format!("{USERS_PATH}/terminate"))
                                    data-confirm=(format!("End the session of {} on {}? They are signed out on their next request.", s.user_email, s.device.label()))
                                    data-reason=(REASON_LABEL) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="id" value=(s.id.0);
                                    @for (name, value) in f.hidden_fields() { input type="hidden" name=(name) value=(value); }
                                    button.danger type="submit" { "Terminate" }
                                }
                            }
                            (app_sign_outs(&format!("{USERS_PATH}/apps/sign-out"), csrf, s))
                        }
                    }
                }
            }
        }
        div.pager {
            @if f.cursor.is_empty() { span {} } @else { a href=(f.back(None)) { "← First page" } }
            @if let Some(next) = &page.next_cursor {
                @let qs = f.query_string();
                a href=(format!("{USERS_PATH}?{}{}cursor={}", qs, if qs.is_empty() { "" } else { "&" }, encode(next))) { "Next page →" }
            }
        }
    }
}

/// What the view's one bulk action needs.
struct Bulk<'a> {
    csrf: &'a str,
    filters: &'a Filters,
    endable: i64,
    /// The person whose sessions are listed, when the view is one person's.
    who: Option<&'a str>,
    /// The session confirmed it is its person recently: the browser's dialog is the
    /// one confirmation; otherwise the server's page asks, with the password.
    fresh: bool,
    /// The person of the view, when they have second factors to reset.
    reset_for: Option<UserId>,
}

/// The view's one bulk action: "End all listed sessions" (one person's, when the view
/// is filtered to them), and "Reset second factors" for a person who has some.
fn bulk_actions(query: &AdminQuery, b: &Bulk<'_>) -> Markup {
    let f = b.filters;
    let label = match b.who {
        Some(email) => format!("End all sessions of {email} ({})", b.endable),
        None => format!("End all listed sessions ({})", b.endable),
    };
    let question = format!(
        "End {} listed session{}? Those people are signed out on their next request.",
        b.endable,
        if b.endable == 1 { "" } else { "s" }
    );
    html! {
        div.actions {
            @if query.has_filter() {
                form method="post" action=(format!("{USERS_PATH}/end-listed"))
                    data-confirm=[b.fresh.then_some(&question)]
                    data-reason=[b.fresh.then_some(REASON_LABEL)] {
                    input type="hidden" name="csrf" value=(b.csrf);
                    @for (name, value) in f.hidden_fields() { input type="hidden" name=(name) value=(value); }
                    button.danger type="submit" { (label) }
                }
            } @else {
                span.muted { "Search or filter to end many sessions at once." }
            }
            @if let Some(uid) = b.reset_for {
                (reset_button(b.csrf, uid, &f.back(None)))
            }
        }
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    id: String,
    /// "Reason, shown to the person".
    #[serde(default)]
    reason: String,
    #[serde(flatten)]
    filters: Filters,
    #[serde(flatten)]
    step_up: StepUpFields,
}

csrf_field!(ActionForm);

#[handler]
pub async fn terminate(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<ActionForm>,
) -> PageResult {
    admin_scope(&me.principal)?;
    if form.confirm != "yes" {
        let mut fields = form.filters.hidden_fields();
        fields.push(("id", form.id.clone()));
        let back = form.filters.back(None);
        let action = format!("{USERS_PATH}/terminate");
        let confirm = Confirm {
            button: "Yes, end it",
            reason: true,
            ..Confirm::new(
                "End this session?",
                "Its person is signed out on their next request, and sees your reason when they sign in again.",
                &action,
                &fields,
                &back,
            )
        };
        return Ok(confirm_page(&me, &form.csrf, &confirm));
    }
    domain::admin_end(&state, &me, &form.id, Some(&form.reason)).await?;
    Ok(Redirect::see_other(form.filters.back_told(Some(1), &form.id, None)).into_response())
}

/// "Sign out of Grafana" on a session in my scope: that app only (SPEC §21).
#[handler]
pub async fn sign_out_app(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AppSignOutForm>,
) -> PageResult {
    sign_out::sign_out_of_app(&state, &me, &form.id, &form.client_id, sign_out::As::Admin).await?;
    let back = Filters::default().back_told(None, &form.id, Some(&form.client_id));
    Ok(Redirect::see_other(back).into_response())
}

#[handler]
pub async fn end_listed(
    state: Data<&AppState>,
    Client(client): Client,
    CsrfForm { me, form, .. }: CsrfForm<ActionForm>,
) -> PageResult {
    admin_scope(&me.principal)?;
    let query = form.filters.query();
    if let Some(uid) = query.user_id {
        // One person's sessions: that person must be in the caller's scope.
        crate::domain::people::admin_users::user_summary(&state, &me.principal, UserId(uid))
            .await?;
    }
    let action = format!("{USERS_PATH}/end-listed");
    let back = form.filters.back(None);
    if form.confirm != "yes" {
        let count = domain::admin_count(&state, &me, &query).await?.endable;
        let fields = form.filters.hidden_fields();
        let question = format!("End all {count} listed sessions?");
        let confirm = Confirm {
            reason: true,
            step_up: !step_up::is_fresh(&state, &me),
            ..Confirm::new(
                &question,
                "Every session matching the current search and filters will be signed out on its next request (except yours).",
                &action,
                &fields,
                &back,
            )
        };
        return Ok(confirm_page(&me, &form.csrf, &confirm));
    }
    let mut fields = form.filters.hidden_fields();
    fields.push(("confirm", "yes".to_string()));
    fields.push(("reason", form.reason.clone()));
    let guarded = Guarded {
        what: "end all listed sessions",
        action: &action,
        fields: &fields,
        cancel: &back,
    };
    confirm_its_you(&state, &client, &me, &form.csrf, &form.step_up, &guarded).await?;
    let n = domain::admin_end_matching(&state, &me, &query, Some(&form.reason)).await?;
    Ok(Redirect::see_other(form.filters.back(Some(n))).into_response())
}
