//! The HTTP API (SPEC §7), described by poem-openapi: spec at `/api/openapi.json`,
//! interactive docs at `/api/docs`. Handlers are thin: they call domain/ and map errors.

pub mod admin_users;
pub mod alert_prefs;
pub mod auth;
pub mod errors;
pub mod events;
pub mod health;
pub mod history;
pub mod json;
pub mod model;
pub mod privacy;
pub mod profile;
pub mod second_factors;
pub mod sessions;

use poem::RequestBody;
use poem::http::{Method, StatusCode};
use poem::web::Data;
use poem::web::Json as PoemJson;
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route};
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::registry::Registry;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OpenApiService, SecurityScheme,
};

use crate::model::Authed;
use std::net::IpAddr;

use crate::domain::signin::check::{authenticate_from, authenticate_held};
use crate::error::Error;
use crate::http::cookies::{self, SESSION_COOKIE};
use crate::http::errors::{ErrorBody, code_for_status, describe};
use crate::http::{CSRF_HEADER, csrf_matches};
use crate::paths;
use crate::state::AppState;

/// A session token sent as `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct BearerAuth(Authed);

/// The browser's session cookie. On POST, PATCH and DELETE the `X-CSRF-Token` header
/// must also carry the session's CSRF token (shown on the pages).
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "doorman_session",
    key_in = "cookie",
    checker = "check_cookie"
)]
pub struct CookieAuth(Authed);

/// Either scheme. Written out rather than derived so that a request presenting a bearer
/// token gets the bearer check's answer (e.g. "session ended"), not the cookie's.
pub enum ApiAuth {
    Bearer(BearerAuth),
    Cookie(CookieAuth),
}

impl<'a> ApiExtractor<'a> for ApiAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        BearerAuth::register(registry);
        CookieAuth::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut all = BearerAuth::security_schemes();
        all.extend(CookieAuth::security_schemes());
        all
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        if req
            .headers()
            .contains_key(poem::http::header::AUTHORIZATION)
        {
            // A malformed header (not "Bearer …") gets our message, not the framework's.
            BearerAuth::from_request(req, body, opts)
                .await
                .map(ApiAuth::Bearer)
                .map_err(|e| {
                    if e.is_from_response() {
                        e
                    } else {
                        error_response(&Error::Unauthenticated(None))
                    }
                })
        } else if let Some(key) = cookies::get(req, SESSION_COOKIE) {
            // Read here rather than by the derived scheme, which reads poem's cookie jar:
            // the API would then parse every request's cookies into one, for this one.
            check_cookie(req, ApiKey { key })
                .await
                .map(|authed| ApiAuth::Cookie(CookieAuth(authed)))
        } else {
            Err(error_response(&Error::Unauthenticated(None)))
        }
    }
}

/// A request's session token, not checked yet: for handlers that check it in the same
/// database trip as their own read ([`crate::domain::signin::check::authenticate_then`]).
/// Documented with the same security schemes as [`ApiAuth`]; only for safe methods, as
/// it does not check the CSRF header of cookie requests.
pub struct ApiToken(pub String, pub Option<IpAddr>);

impl<'a> ApiExtractor<'a> for ApiToken {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        ApiAuth::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        ApiAuth::security_schemes()
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        ApiToken::of(req, state_of(req)?)
    }
}

impl ApiToken {
    /// The request's token, from `Authorization: Bearer` or else the session cookie, and
    /// where the request comes from; refused as the API refuses a missing token.
    fn of(req: &Request, state: &AppState) -> poem::Result<Self> {
        let from = || {
            Some(crate::client_ip::ip_of(
                req,
                &state.config.server.trusted_proxies,
            ))
        };
        if req
            .headers()
            .contains_key(poem::http::header::AUTHORIZATION)
        {
            <Bearer as poem_openapi::auth::BearerAuthorization>::from_request(req)
                .map(|b| ApiToken(b.token, from()))
                .map_err(|_| error_response(&Error::Unauthenticated(None)))
        } else if let Some(cookie) = cookies::get(req, SESSION_COOKIE) {
            Ok(ApiToken(cookie, from()))
        } else {
            Err(error_response(&Error::Unauthenticated(None)))
        }
    }
}

impl ApiAuth {
    pub fn authed(&self) -> &Authed {
        match self {
            ApiAuth::Bearer(a) => &a.0,
            ApiAuth::Cookie(a) => &a.0,
        }
    }
}

fn state_of(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))
}

fn error_response(err: &Error) -> poem::Error {
    let (status, body) = describe(err);
    poem::Error::from_response(PoemJson(body).with_status(status).into_response())
}

/// The request's client address, for the session check to ask when it wrote the
/// session's activity (and only then).
fn client_of<'a>(req: &'a Request, state: &'a AppState) -> impl FnOnce() -> Option<IpAddr> + 'a {
    move || {
        Some(crate::client_ip::ip_of(
            req,
            &state.config.server.trusted_proxies,
        ))
    }
}

