//! My sessions and, for admins, the sessions of the users in their scope.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::auth::ApiTags;
use super::errors::api_errors;
use super::json::{Written, put_opt_str};
use super::model::{SESSION_JSON_BYTES, SessionJson, write_session};
use super::{ApiAuth, ApiToken};
use crate::domain::factors::step_up::{self, Proof};
use crate::domain::oidc::sign_out;
use crate::domain::sessions::{self as domain, AdminQuery, SessionSink};
use crate::model::{SessionView, UserId};
use crate::state::AppState;

#[derive(Debug, Object, serde::Serialize)]
pub struct SessionList {
    pub items: Vec<SessionJson>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct Ended {
    /// How many sessions were ended.
    pub ended: u64,
}

#[derive(ApiResponse)]
pub enum EndedOne {
    /// The session has ended; its token is refused from the next request on.
    #[oai(status = 204)]
    Ended,
}

api_errors!(ListError {
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "`second_factor_enrolment_required`: a second factor is required of you and this session was signed in without one; add one first.",
});

api_errors!(EndOneError {
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "No active session with that id in your scope.",
    Conflict = 409: "It is the session making this request: sign out instead.",
});

api_errors!(SignOutAppError {
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "No active session with that id in your scope signed in to that application.",
});

#[derive(ApiResponse)]
pub enum SignedOutOfApp {
    /// The session's grants for the application have ended, with their tokens; an
    /// application with a back-channel logout URI is sent a logout token. The Doorman
    /// session stays.
    #[oai(status = 204)]
    SignedOut,
}

api_errors!(AdminEndOneError {
    BadRequest = 400: "The reason is longer than 200 characters.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "No active session with that id in your scope.",
    Conflict = 409: "It is the session making this request: sign out instead.",
});

api_errors!(EndManyError {
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header, or `step_up_required`: confirm it's you first (`POST /api/v1/me/step-up`).",
});

api_errors!(AdminEndMatchingError {
    BadRequest = 400: "No filter given, an invalid one, or a reason longer than 200 characters.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header, or `step_up_required`: confirm it's you first (`POST /api/v1/me/step-up`).",
    NotFound = 404: "Not an admin, or a user or account outside your scope.",
});

api_errors!(AdminListError {
    BadRequest = 400: "Invalid limit or cursor.",
    Unauthorized = 401: "No valid session.",
    NotFound = 404: "Not an admin, or an account outside your scope.",
});

api_errors!(AdminEndManyError {
    BadRequest = 400: "No filter given, an invalid one, or a reason longer than 200 characters.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    NotFound = 404: "Not an admin, or a user or account outside your scope.",
});

/// A [`SessionList`] written as its sessions are read: each session's JSON straight from
/// its row ([`write_session`]). My Sessions moves the current one first at the end.
pub(super) struct ListWriter {
    out: Vec<u8>,
    current_first: bool,
    /// Where the current session's JSON (and its comma) is in `out`.
    current: Option<(usize, usize)>,
    label: String,
}

const ITEMS: &[u8] = b"{\"items\":[";

impl ListWriter {
    /// My Sessions: the current session first.
    pub(super) fn new() -> Self {
        Self::with_order(true)
    }

    /// A page of a search, in the order given.
    pub(super) fn in_order() -> Self {
        Self::with_order(false)
    }

    fn with_order(current_first: bool) -> Self {
        let mut out = Vec::with_capacity(64 + SESSION_JSON_BYTES * domain::DEFAULT_PAGE as usize);
        out.extend_from_slice(ITEMS);
        ListWriter {
            out,
            current_first,
            current: None,
            label: String::with_capacity(64),
        }
    }

    pub(super) fn finish(mut self, next_cursor: Option<&str>) -> Vec<u8> {
        if let Some((start, end)) = self.current {
            self.out[ITEMS.len()..end].rotate_right(end - start);
        }
        if self.out.last() == Some(&b',') {
            self.out.pop();
        }
        self.out.extend_from_slice(b"],\"next_cursor\":");
        put_opt_str(&mut self.out, next_cursor);
        self.out.push(b'}');
        self.out
    }
}

impl domain::SessionSink for ListWriter {
    fn push(&mut self, s: &SessionView<'_>, current: bool) {
        let start = self.out.len();
        write_session(&mut self.out, s, current, &mut self.label);
        self.out.push(b',');
        if current && self.current_first {
            self.current = Some((start, self.out.len()));
        }
    }
}

pub struct SessionsApi;

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// My active sessions: the current one first, then by last activity.
    #[oai(path = "/sessions", method = "get", operation_id = "listMySessions")]
    pub(super) async fn list_mine(
        &self,
        state: Data<&AppState>,
        auth: ApiToken,
    ) -> Result<Written<SessionList>, ListError> {
        let (_, list) =
            domain::write_mine_by_token(&state, &auth.0, || auth.1, ListWriter::new).await?;
        Ok(Written::new(list.finish(None)))
    }

