//! Settings › Security › Active Sessions.

use maud::html;
use poem::web::Data;
use poem::{IntoResponse, Request, Response, handler};

use super::{error_page, html_response, layout, page_session, relative, utc};
use crate::db;
use crate::domain::tokens;
use crate::state::AppState;

#[handler]
pub async fn show(req: &Request, state: Data<&AppState>) -> Response {
    let (authed, token) = match page_session(req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let user = authed.principal.user_id;
    let now = db::now();
    let list = match state
        .db
        .run(move |c| db::sessions::list_active_for_user(c, user, now))
        .await
    {
        Ok(l) => l,
        Err(err) => return error_page(&err.into()),
    };
    let csrf = tokens::csrf_for_session(&token);
    let body = html! {
        main {
            h1 { "Active sessions" }
            @for s in &list {
                div.card {
                    @if s.pk == authed.session.pk { span.badge { "Current" } }
                    p { (s.device.label()) " · " (s.ip) " · " (s.location.label()) }
                    p { span title=(utc(s.last_active_at)) { (relative(now, s.last_active_at)) } }
                }
            }
        }
    };
    html_response(layout("Active sessions", Some((&authed, &csrf)), body)).into_response()
}