/// The session check of an API request: a session held at enrolment (SPEC §19) passes
/// only to add a second factor or sign out; elsewhere it is refused with 403
/// `second_factor_enrolment_required`.
async fn check_token(req: &Request, state: &AppState, token: &str) -> poem::Result<Authed> {
    let path = req.original_uri().path();
    let enrols = path.starts_with("/api/v1/me/second-factors")
        || path.starts_with("/api/v1/me/step-up")
        || path == "/api/v1/logout";
    let from = client_of(req, state);
    let checked = if enrols {
        authenticate_held(state, token, from).await
    } else {
        authenticate_from(state, token, from).await
    };
    checked.map_err(|e| error_response(&e))
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Authed> {
    let state = state_of(req)?;
    check_token(req, state, &bearer.token).await
}

async fn check_cookie(req: &Request, cookie: ApiKey) -> poem::Result<Authed> {
    let state = state_of(req)?;
    let authed = check_token(req, state, &cookie.key).await?;
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let given = req
            .headers()
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !csrf_matches(&cookie.key, given) {
            return Err(error_response(&Error::Forbidden(
                "Cookie-authenticated changes need the X-CSRF-Token header.".into(),
            )));
        }
    }
    Ok(authed)
}

/// The API's two busiest reads, `GET /api/v1/me` and `GET /api/v1/sessions` (a script
/// polls them), answered ahead of the router by the very operations the OpenAPI service
/// documents and serves. The service's layers (its own router, the query it parses for
/// every operation, the operation id it records, boxed futures and a response
/// conversion per layer) took a third of `/me`'s time outside the kernel. Anything
/// else, `HEAD` on those paths included, goes on to `inner`.
pub struct ReadsFirst<E> {
    inner: E,
    state: AppState,
}

impl<E> ReadsFirst<E> {
    pub fn new(inner: E, state: AppState) -> Self {
        ReadsFirst { inner, state }
    }
}

impl<E: Endpoint> Endpoint for ReadsFirst<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if req.method() == Method::GET {
            let state = &self.state;
            match req.uri().path() {
                paths::API_ME => {
                    return Ok(answer(&req, state, |t| auth::AuthApi.me(Data(state), t)).await);
                }
                paths::API_MY_SESSIONS => {
                    let api = sessions::SessionsApi;
                    return Ok(answer(&req, state, |t| api.list_mine(Data(state), t)).await);
                }
                _ => {}
            }
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// An operation's answer to `req`, as the OpenAPI service gives it: the token refused
/// as [`ApiToken`] refuses it, then the operation's own answer or error.
async fn answer<'a, F, T, E>(
    req: &'a Request,
    state: &'a AppState,
    op: impl FnOnce(ApiToken) -> F,
) -> Response
where
    F: Future<Output = Result<T, E>> + 'a,
    T: IntoResponse,
    E: IntoResponse,
{
    let token = match ApiToken::of(req, state) {
        Ok(token) => token,
        Err(refused) => return refused.into_response(),
    };
    match op(token).await {
        Ok(answer) => answer.into_response(),
        Err(err) => err.into_response(),
    }
}

/// Mounts the API under `/api` on `route`: each part at its full path, so that a request
/// passes one router, not one per path segment. Any other `/api` path is a JSON 404.
pub fn mount(route: Route) -> Route {
    let apis = (
        auth::AuthApi,
        admin_users::AdminUsersApi,
        sessions::SessionsApi,
        sessions::AdminSessionsApi,
        history::HistoryApi,
        privacy::PrivacyApi,
        profile::ProfileApi,
        alert_prefs::AlertPrefsApi,
        second_factors::SecondFactorsApi,
        second_factors::AdminSecondFactorsApi,
        events::EventsApi,
        events::AdminEventsApi,
    );
    let service = OpenApiService::new(apis, "Doorman", env!("CARGO_PKG_VERSION"))
        .description("See where everyone is signed in, and end any sign-in.")
        .server("/api/v1");
    let spec = service.spec_endpoint().catch_all_error(json_error);
    let docs = service.swagger_ui().catch_all_error(json_error);
    route
        .nest(
            "/api/v1",
            service.into_endpoint().catch_all_error(json_error),
        )
        .at("/api/openapi.json", spec)
        .nest("/api/docs", docs)
        .nest(
            "/api",
            poem::endpoint::make(|_| async {
                Err::<(), poem::Error>(poem::error::NotFoundError.into())
            })
            .catch_all_error(json_error),
        )
}

/// Keeps every error in `{error, message}` form, including the framework's own (bad
/// JSON, missing parameters, unknown paths, oversized bodies).
async fn json_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let message = if status.is_server_error() {
        tracing::error!(error = %err, "unhandled error");
        "Something went wrong on our side; it has been logged.".to_string()
    } else {
        err.to_string()
    };
    PoemJson(ErrorBody::new(code_for_status(status), message))
        .with_status(status)
        .into_response()
}
