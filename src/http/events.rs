//! An event's JSON (SPEC §15): the API lists it and webhooks send it, from this one
//! shape.

use poem_openapi::Object;
use serde::Serialize;
use time::OffsetDateTime;

use crate::clock::at;
use crate::domain::events::Event;
use crate::http::export::{DeviceJson, LocationJson};

/// A user an event names. `email` is null once the user is deleted.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "EventUser")]
pub struct EventUserJson {
    pub id: i64,
    #[oai(nullable)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "EventAccount")]
pub struct EventAccountJson {
    pub id: i64,
    #[oai(nullable)]
    pub name: Option<String>,
}

/// One security event.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Event")]
pub struct EventJson {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `session.created`, `session.ended`, `login.failed`, `user.created`, … (SPEC §15).
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// Who did it; null when nobody did (expiry, the command line) or unknown.
    #[oai(nullable)]
    pub actor: Option<EventUserJson>,
    /// Whom it concerns; null for a sign-in attempt with an unknown email.
    #[oai(nullable)]
    pub user: Option<EventUserJson>,
    #[oai(nullable)]
    pub account: Option<EventAccountJson>,
    /// The public id of the session concerned.
    #[oai(nullable)]
    pub session_id: Option<String>,
    pub ip: String,
    pub location: LocationJson,
    pub device: DeviceJson,
    /// What else the type tells, e.g. `{"reason": "logout", "by": 7}` for `session.ended`.
    pub details: serde_json::Value,
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> Self {
        let user = |u: &Option<(crate::domain::model::UserId, Option<String>)>| {
            u.as_ref().map(|(id, email)| EventUserJson {
                id: id.0,
                email: email.clone(),
            })
        };
        EventJson {
            id: e.id,
            at: at(e.at),
            kind: e.kind.clone(),
            actor: user(&e.actor),
            user: user(&e.user),
            account: e.account.as_ref().map(|(id, name)| EventAccountJson {
                id: id.0,
                name: name.clone(),
            }),
            session_id: e.session_id.clone(),
            ip: e.ip.clone(),
            location: (&e.location).into(),
            device: (&e.device).into(),
            details: serde_json::from_str(&e.details)
                .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
        }
    }
}
