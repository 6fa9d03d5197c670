//! What reverse proxies ask (SPEC §16): Doorman's own `/auth/verify`, and the paths
//! Authelia and oauth2-proxy answer on, with their status codes and identity headers, so
//! that an existing proxy configuration works by changing its upstream host. Every
//! answer is checked against the database (a terminated session fails on its very next
//! request) and is never cached.

use maud::html;
use poem::http::{HeaderName, HeaderValue, StatusCode, header};
use poem::web::{Data, Json, Query};
use poem::{Endpoint, IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{encode, html_response, layout};
use crate::config::HeaderFamily;
use crate::domain::access;
use crate::error::Error;
use crate::http::errors::describe;
use crate::http::{cookies, forward};
use crate::model::Authed;
use crate::paths;
use crate::state::AppState;

/// Which tool's conventions an answer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    /// `/auth/verify`: 200, or 401 with a JSON reason.
    Doorman,
    /// Authelia's nginx endpoint: 200, or 401 with `Location: <sign-in URL>`.
    AuthRequest,
    /// Authelia's Traefik and Caddy endpoint: 200, or a 302 to sign in (401 for clients
    /// that do not accept HTML).
    ForwardAuth,
    /// Authelia's legacy `/api/verify`: 200, or 401; with `rd`, a 302 there.
    Legacy,
    /// oauth2-proxy's `/oauth2/auth`: 202, or 401.
    OAuth2,
}

/// The verdict paths, answered ahead of the router: the busiest requests of all skip its
/// matching and the request data it adds, which they do not use. Everything else goes on
/// to `inner`. Any method is answered, as a route does.
pub struct VerdictsFirst<E> {
    inner: E,
    state: AppState,
}

impl<E> VerdictsFirst<E> {
    pub fn new(inner: E, state: AppState) -> Self {
        VerdictsFirst { inner, state }
    }
}

impl<E: Endpoint> Endpoint for VerdictsFirst<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        match Asker::at(req.uri().path()) {
            Some(asker) => Ok(answer(&req, &self.state, asker).await),
            None => self.inner.call(req).await.map(IntoResponse::into_response),
        }
    }
}

#[derive(Deserialize)]
pub struct Rd {
    #[serde(default)]
    rd: String,
}

/// oauth2-proxy's `/oauth2/start?rd=` and `/oauth2/sign_in?rd=`: Doorman's sign-in page,
/// which follows `rd` only to a configured application or to itself.
#[handler]
pub async fn oauth2_start(query: poem::Result<Query<Rd>>) -> Response {
    let rd = query.map(|q| q.0.rd).unwrap_or_default();
    let to = if rd.is_empty() {
        paths::LOGIN.to_string()
    } else {
        format!("{}?rd={}", paths::LOGIN, encode(&rd))
    };
    poem::web::Redirect::see_other(to).into_response()
}

impl Asker {
    /// The asker whose verdict path is `path` ([`paths::VERDICTS`]).
    fn at(path: &str) -> Option<Asker> {
        match path {
            paths::VERIFY => Some(Asker::Doorman),
            paths::AUTH_REQUEST => Some(Asker::AuthRequest),
            paths::FORWARD_AUTH => Some(Asker::ForwardAuth),
            paths::LEGACY_VERIFY => Some(Asker::Legacy),
            paths::OAUTH2_AUTH => Some(Asker::OAuth2),
            _ => None,
        }
    }

    /// The header family this endpoint reads the original request from (SPEC §19).
    fn family(self) -> forward::Family {
        match self {
            Asker::AuthRequest | Asker::Legacy => forward::Family::Original,
            Asker::ForwardAuth => forward::Family::Forwarded,
            Asker::Doorman | Asker::OAuth2 => forward::Family::Either,
        }
    }
}

