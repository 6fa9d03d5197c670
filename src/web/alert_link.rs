//! The "Not you? End this session" link from alert emails. GET only shows what the link
//! would do (mail scanners follow links); the POST ends the session, once.

use maud::html;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;

use super::components::geo_attribution;
use super::{error_page, html_response, layout};
use crate::clock::{relative, utc};
use crate::domain::alerts::{end_via_link, link_target};
use crate::state::AppState;

pub use crate::paths::ALERT_END as PATH;

#[derive(Deserialize)]
pub struct LinkParams {
    #[serde(default)]
    t: String,
}

#[handler]
pub async fn show(state: Data<&AppState>, q: Query<LinkParams>) -> Response {
    let target = match link_target(&state, &q.t).await {
        Ok(t) => t,
        Err(err) => return error_page(&err),
    };
    let d = &target.details;
    let now = crate::clock::now();
    let body = html! {
        main.narrow {
            h1 { "Not you?" }
            div.card {
                p { "Sign-in " span title=(utc(d.at)) { (relative(now, d.at)) } " from:" }
                p { strong { (d.browser) " · " (d.os) " · " (d.device) } }
                p { (d.ip) " · " (d.location) }
            }
            @if target.used {
                p.notice { "This link has been used already." }
            } @else if !target.session_active {
                p.notice { "That session has already ended." }
            } @else {
                form method="post" action=(PATH) {
                    input type="hidden" name="t" value=(q.t);
                    button.danger type="submit" { "End this session" }
                }
            }
            p { "If you do not recognise this sign-in, also " a href="/settings/security/password" { "change your password" } "." }
            (geo_attribution())
        }
    };
    html_response(layout("End this session", None, body)).into_response()
}

#[handler]
pub async fn submit(state: Data<&AppState>, form: poem::Result<Form<LinkParams>>) -> Response {
    let token = form.map(|f| f.0.t).unwrap_or_default();
    let ended = match end_via_link(&state, &token).await {
        Ok(e) => e,
        Err(err) => return error_page(&err),
    };
    let body = html! {
        main.narrow {
            @if ended {
                h1 { "Session ended" }
                p.notice.ok { "That session is signed out." }
            } @else {
                h1 { "Nothing to end" }
                p.notice { "This link was used already, or the session had ended." }
            }
            p { "Someone may know your password. " a.button href="/settings/security/password" { "Change your password" } }
        }
    };
    let title = if ended {
        "Session ended"
    } else {
        "Nothing to end"
    };
    html_response(layout(title, None, body)).into_response()
}