    /// End one of my sessions.
    #[oai(
        path = "/sessions/:id",
        method = "delete",
        operation_id = "endMySession"
    )]
    async fn end_mine(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The session's public id.
        id: Path<String>,
    ) -> Result<EndedOne, EndOneError> {
        domain::end_mine(&state, auth.authed(), &id.0).await?;
        Ok(EndedOne::Ended)
    }

    /// Sign one of my sessions out of one application (SPEC §21).
    #[oai(
        path = "/sessions/:id/apps/:client_id",
        method = "delete",
        operation_id = "signMySessionOutOfApp"
    )]
    async fn sign_out_of_app(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The session's public id.
        id: Path<String>,
        /// The application's OpenID `client_id`.
        client_id: Path<String>,
    ) -> Result<SignedOutOfApp, SignOutAppError> {
        sign_out::sign_out_of_app(
            &state,
            auth.authed(),
            &id.0,
            &client_id.0,
            sign_out::As::Owner,
        )
        .await?;
        Ok(SignedOutOfApp::SignedOut)
    }

    /// End all my sessions except the current one.
    #[oai(
        path = "/sessions",
        method = "delete",
        operation_id = "endMyOtherSessions"
    )]
    async fn end_others(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
    ) -> Result<Json<Ended>, EndManyError> {
        let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
        step_up::require(&state, auth.authed(), &client, Proof::None).await?;
        let n = domain::end_my_others(&state, auth.authed()).await?;
        Ok(Json(Ended { ended: n as u64 }))
    }
}

pub struct AdminSessionsApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminSessionsApi {
    /// Active sessions of the users in my scope (my account; every account for the
    /// owner), newest activity first.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/admin/sessions",
        method = "get",
        operation_id = "listSessions"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// Case-insensitive substring of the user's email.
        q: Query<Option<String>>,
        user_id: Query<Option<i64>>,
        /// Owner only (an admin may give only their own account).
        account_id: Query<Option<i64>>,
        /// `web`, `api` or a configured application's name.
        application: Query<Option<String>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<i64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Written<SessionList>, AdminListError> {
        let me = auth.authed();
        let query = AdminQuery {
            q: q.0,
            user_id: user_id.0,
            account_id: account_id.0,
            application: application.0,
        };
        let page = domain::admin_list(&state, me, &query, limit.0, cursor.0.as_deref()).await?;
        let mut list = ListWriter::in_order();
        for s in &page.items {
            list.push(&s.view(), s.pk == me.session.pk);
        }
        Ok(Written::new(list.finish(page.next_cursor.as_deref())))
    }

    /// End a session in my scope.
    #[oai(
        path = "/admin/sessions/:id",
        method = "delete",
        operation_id = "endSession"
    )]
    async fn end_one(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The session's public id.
        id: Path<String>,
        /// Why (at most 200 characters): shown to the person when they are next asked to
        /// sign in.
        reason: Query<Option<String>>,
    ) -> Result<EndedOne, AdminEndOneError> {
        domain::admin_end(&state, auth.authed(), &id.0, reason.0.as_deref()).await?;
        Ok(EndedOne::Ended)
    }

    /// Sign a session in my scope out of one application (SPEC §21).
    #[oai(
        path = "/admin/sessions/:id/apps/:client_id",
        method = "delete",
        operation_id = "signSessionOutOfApp"
    )]
    async fn sign_out_of_app(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The session's public id.
        id: Path<String>,
        /// The application's OpenID `client_id`.
        client_id: Path<String>,
    ) -> Result<SignedOutOfApp, SignOutAppError> {
        sign_out::sign_out_of_app(
            &state,
            auth.authed(),
            &id.0,
            &client_id.0,
            sign_out::As::Admin,
        )
        .await?;
        Ok(SignedOutOfApp::SignedOut)
    }

    /// End every active session matching the filters (at least one), in my scope,
    /// except my current one. For incident response: "sign everyone in Acme out".
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/admin/sessions",
        method = "delete",
        operation_id = "endSessions"
    )]
    // poem-openapi reads each query parameter as an argument of its own.
    #[allow(clippy::too_many_arguments)]
    async fn end_matching(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
        q: Query<Option<String>>,
        user_id: Query<Option<i64>>,
        account_id: Query<Option<i64>>,
        application: Query<Option<String>>,
        /// Why (at most 200 characters): shown to each person when they are next asked to
        /// sign in.
        reason: Query<Option<String>>,
    ) -> Result<Json<Ended>, AdminEndMatchingError> {
        crate::domain::permissions::admin_scope(&auth.authed().principal)?;
        let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
        step_up::require(&state, auth.authed(), &client, Proof::None).await?;
        let query = AdminQuery {
            q: q.0,
            user_id: user_id.0,
            account_id: account_id.0,
            application: application.0,
        };
        let n =
            domain::admin_end_matching(&state, auth.authed(), &query, reason.0.as_deref()).await?;
        Ok(Json(Ended { ended: n as u64 }))
    }

    /// End every session of a user in my scope (except my current one).
    #[oai(
        path = "/admin/users/:id/sessions",
        method = "delete",
        operation_id = "endUserSessions"
    )]
    async fn end_user(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// The user's id.
        id: Path<i64>,
        /// Why (at most 200 characters): shown to the person when they are next asked to
        /// sign in.
        reason: Query<Option<String>>,
    ) -> Result<Json<Ended>, AdminEndManyError> {
        let n = domain::admin_end_user(&state, auth.authed(), UserId(id.0), reason.0.as_deref())
            .await?;
        Ok(Json(Ended { ended: n as u64 }))
    }
}
