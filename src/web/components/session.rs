//! A session as every listing shows it: its cells (client and device, place with its
//! flag and address, times), the DB-IP attribution, and the notice after ending some.

use maud::{Markup, PreEscaped, html};

use crate::clock::{relative, utc};
use crate::model::{AppStatus, Session, SignedInApp};

/// Shown after an action: how many sessions it ended.
pub fn done_notice(done: Option<u64>) -> Option<String> {
    done.map(|n| match n {
        0 => "No session needed ending.".to_string(),
        1 => "1 session ended. It is signed out on its next request.".to_string(),
        n => format!("{n} sessions ended. They are signed out on their next request."),
    })
}

/// Shown after ending a session or signing it out of one app (`only`): where each of
/// its apps' sign-out stands, one sentence each, read after the fact (SPEC §21).
pub fn apps_notice(apps: &[SignedInApp], only: Option<&str>, now: i64) -> Option<Markup> {
    let lines: Vec<String> = apps
        .iter()
        .filter(|a| a.status != AppStatus::SignedIn && only.is_none_or(|c| c == a.client_id))
        .map(|a| app_sign_out_state(a, now))
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(html! {
        p.notice.ok role="status" {
            @for (i, line) in lines.iter().enumerate() {
                @if i > 0 { " " }
                (line) "."
            }
            @if only.is_some() { " The session stays signed in to Doorman." }
        }
    })
}

/// What every listing shows of a session, heading and cell, in order: the current
/// session's box, the My Sessions table and the Users Sessions table all render from
/// here, so a new column is one line. `alerted`: the session raised a sign-in alert.
pub fn session_cells(s: &Session, now: i64, alerted: bool) -> [(&'static str, Markup); 4] {
    [
        ("Device", device_cell(s, now, alerted)),
        ("Location", location_cell(s)),
        ("Last active", time_cell(now, s.last_active_at)),
        ("Signed in", signed_in_cell(now, s.created_at)),
    ]
}

/// The headings of [`session_cells`], for a table's head.
pub fn session_headings() -> impl Iterator<Item = &'static str> {
    ["Device", "Location", "Last active", "Signed in"].into_iter()
}

/// Which app or client a session is for: a browser signed in to Doorman, the API, or
/// the protected application's name.
pub fn client_kind(application: &str) -> &str {
    match application {
        "web" => "Browser",
        "api" => "API",
        app => app,
    }
}

/// The client, the device (its parts kept whole, so it wraps between them only), the
/// applications used, the sign-in methods when more than a password, and the mark of a
/// session that raised an alert.
pub fn device_cell(s: &Session, now: i64, alerted: bool) -> Markup {
    let methods = auth_methods_label(s);
    let label = s.device.label();
    html! {
        span.device title=(s.user_agent) {
            (PreEscaped(device_icon(&s.device.category)))
            span {
                span.kind { (client_kind(&s.application)) }
                @for (i, part) in label.split(" · ").enumerate() {
                    @if i > 0 { " · " }
                    span.nw { (part) }
                }
            }
        }
        @if alerted {
            span.badge.alerted { "We emailed you about this sign-in" }
        }
        @if !s.signed_in_to.is_empty() || !s.applications_used.is_empty() {
            span.muted.used {
                @let live = live_apps(s);
                @if !live.is_empty() {
                    span.signed-in {
                        "Signed in to "
                        @for (i, a) in live.iter().enumerate() {
                            @if i > 0 { ", " }
                            (a.name)
                        }
                    }
                }
                @if !live.is_empty() && !s.applications_used.is_empty() { " · " }
                @if !s.applications_used.is_empty() {
                    @if live.is_empty() { "Used with " } @else { "used with " }
                    @for (i, u) in s.applications_used.iter().enumerate() {
                        @if i > 0 { ", " }
                        (u.name)
                    }
                }
            }
            (app_sign_out_states(s, now))
        }
        @if methods != "Password" {
            span.muted.methods { "Signed in with " (methods) }
        }
    }
}

/// The flag (an embedded SVG) and the place in words, the trusted network's name first,
/// then the address; for a session now used from another country, where it is now
/// seen from.
pub fn location_cell(s: &Session) -> Markup {
    html! {
        span.place {
            (flag_img(s.location.country_code.as_deref()))
            span { (s.location.label()) }
        }
        span.ip { (s.ip) }
        @if let Some(moved) = &s.moved_to {
            span.moved {
                (flag_img(moved.location.country_code.as_deref()))
                "Now seen from " (moved.location.place())
                " (signed in from " (s.location.place()) ")"
            }
        }
    }
}

