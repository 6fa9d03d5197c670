//! The security log for scripts (SPEC §15): one's own events, and the events of the
//! accounts one administers.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::{Object, OpenApi};
use serde::Serialize;
use time::OffsetDateTime;

use super::ApiAuth;
use super::auth::ApiTags;
use super::errors::api_errors;
use super::json::{JsonOut, SizeHint};
use crate::domain::audit::events::{self, EventPage, EventQuery};
use crate::http::export::EventJson;
use crate::state::AppState;

#[derive(Debug, Object, Serialize)]
pub struct EventList {
    pub items: Vec<EventJson>,
    /// Pass as `cursor` for older events; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl SizeHint for EventList {
    fn size_hint(&self) -> usize {
        64 + self.items.len() * EVENT_JSON_BYTES
    }
}

/// About what one event's JSON takes.
const EVENT_JSON_BYTES: usize = 720;

impl From<EventPage> for EventList {
    fn from(p: EventPage) -> Self {
        EventList {
            items: p.items.iter().map(EventJson::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

api_errors!(EventsError {
    BadRequest = 400: "An unknown type, a bad time range, limit or cursor.",
    Unauthorized = 401: "No valid session.",
    NotFound = 404: "Not an administrator, or an account or user outside your scope.",
});

fn secs(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(OffsetDateTime::unix_timestamp)
}

pub struct EventsApi;

#[OpenApi(tag = "ApiTags::Sessions")]
impl EventsApi {
    /// My security log: the events about me, newest first.
    #[oai(path = "/events", method = "get", operation_id = "listMyEvents")]
    #[allow(clippy::too_many_arguments)]
    async fn mine(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// One event type, e.g. `session.created`.
        #[oai(name = "type")]
        kind: Query<Option<String>>,
        /// Events at or after this time (RFC 3339).
        since: Query<Option<OffsetDateTime>>,
        /// Events at or before this time (RFC 3339).
        until: Query<Option<OffsetDateTime>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<JsonOut<EventList>, EventsError> {
        let q = EventQuery {
            kind: kind.0,
            since: secs(since.0),
            until: secs(until.0),
            limit: limit.0,
            cursor: cursor.0,
            ..Default::default()
        };
        Ok(JsonOut(
            events::list_mine(&state, auth.authed(), &q).await?.into(),
        ))
    }
}

pub struct AdminEventsApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminEventsApi {
    /// The security log of the accounts I administer (the owner: every account),
    /// newest first. The events of users ranked above me are not listed.
    #[oai(
        path = "/admin/events",
        method = "get",
        operation_id = "listAdminEvents"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        /// One event type, e.g. `login.failed`.
        #[oai(name = "type")]
        kind: Query<Option<String>>,
        /// Only the events about this user.
        user_id: Query<Option<i64>>,
        /// Only this account (the owner; an admin may give only their own).
        account_id: Query<Option<i64>>,
        /// Events at or after this time (RFC 3339).
        since: Query<Option<OffsetDateTime>>,
        /// Events at or before this time (RFC 3339).
        until: Query<Option<OffsetDateTime>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<JsonOut<EventList>, EventsError> {
        let q = EventQuery {
            kind: kind.0,
            user_id: user_id.0,
            account_id: account_id.0,
            since: secs(since.0),
            until: secs(until.0),
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(JsonOut(
            events::list_admin(&state, auth.authed(), &q).await?.into(),
        ))
    }
}