async fn answer(req: &Request, state: &AppState, asker: Asker) -> Response {
    let target = forward::target(req, &state.config.server.trusted_proxies, asker.family());
    let token = cookies::presented_token(req);
    let mut resp = match access::verify(
        state,
        token.as_deref(),
        &target,
        super::client_of(req, state),
    )
    .await
    {
        Ok(authed) => signed_in(state, &authed, asker),
        Err(Error::AccessDenied { application }) => no_access(state, req, &application),
        Err(err @ Error::Unauthenticated(_)) => {
            let original = target.url().map(url::Url::as_str);
            not_signed_in(req, state, asker, original, &err)
        }
        Err(err) => json_error(&err),
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn signed_in(state: &AppState, a: &Authed, asker: Asker) -> Response {
    let status = if asker == Asker::OAuth2 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut resp = status.into_response();
    // Room for the identity and security headers, so the map is not regrown as they go in.
    resp.headers_mut().reserve(24);
    let families = &state.config.server.forward_auth_headers;
    // Fails closed: a "yes" without the identity the application relies on would let it
    // guess (or take a client's own header) instead.
    if let Err(field) = identity(families, a, resp.headers_mut()) {
        tracing::warn!(
            user_id = %a.principal.user_id,
            field,
            "identity cannot be sent as a header"
        );
        return json_error(&Error::Forbidden(
            "Your identity cannot be passed on to the application (a header cannot carry it); ask an administrator.".into(),
        ));
    }
    resp
}

const X_DOORMAN_USER: HeaderName = HeaderName::from_static("x-doorman-user");
const X_DOORMAN_EMAIL: HeaderName = HeaderName::from_static("x-doorman-email");
const X_DOORMAN_SESSION: HeaderName = HeaderName::from_static("x-doorman-session");
const REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");
const REMOTE_EMAIL: HeaderName = HeaderName::from_static("remote-email");
const REMOTE_NAME: HeaderName = HeaderName::from_static("remote-name");
const REMOTE_GROUPS: HeaderName = HeaderName::from_static("remote-groups");
const X_AUTH_REQUEST_USER: HeaderName = HeaderName::from_static("x-auth-request-user");
const X_AUTH_REQUEST_EMAIL: HeaderName = HeaderName::from_static("x-auth-request-email");
const X_AUTH_REQUEST_GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");

/// Adds the identity headers of the configured families to `out`; when a value cannot
/// be a header, which one (`email`, `name`, `groups` or `session`). Each value is made
/// once and shared by the headers that carry it.
fn identity(
    families: &[HeaderFamily],
    a: &Authed,
    out: &mut poem::http::HeaderMap,
) -> Result<(), &'static str> {
    let p = &a.principal;
    let value = |text: &str, field| HeaderValue::from_str(text).map_err(|_| field);
    let email = value(&p.email, "email")?;
    let groups = if families.iter().any(|f| *f != HeaderFamily::Doorman) {
        let role = p.role.as_str();
        let mut groups = String::with_capacity(role.len() + 1 + p.account_name.len());
        groups.push_str(role);
        groups.push(',');
        groups.push_str(&p.account_name);
        // Taken as it is, not copied again.
        HeaderValue::try_from(groups).map_err(|_| "groups")?
    } else {
        HeaderValue::from_static("")
    };
    for family in families {
        match family {
            HeaderFamily::Doorman => {
                out.insert(X_DOORMAN_USER, HeaderValue::from(p.user_id.0));
                out.insert(X_DOORMAN_EMAIL, email.clone());
                out.insert(X_DOORMAN_SESSION, value(&a.session.id.0, "session")?);
            }
            HeaderFamily::Remote => {
                out.insert(REMOTE_USER, email.clone());
                out.insert(REMOTE_EMAIL, email.clone());
                out.insert(REMOTE_NAME, value(&p.name, "name")?);
                out.insert(REMOTE_GROUPS, groups.clone());
            }
            HeaderFamily::Oauth2Proxy => {
                out.insert(X_AUTH_REQUEST_USER, email.clone());
                out.insert(X_AUTH_REQUEST_EMAIL, email.clone());
                out.insert(X_AUTH_REQUEST_GROUPS, groups.clone());
            }
        }
    }
    Ok(())
}

/// Doorman's sign-in page, absolute, returning to `original` when it is known.
fn sign_in_url(state: &AppState, original: Option<&str>) -> String {
    let base = state.config.server.public_base();
    match original {
        Some(url) => format!("{base}{}?rd={}", paths::LOGIN, encode(url)),
        None => format!("{base}{}", paths::LOGIN),
    }
}

fn not_signed_in(
    req: &Request,
    state: &AppState,
    asker: Asker,
    original: Option<&str>,
    err: &Error,
) -> Response {
    let sign_in = || sign_in_url(state, original);
    match asker {
        Asker::Doorman | Asker::OAuth2 => json_error(err),
        Asker::AuthRequest => with_location(json_error(err), &sign_in()),
        Asker::ForwardAuth if forward::is_browser(req) => {
            with_location(StatusCode::FOUND.into_response(), &sign_in())
        }
        Asker::ForwardAuth => json_error(err),
        Asker::Legacy => match legacy_rd(req, state, original) {
            Some(to) => with_location(StatusCode::FOUND.into_response(), &to),
            None => json_error(err),
        },
    }
}

/// The legacy endpoint's `rd`: Doorman's own sign-in URL, to which the original URL is
/// added as its `rd`. Any other address is ignored (no open redirect).
fn legacy_rd(req: &Request, state: &AppState, original: Option<&str>) -> Option<String> {
    let rd = req
        .uri()
        .query()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "rd"))
        .map(|(_, v)| v.into_owned())?;
    let mut to = url::Url::parse(&rd).ok()?;
    let ours = url::Url::parse(state.config.server.public_base()).ok()?;
    if to.origin() != ours.origin() {
        return None;
    }
    if let Some(original) = original {
        let kept: Vec<(String, String)> = to
            .query_pairs()
            .filter(|(k, _)| k != "rd")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        to.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("rd", original);
    }
    Some(to.to_string())
}