/// A country's flag from the embedded flag-icons set, beside the name (never instead of
/// it: the name is the text, the flag decoration).
pub fn flag_img(code: Option<&str>) -> Markup {
    html! {
        @if let Some(file) = code.and_then(flag_file) {
            img.flag src=(file) alt="" width="20" height="15";
        }
    }
}

/// "IP geolocation by DB-IP", which the database's licence (CC BY 4.0) asks for on every
/// page that shows a location.
pub fn geo_attribution() -> Markup {
    html! {
        p.attribution.muted {
            a href="https://db-ip.com" { "IP geolocation by DB-IP" }
        }
    }
}

/// When a session signed in: how long ago, and the exact time as text (a phone shows no
/// tooltip).
pub fn signed_in_cell(now: i64, t: i64) -> Markup {
    html! {
        (time_cell(now, t))
        span.exact { (utc(t)) }
    }
}

pub fn time_cell(now: i64, t: i64) -> Markup {
    html! { time datetime=(utc(t)) title=(utc(t)) { (relative(now, t)) } }
}

/// The address of a two-letter country code's flag, when the embedded set has one.
fn flag_file(code: &str) -> Option<String> {
    let bytes = code.as_bytes();
    if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let path = format!("flags/4x3/{}.svg", code.to_ascii_lowercase());
    crate::web::asset_exists(&path).then(|| format!("/assets/{path}"))
}

fn device_icon(category: &str) -> &'static str {
    match category {
        "Smartphone" | "Mobile phone" => {
            r#"<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"><rect x="7" y="2" width="10" height="20" rx="2"/><path d="M11 18h2"/></svg>"#
        }
        "Desktop" => {
            r#"<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"><rect x="2" y="4" width="20" height="13" rx="2"/><path d="M8 21h8M12 17v4"/></svg>"#
        }
        _ => {
            r#"<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"><circle cx="12" cy="12" r="9"/><path d="M12 8v5M12 16h.01"/></svg>"#
        }
    }
}

/// "Password + authenticator app": how a session was signed in, for the listings.
pub fn auth_methods_label(s: &Session) -> String {
    s.auth_methods.label()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert_eq!(flag_file("DE").as_deref(), Some("/assets/flags/4x3/de.svg"));
        assert_eq!(flag_file("X1"), None);
        assert_eq!(flag_file("USA"), None);
        assert_eq!(flag_file("QQ"), None, "no such flag");
        let cell = flag_img(Some("jp")).into_string();
        assert!(cell.contains(r#"src="/assets/flags/4x3/jp.svg""#), "{cell}");
    }
}

/// The apps of `s` that still have its person.
fn live_apps(s: &Session) -> Vec<&SignedInApp> {
    s.signed_in_to
        .iter()
        .filter(|a| a.status == AppStatus::SignedIn)
        .collect()
}

/// Where the sign-out of each app of `s` whose grant has ended stands (SPEC §21), one
/// line each: "Signed out of Grafana just now", "Nextcloud: will sign out at its next
/// check".
pub fn app_sign_out_states(s: &Session, now: i64) -> Markup {
    html! {
        @for a in s.signed_in_to.iter().filter(|a| a.status != AppStatus::SignedIn) {
            span.muted.app-state data-status=(a.status.as_str()) { (app_sign_out_state(a, now)) }
        }
    }
}

/// One app's line of [`app_sign_out_states`].
pub fn app_sign_out_state(a: &SignedInApp, now: i64) -> String {
    let name = &a.name;
    match a.status {
        AppStatus::SignedIn => format!("Signed in to {name}"),
        AppStatus::SigningOut => format!("Signing out of {name}…"),
        AppStatus::SignedOut => match a.at {
            Some(t) => format!("Signed out of {name} {}", relative(now, t)),
            None => format!("Signed out of {name}"),
        },
        AppStatus::LogoutFailed => {
            format!("{name} did not take the sign-out: it will sign out at its next check")
        }
        AppStatus::AtNextCheck => format!("{name}: will sign out at its next check"),
    }
}

/// "Sign out of Grafana" per app the session signed in to (SPEC §21): each form posts
/// `id` and `client_id` to `action`; the page's handler ends that grant only.
pub fn app_sign_outs(action: &str, csrf: &str, s: &Session) -> Markup {
    html! {
        @for a in live_apps(s) {
            form.app-sign-out method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="id" value=(s.id.0);
                input type="hidden" name="client_id" value=(a.client_id);
                button type="submit" { "Sign out of " (a.name) }
            }
        }
    }
}

/// The form of an app sign-out button ([`app_sign_outs`]).
#[derive(serde::Deserialize)]
pub struct AppSignOutForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub client_id: String,
}

crate::web::extract::csrf_field!(AppSignOutForm);
