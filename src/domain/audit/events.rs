//! The security log (SPEC §15): [`record`] writes an event inside the transaction that
//! causes it (so an event exists exactly when its change committed) and queues its
//! webhook deliveries in the same transaction; listing one's own events and, for
//! admins, those of their scope.

use rusqlite::Connection;
use serde_json::{Map, Value};
use tracing::instrument;

use crate::db::events::{EventFilter, NewEventRow};
use crate::db::sessions::Ended;
use crate::db::{self, DbError, Place};
use crate::domain::permissions::{admin_scope, hides_owners};
use crate::error::{Error, Result};
use crate::model::{AccountId, Authed, ClientInfo, Device, EventType, Location, Session, UserId};
use crate::state::AppState;

pub use crate::db::events::EventRow as Event;

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 200;

/// Where an event came from: the request's address, its location and its device.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: String,
    pub location: Location,
    pub device: Device,
}

impl Origin {
    /// The origin of a request.
    pub fn of(state: &AppState, client: &ClientInfo) -> Self {
        Origin {
            ip: client.ip.to_string(),
            location: crate::domain::place::locate(state, client.ip),
            device: crate::ua::parse(&client.user_agent),
        }
    }

    /// The origin of what a session does.
    pub fn of_session(s: &Session) -> Self {
        Origin {
            ip: s.ip.clone(),
            location: s.location.clone(),
            device: s.device.clone(),
        }
    }
}

/// An event to record. Build it with [`NewEvent::new`] and the setters, then give it
/// to [`record`] inside the transaction of the change it tells of.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventType,
    pub at: i64,
    /// Who did it, when it was a person.
    pub actor: Option<UserId>,
    /// Whom it concerns.
    pub user: Option<UserId>,
    pub account: Option<AccountId>,
    /// The public id of the session concerned.
    pub session_id: Option<String>,
    pub origin: Origin,
    pub details: Map<String, Value>,
}

impl NewEvent {
    pub fn new(kind: EventType, at: i64) -> Self {
        NewEvent {
            kind,
            at,
            actor: None,
            user: None,
            account: None,
            session_id: None,
            origin: Origin::default(),
            details: Map::new(),
        }
    }

    /// The user it concerns, and their account.
    pub fn user(mut self, user: UserId, account: AccountId) -> Self {
        self.user = Some(user);
        self.account = Some(account);
        self
    }

    pub fn actor(mut self, actor: Option<UserId>) -> Self {
        self.actor = actor;
        self
    }

