//! `/oidc/end_session` (OpenID Connect RP-Initiated Logout 1.0): asks "Sign out of
//! Doorman and every app?", then ends the Doorman session, and with it every grant it
//! made; then back to a registered `post_logout_redirect_uri` with `state`.

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{pages, see_other};
use crate::domain::oidc::keys;
use crate::domain::signin::check::authenticate;
use crate::domain::signin::flow::sign_out;
use crate::domain::tokens;
use crate::error::Error;
use crate::http::cookies;
use crate::state::AppState;

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct EndParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    csrf: String,
    confirm: String,
}

impl EndParams {
    fn fields(&self) -> Vec<(&'static str, String)> {
        [
            ("id_token_hint", &self.id_token_hint),
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
            ("state", &self.state),
            ("client_id", &self.client_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.clone()?)))
        .collect()
    }
}

/// Where to go once signed out: the registered address with `state`, or Doorman's
/// page. `Err` says why a request may not use the address it names.
async fn destination(state: &AppState, p: &EndParams) -> Result<Option<String>, &'static str> {
    let bad = |text: &'static str| Err(text);
    let mut client_id = p.client_id.clone().filter(|c| !c.is_empty());
    if let Some(hint) = p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        if let Err(err) = keys::refresh(state).await {
            tracing::warn!(%err, "could not read the signing keys again");
        }
        let Some(claims) = keys::verify(state, hint) else {
            return bad("The application's sign-out request carries a token Doorman did not sign.");
        };
        let aud = claims["aud"].as_str().map(str::to_string);
        if client_id.is_some() && aud != client_id {
            return bad("The application's sign-out request names two different applications.");
        }
        client_id = aud;
    }
    let Some(uri) = p
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    let registered = client_id
        .as_deref()
        .and_then(|id| state.config.oidc_client(id))
        .is_some_and(|(_, c)| c.post_logout_redirect_uris.iter().any(|u| u == uri));
    if !registered {
        return bad(
            "The address this application asked to return to after sign-out is not registered for it, so Doorman does not send you there.",
        );
    }
    let Ok(mut url) = url::Url::parse(uri) else {
        return bad("The address to return to cannot be read.");
    };
    if let Some(s) = p.state.as_deref().filter(|s| !s.is_empty()) {
        url.query_pairs_mut().append_pair("state", s);
    }
    Ok(Some(url.to_string()))
}

fn finish(state: &AppState, to: Option<String>, clear: bool) -> Response {
    let mut resp = match to {
        Some(to) => see_other(&to),
        None => pages::signed_out(),
    };
    if clear {
        let cookie = cookies::build(&state.config.server, cookies::SESSION_COOKIE, "", Some(0));
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[handler]
pub async fn start(
    req: &Request,
    state: Data<&AppState>,
    query: poem::Result<Query<EndParams>>,
) -> Response {
    let Ok(Query(p)) = query else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "The sign-out request could not be read.",
        );
    };
    ask(req, &state, &p).await
}

async fn ask(req: &Request, state: &AppState, p: &EndParams) -> Response {
    let to = match destination(state, p).await {
        Ok(to) => to,
        Err(why) => return pages::error(StatusCode::BAD_REQUEST, why),
    };
    let Some(token) = cookies::get(req, cookies::SESSION_COOKIE).filter(|t| !t.is_empty()) else {
        return finish(state, to, false);
    };
    match authenticate(state, &token).await {
        Ok(_) => pages::end_session_confirm(&tokens::csrf_for_session(&token), &p.fields()),
        Err(Error::Unauthenticated(_) | Error::EnrolmentRequired) => finish(state, to, true),
        Err(err) => {
            let (status, body) = crate::http::errors::describe(&err);
            pages::error(status, &body.message)
        }
    }
}

/// The answer to "Sign out of Doorman and every app?" (or a form post of the request
/// itself, which asks first).
#[handler]
pub async fn submit(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<EndParams>>,
) -> Response {
    let Ok(Form(p)) = form else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "The sign-out request could not be read.",
        );
    };
    if p.confirm != "yes" {
        return ask(req, &state, &p).await;
    }
    let to = match destination(&state, &p).await {
        Ok(to) => to,
        Err(why) => return pages::error(StatusCode::BAD_REQUEST, why),
    };
    let Some(token) = cookies::get(req, cookies::SESSION_COOKIE).filter(|t| !t.is_empty()) else {
        return finish(&state, to, false);
    };
    let want = tokens::csrf_for_session(&token);
    if !tokens::constant_time_eq(want.as_bytes(), p.csrf.as_bytes()) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "This form has expired. Go back to the application and sign out again.",
        );
    }
    match authenticate(&state, &token).await {
        Ok(authed) => match sign_out(&state, &authed).await {
            Ok(()) => finish(&state, to, true),
            Err(err) => {
                let (status, body) = crate::http::errors::describe(&err);
                pages::error(status, &body.message)
            }
        },
        Err(_) => finish(&state, to, true),
    }
}
