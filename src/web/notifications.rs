//! Which sign-in alerts a person gets (SPEC §14): [`section`] is the self-contained part
//! of the Profile page; [`show`] is a page of its own with the Active Sessions tabs.
//! Admins also see the lock that keeps every alert on for their account.

use maud::{Markup, html};
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::components::{CsrfForm, csrf_field, nav_tabs, settings_page};
use super::{error_page, html_response, page_session};
use crate::domain::alerts::prefs::{self as preferences, Preferences};
use crate::domain::permissions::admin_scope;
use crate::domain::tokens;
use crate::model::AlertPrefs;
use crate::model::Authed;
use crate::state::AppState;

pub use crate::paths::NOTIFICATIONS as PATH;

/// Where the preferences form posts.
pub fn save_path() -> String {
    format!("{PATH}/save")
}

/// Where an admin's lock form posts.
pub fn lock_path() -> String {
    format!("{PATH}/lock")
}

const CHOICES: [(&str, &str, &str); 4] = [
    (
        "new_device",
        "A new device",
        "a sign-in from a device you have not used before",
    ),
    (
        "new_country",
        "A new country",
        "a sign-in from a country you have not signed in from",
    ),
    (
        "travel",
        "An impossible journey",
        "two sign-ins too far apart for the time between them",
    ),
    (
        "moved",
        "A session moving to another country",
        "one of your sessions used from another country",
    ),
];

fn is_on(p: AlertPrefs, key: &str) -> bool {
    match key {
        "new_device" => p.new_device,
        "new_country" => p.new_country,
        "travel" => p.travel,
        _ => p.moved,
    }
}

/// The alert preferences form (and, for an admin, the account lock), for any page.
pub fn section(me: &Authed, csrf: &str, prefs: &Preferences) -> Markup {
    let shown = prefs.effective();
    html! {
        section.card.notifications aria-labelledby="alerts-heading" {
            h2 #alerts-heading { "Sign-in alerts" }
            p.muted { "Email me about:" }
            form method="post" action=(save_path()) {
                input type="hidden" name="csrf" value=(csrf);
                @for (key, label, hint) in CHOICES {
                    label.check {
                        input type="checkbox" name=(key) value="on" checked[is_on(shown, key)] disabled[prefs.locked];
                        " " strong { (label) } " " span.muted { "— " (hint) }
                    }
                }
                @if prefs.locked {
                    p.notice role="note" { "Your administrator keeps every sign-in alert on for your account." }
                } @else {
                    button.primary type="submit" { "Save alert choices" }
                }
            }
            p.muted { "Security notices (your password changed, a sign-in reported as not you) are always sent." }
            @if admin_scope(&me.principal).is_ok() {
                form.lock method="post" action=(lock_path()) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="locked" value=(if prefs.locked { "no" } else { "yes" });
                    p {
                        strong { "Account " (me.principal.account_name) ": " }
                        @if prefs.locked { "every sign-in alert is locked on for everyone. " }
                        @else { "people choose their own sign-in alerts. " }
                        button type="submit" {
                            @if prefs.locked { "Let people choose" } @else { "Lock all alerts on for everyone" }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

#[handler]
pub async fn show(req: &Request, state: Data<&AppState>, notice: Query<Notice>) -> Response {
    let (me, token) = match page_session(req, &state).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let prefs = match preferences::mine(&state, &me.principal).await {
        Ok(p) => p,
        Err(err) => return error_page(&err),
    };
    let csrf = tokens::csrf_for_session(&token);
    let message = match notice.saved.as_deref() {
        Some("prefs") => Some("Your alert choices are saved."),
        Some("locked") => Some("Every sign-in alert is now locked on for your account."),
        Some("unlocked") => Some("People of your account now choose their own sign-in alerts."),
        _ => None,
    };
    let body = html! {
        p.breadcrumb { "Settings › Account" }
        h1 { "Sign-in alerts" }
        (nav_tabs(&me, "notifications"))
        @if let Some(m) = message { p.notice.ok role="status" { (m) } }
        (section(&me, &csrf, &prefs))
    };
    html_response(settings_page(&me, &csrf, "Sign-in alerts", PATH, body)).into_response()
}

#[derive(Deserialize)]
pub struct PrefsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    new_device: Option<String>,
    #[serde(default)]
    new_country: Option<String>,
    #[serde(default)]
    travel: Option<String>,
    #[serde(default)]
    moved: Option<String>,
}

#[derive(Deserialize)]
pub struct LockForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    locked: String,
}

csrf_field!(PrefsForm, LockForm);

#[handler]
pub async fn save(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<PrefsForm>,
) -> Response {
    let prefs = AlertPrefs {
        new_device: form.new_device.is_some(),
        new_country: form.new_country.is_some(),
        travel: form.travel.is_some(),
        moved: form.moved.is_some(),
    };
    match preferences::set_mine(&state, &me.principal, prefs).await {
        Ok(()) => Redirect::see_other(format!("{PATH}?saved=prefs")).into_response(),
        Err(err) => error_page(&err),
    }
}

#[handler]
pub async fn lock(
    state: Data<&AppState>,
    CsrfForm { me, form, .. }: CsrfForm<LockForm>,
) -> Response {
    let locked = form.locked == "yes";
    let account = me.principal.account_id;
    match preferences::set_lock(&state, &me.principal, account, locked).await {
        Ok(()) => {
            let done = if locked { "locked" } else { "unlocked" };
            Redirect::see_other(format!("{PATH}?saved={done}")).into_response()
        }
        Err(err) => error_page(&err),
    }
}