    /// The session it concerns: its user, account, id and origin.
    pub fn session(mut self, s: &Session) -> Self {
        self.user = Some(s.user_id);
        self.account = Some(s.account_id);
        self.session_id = Some(s.id.0.clone());
        self.origin = Origin::of_session(s);
        self
    }

    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

/// Records `e` in the caller's transaction (with its webhook deliveries); the event
/// id. Cheap: one insert, and one more that finds no matching webhook when none is
/// configured.
pub fn record(tx: &Connection, e: NewEvent) -> std::result::Result<i64, DbError> {
    let details = Value::Object(e.details).to_string();
    let (id, _queued) = db::events::insert(
        tx,
        &NewEventRow {
            at: e.at,
            kind: e.kind,
            actor: e.actor,
            user: e.user,
            account: e.account,
            session_id: e.session_id.as_deref(),
            ip: &e.origin.ip,
            location: &e.origin.location,
            device: &e.origin.device,
            details: &details,
        },
    )?;
    Ok(id)
}

/// Records an event about `user` (with their account, read in the same transaction);
/// `build` adds the rest. Nothing when the user is gone.
pub fn record_about(
    tx: &Connection,
    kind: EventType,
    user: UserId,
    at: i64,
    build: impl FnOnce(NewEvent) -> NewEvent,
) -> std::result::Result<(), DbError> {
    if let Some(u) = db::users::find_by_id(tx, user)? {
        record(tx, build(NewEvent::new(kind, at).user(u.id, u.account_id)))?;
    }
    Ok(())
}

/// A `session.ended` event for each session just ended (details: reason, by).
pub fn record_ended(tx: &Connection, ended: &[Ended], at: i64) -> std::result::Result<(), DbError> {
    for s in ended {
        let mut e = NewEvent::new(EventType::SessionEnded, at)
            .user(s.user_id, s.account_id)
            .actor(s.by)
            .origin(Origin {
                ip: s.ip.clone(),
                location: s.location.clone(),
                device: s.device.clone(),
            })
            .detail("reason", s.reason.as_str())
            .detail("by", s.by.map(|u| u.0));
        // The reason an administrator gave (SPEC §14), as the person was told it.
        if let Some(note) = &s.note {
            e = e.detail("note", note.as_str());
        }
        e.session_id = Some(s.public_id.clone());
        record(tx, e)?;
    }
    Ok(())
}

/// What a listing asks for, as received.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub kind: Option<String>,
    pub user_id: Option<i64>,
    pub account_id: Option<i64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct EventPage {
    pub items: Vec<Event>,
    pub next_cursor: Option<String>,
}

/// The caller's own events (those about them), newest first.
pub async fn list_mine(state: &AppState, me: &Authed, q: &EventQuery) -> Result<EventPage> {
    let mut filter = common_filter(q)?;
    filter.user = Some(me.principal.user_id);
    page(state, filter, q.limit).await
}

/// Events in the caller's admin scope: an admin's account (never the owners'), or
/// every account for the owner, who may filter by account. Out of scope is NotFound.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn list_admin(state: &AppState, me: &Authed, q: &EventQuery) -> Result<EventPage> {
    let scope = admin_scope(&me.principal)?;
    let mut filter = common_filter(q)?;
    filter.account = scope.account_filter(q.account_id.map(AccountId))?;
    filter.hide_owners = hides_owners(&me.principal);
    if let Some(user) = q.user_id.map(UserId) {
        let found = state
            .db
            .run(move |c| db::users::find_by_id(c, user))
            .await?;
        // A deleted user's tombstones stay listable by id for the owner only.
        match found {
            Some(u) => {
                crate::domain::permissions::check_manage_user(&me.principal, &u)?;
            }
            None if filter.account.is_none() && !filter.hide_owners => {}
            None => return Err(Error::NotFound),
        }
        filter.user = Some(user);
    }
    page(state, filter, q.limit).await
}

fn common_filter(q: &EventQuery) -> Result<EventFilter> {
    let kind = match q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) => Some(EventType::parse(k).ok_or_else(|| {
            Error::invalid(
                "invalid_type",
                format!(
                    "`{}` is not an event type.",
                    k.chars().take(64).collect::<String>()
                ),
            )
        })?),
        None => None,
    };
    if let (Some(s), Some(u)) = (q.since, q.until)
        && s > u
    {
        return Err(Error::invalid(
            "invalid_range",
            "since must not be after until.",
        ));
    }
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            Error::invalid(
                "invalid_cursor",
                "The cursor is not one this server gave out.",
            )
        })?),
        None => None,
    };
    Ok(EventFilter {
        kind,
        since: q.since,
        until: q.until,
        before,
        ..Default::default()
    })
}

async fn page(state: &AppState, filter: EventFilter, limit: Option<i64>) -> Result<EventPage> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}."),
        ));
    }
    // Every listing walks one index in order and stops after a page, so it runs inline
    // when a connection is idle; one user's events of one type may walk all of that
    // user's, and go to the blocking pool.
    let bounded = filter.user.is_none() || filter.kind.is_none();
    let mut items = state
        .db
        .read_or_block(move |c, place| {
            if place == Place::Inline && !bounded {
                return Ok(None);
            }
            Ok::<_, DbError>(Some(db::events::list(c, &filter, limit + 1)?))
        })
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(EventPage { items, next_cursor })
}

/// One event by id (for the webhook worker).
pub async fn find(state: &AppState, id: i64) -> Result<Option<Event>> {
    Ok(state.db.run(move |c| db::events::find_by_id(c, id)).await?)
}
