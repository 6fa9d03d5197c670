//! The Users Sessions tab: admins see, search and end the sessions of their account's
//! users; the owner, of every account.

use maud::{Markup, html};
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{
    AppSignOutForm, CsrfForm, Guarded, StepUpFields, app_sign_outs, confirm_its_you, confirm_page,
    csrf_field, done_notice, geo_attribution, reset_button, session_cells, session_headings,
    settings_page, tabs,
};
use super::{encode, error_page, html_response, page_session};
use crate::domain::ops::backup;
use crate::domain::permissions::{AdminScope, admin_scope};
use crate::domain::sessions::{self as domain, AdminQuery, Counts, Page};
use crate::domain::tokens;
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
    let query = f.query();
    let page = domain::admin_list(&state, &me, &query, None, Some(&f.cursor)).await;
    let count = domain::admin_count(&state, &me, &query).await;
    let (page, count) = match (page, count) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(err), _) | (_, Err(err)) => return error_page(&err),
    };
    let accounts = if scope == AdminScope::All {
        match crate::domain::people::admin_users::list_accounts(&state, &me.principal).await {
            Ok(a) => a,
            Err(err) => return error_page(&err),
        }
    } else {
        Vec::new()
    };
    let mut applications = vec!["web".to_string(), "api".to_string()];
    applications.extend(state.config.applications.iter().map(|a| a.name.clone()));
    let csrf = tokens::csrf_for_session(&token);
    let now = crate::clock::now();
    let body = html! {
        div {
            (tabs(&me, "users"))
            @if let Some(n) = done_notice(f.done) { p.notice.ok role="status" { (n) } }
            (filter_form(&f, &accounts, &applications))
            @if let Some(u) = page.items.first().filter(|_| !f.user_id.is_empty()) {
                p.notice { "Showing the sessions of " strong { (u.user_email) } "." }
            }
            p.muted { (count.matching) " active session" @if count.matching != 1 { "s" } " match." }
            @if page.items.is_empty() {
                p.muted { "No active sessions match." }
            } @else {
                (results(&me, scope, &page, &csrf, &f, now))
                (bulk_actions(&query, &count, &csrf, &f))
            }
            @if let Some(b) = backup::status(&state, &me.principal) { (backup_footer(&b, now)) }
            (geoip_footer(&state.geo.name(), state.geo.build_epoch(), now))
        }
    };
    html_response(settings_page(
        &me,
        &csrf,
        "Users sessions",
        USERS_PATH,
        body,
    ))
    .into_response()
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
) -> Markup {
    html! {
        table {
            thead { tr { th { "User" } @for h in session_headings() { th { (h) } } th { "Application" } th { span.sr { "Actions" } } } }
            tbody {
                @for s in &page.items {
                    tr {
                        td {
                            a href=(format!("{USERS_PATH}?user_id={}", s.user_id)) title="Only this user's sessions" { (s.user_email) }
                            @if scope == AdminScope::All { br; span.muted { (s.account_name) } }
                        }
                        @for (_, cell) in session_cells(s, now) { td { (cell) } }
                        td { (s.application) }
                        td {
                            @if s.pk == me.session.pk {
                                span.badge { "Current" }
                            } @else {
                                form method="post" action=(format!("{USERS_PATH}/terminate")) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="id" value=(s.id.0);
                                    @for (name, value) in f.hidden_fields() { input type="hidden" name=(name) value=(value); }
                                    (reason_box())
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

/// The optional reason an administrator gives, shown to the person whose sessions end.
fn reason_box() -> Markup {
    html! {
        label.reason {
            span.sr { "Reason (shown to the person)" }
            input type="text" name="reason" maxlength="200"
                placeholder="Reason (optional)" title="Reason (shown to the person)";
        }
    }
}

/// "End all listed sessions" and "End all sessions of this user".
fn bulk_actions(query: &AdminQuery, count: &Counts, csrf: &str, f: &Filters) -> Markup {
    html! {
        div.actions {
            @if query.has_filter() {
                form method="post" action=(format!("{USERS_PATH}/end-listed"))
                    data-confirm=(format!("End all {} listed sessions? Those users will be signed out.", count.endable)) {
                    input type="hidden" name="csrf" value=(csrf);
                    @for (name, value) in f.hidden_fields() { input type="hidden" name=(name) value=(value); }
                    (reason_box())
                    button.danger type="submit" { "End all listed sessions (" (count.endable) ")" }
                }
            } @else {
                span.muted { "Search or filter to end many sessions at once." }
            }
            @if let Ok(uid) = f.user_id.trim().parse::<i64>() {
                form method="post" action=(format!("{USERS_PATH}/end-user"))
                    data-confirm="End every session of this user?" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="target" value=(uid);
                    @for (name, value) in f.hidden_fields() { input type="hidden" name=(name) value=(value); }
                    (reason_box())
                    button.danger type="submit" { "End all sessions of this user" }
                }
                (reset_button(csrf, UserId(uid), &f.back(None)))
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
    #[serde(default)]
    target: String,
    /// "Reason (shown to the person)".
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
) -> Response {
    match domain::admin_end(&state, &me, &form.id, Some(&form.reason)).await {
        Ok(()) => Redirect::see_other(form.filters.back(Some(1))).into_response(),
        Err(err) => error_page(&err),
    }
}

/// "Sign out of Grafana" on a session in my scope: that app only (SPEC §21).
#[handler]
pub async fn sign_out_app(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<AppSignOutForm>,
) -> Response {
    let who = crate::domain::oidc::sign_out::As::Admin;
    match crate::domain::oidc::sign_out::sign_out_of_app(
        &state,
        &me,
        &form.id,
        &form.client_id,
        who,
    )
    .await
    {
        Ok(()) => Redirect::see_other(USERS_PATH).into_response(),
        Err(err) => error_page(&err),
    }
}

#[handler]
pub async fn end_listed(
    req: &Request,
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<ActionForm>,
) -> Response {
    if let Err(err) = admin_scope(&me.principal) {
        return error_page(&err);
    }
    let query = form.filters.query();
    if form.confirm != "yes" {
        let count = match domain::admin_count(&state, &me, &query).await {
            Ok(c) => c.endable,
            Err(err) => return error_page(&err),
        };
        let mut fields = form.filters.hidden_fields();
        fields.push(("reason", form.reason.clone()));
        return confirm_page(
            &me,
            &form.csrf,
            &format!("End all {count} listed sessions?"),
            "Every session matching the current search and filters will be signed out on its next request (except yours).",
            &format!("{USERS_PATH}/end-listed"),
            &fields,
            &form.filters.back(None),
        );
    }
    let mut fields = form.filters.hidden_fields();
    fields.push(("confirm", "yes".to_string()));
    let guarded = Guarded {
        what: "end all listed sessions",
        action: &format!("{USERS_PATH}/end-listed"),
        fields: &fields,
        cancel: &form.filters.back(None),
    };
    if let Err(page) = confirm_its_you(req, &state, &me, &form.csrf, &form.step_up, &guarded).await
    {
        return page;
    }
    match domain::admin_end_matching(&state, &me, &query, Some(&form.reason)).await {
        Ok(n) => Redirect::see_other(form.filters.back(Some(n))).into_response(),
        Err(err) => error_page(&err),
    }
}

#[handler]
pub async fn end_user(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<ActionForm>,
) -> Response {
    let Ok(target) = form.target.trim().parse::<i64>() else {
        return error_page(&crate::error::Error::NotFound);
    };
    if form.confirm != "yes" {
        let mut fields = form.filters.hidden_fields();
        fields.push(("target", target.to_string()));
        fields.push(("reason", form.reason.clone()));
        return confirm_page(
            &me,
            &form.csrf,
            "End every session of this user?",
            "The user will be signed out everywhere on their next request.",
            &format!("{USERS_PATH}/end-user"),
            &fields,
            &form.filters.back(None),
        );
    }
    match domain::admin_end_user(&state, &me, UserId(target), Some(&form.reason)).await {
        Ok(n) => Redirect::see_other(form.filters.back(Some(n))).into_response(),
        Err(err) => error_page(&err),
    }
}