fn with_location(mut resp: Response, to: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn json_error(err: &Error) -> Response {
    let (status, body) = describe(err);
    Json(body).with_status(status).into_response()
}

/// 403 on every verify path: the "no access" page for a browser, JSON otherwise.
fn no_access(state: &AppState, req: &Request, application: &str) -> Response {
    if forward::is_browser(req) {
        return denied_page(state, Some(application));
    }
    json_error(&Error::AccessDenied {
        application: application.to_string(),
    })
}

#[derive(Deserialize)]
pub struct DeniedQuery {
    #[serde(default)]
    app: String,
}

/// `/denied?app=Grafana`, where a proxy sends a person the rules do not let in.
#[handler]
pub async fn denied(state: Data<&AppState>, query: poem::Result<Query<DeniedQuery>>) -> Response {
    let app = query.map(|q| q.0.app).unwrap_or_default();
    denied_page(&state, Some(app.as_str()))
}

/// "You don't have access to Grafana", status 403. Only a configured application is
/// named: the page never repeats arbitrary text from its address.
fn denied_page(state: &AppState, app: Option<&str>) -> Response {
    let name = app
        .and_then(|a| state.config.application_named(a))
        .map(|a| a.name.as_str());
    let body = html! {
        main.narrow #main {
            h1 { "No access" }
            p.notice.error role="alert" {
                @match name {
                    Some(n) => { "You don't have access to " strong { (n) } "." }
                    None => { "You don't have access to this application." }
                }
            }
            p { "You are signed in, but this application's rules do not include you. If you think they should, ask an administrator." }
            p { a href=(paths::SESSIONS) { "Your sessions" } " · " a href=(paths::LOGIN) { "Sign in as someone else" } }
        }
    };
    html_response(layout("No access", None, body))
        .with_status(StatusCode::FORBIDDEN)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request layer knows the verdicts by `paths::VERDICTS` (no browser headers on
    /// their "yes", counted by path) and this module answers them by `Asker::at`: the two
    /// must name the same paths, each its own asker.
    #[test]
    fn every_verdict_path_has_its_own_asker_and_no_other_path_has_one() {
        let askers: Vec<Asker> = paths::VERDICTS
            .iter()
            .map(|p| Asker::at(p).unwrap_or_else(|| panic!("{p} has no asker")))
            .collect();
        for (i, a) in askers.iter().enumerate() {
            assert!(!askers[..i].contains(a), "{a:?} answers two paths");
        }
        assert_eq!(askers.len(), 5);
        for other in [
            "/auth/verify/",
            "/api/v1/me",
            "/oauth2/start",
            paths::DENIED,
            "/",
        ] {
            assert_eq!(Asker::at(other), None, "{other}");
        }
    }
}
