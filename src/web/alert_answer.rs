//! "Was this you?": the "Yes, it was me" and "No, secure my account" links of sign-in
//! alert emails (SPEC §14). GET shows the sign-in and one button (mail scanners follow
//! links, so GET changes nothing); the POST does what the button says, once.

use maud::{Markup, html};
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;

use super::components::geo_attribution;
use super::{error_page, html_response, layout};
use crate::clock::{relative, utc};
use crate::domain::alerts::responses::{self as alert_response, Question};
use crate::domain::alerts::{Details, LinkPurpose};
use crate::paths::{ALERT_CONFIRM, ALERT_SECURE, LOGIN, PASSWORD};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LinkParams {
    #[serde(default)]
    t: String,
}

fn sign_in_card(d: &Details) -> Markup {
    let now = crate::clock::now();
    html! {
        div.card {
            p { "Sign-in " span title=(utc(d.at)) { (relative(now, d.at)) } " from:" }
            p { strong { (d.browser) " · " (d.os) " · " (d.device) } }
            p { (d.ip) " · " (d.location) }
        }
    }
}

fn page(title: &str, body: Markup) -> Response {
    let body = html! { main.narrow { (body) (geo_attribution()) } };
    html_response(layout(title, None, body)).into_response()
}

#[handler]
pub async fn show_confirm(state: Data<&AppState>, q: Query<LinkParams>) -> Response {
    let Question { details, answered } =
        match alert_response::question(&state, LinkPurpose::Confirm, &q.t).await {
            Ok(found) => found,
            Err(err) => return error_page(&err),
        };
    page(
        "Was this you?",
        html! {
            h1 { "Was this you?" }
            (sign_in_card(&details))
            @if answered {
                p.notice { "You confirmed this sign-in already." }
            } @else {
                form method="post" action=(ALERT_CONFIRM) {
                    input type="hidden" name="t" value=(q.t);
                    button type="submit" { "Yes, it was me" }
                }
                p.muted { "Nothing else changes: your sessions stay signed in." }
            }
        },
    )
}

#[handler]
pub async fn submit_confirm(
    state: Data<&AppState>,
    form: poem::Result<Form<LinkParams>>,
) -> Response {
    let token = form.map(|f| f.0.t).unwrap_or_default();
    match alert_response::confirm(&state, &token).await {
        Ok(first) => page(
            "Thank you",
            html! {
                h1 { "Thank you" }
                p.notice.ok role="status" {
                    @if first { "Marked as you. Nothing else changed." }
                    @else { "You had confirmed this sign-in already. Nothing else changed." }
                }
            },
        ),
        Err(err) => error_page(&err),
    }
}

#[handler]
pub async fn show_secure(state: Data<&AppState>, q: Query<LinkParams>) -> Response {
    let Question { details, answered } =
        match alert_response::question(&state, LinkPurpose::Secure, &q.t).await {
            Ok(found) => found,
            Err(err) => return error_page(&err),
        };
    page(
        "Secure your account",
        html! {
            h1 { "Not you? Secure your account" }
            (sign_in_card(&details))
            @if answered {
                p.notice { "This sign-in was reported already, and your account secured." }
            } @else {
                p { "This will:" }
                ul {
                    li { "sign you out everywhere (every session, this one too)," }
                    li { "forget your devices, so the next sign-in from each is a new device," }
                    li { "ask you to set a new password," }
                    li { "tell your account's administrators." }
                }
                form method="post" action=(ALERT_SECURE) {
                    input type="hidden" name="t" value=(q.t);
                    button.danger type="submit" { "Secure my account" }
                }
            }
        },
    )
}

#[handler]
pub async fn submit_secure(
    state: Data<&AppState>,
    form: poem::Result<Form<LinkParams>>,
) -> Response {
    let token = form.map(|f| f.0.t).unwrap_or_default();
    match alert_response::secure(&state, &token).await {
        Ok(Some(done)) => page(
            "Account secured",
            html! {
                h1 { "Account secured" }
                p.notice.ok role="status" {
                    "Signed out everywhere (" (done.sessions_ended) " "
                    (if done.sessions_ended == 1 { "session" } else { "sessions" }) " ended), "
                    "your devices forgotten, and "
                    @if done.admins_told == 1 { "1 administrator" } @else { (done.admins_told) " administrators" }
                    " told."
                }
                @if done.reset_link_sent {
                    p { strong { "Someone may know your password." } " We have emailed you a link to set a new one; it works once, for a limited time." }
                } @else {
                    p { strong { "Someone may know your password." } " "
                        a href=(LOGIN) { "Sign in" } " and " a href=(PASSWORD) { "change your password" } " now." }
                }
            },
        ),
        Ok(None) => page(
            "Already secured",
            html! {
                h1 { "Already secured" }
                p.notice role="status" { "This sign-in was reported already; nothing more was done." }
                p { a href=(PASSWORD) { "Change your password" } }
            },
        ),
        Err(err) => error_page(&err),
    }
}
