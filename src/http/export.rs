//! The data export's JSON (SPEC §17), shared by the API (`GET /api/v1/me/export`) and
//! the page's download link, so both give the same document; and the device and
//! location shapes every JSON answer uses.

use poem_openapi::Object;
use serde::Serialize;
use time::OffsetDateTime;

use crate::clock::at;
use crate::domain::audit::events::Event;
use crate::domain::people::privacy::Export;
use crate::domain::tokens::device_hash;
use crate::model::{Device, Location, Session};

#[derive(Debug, Clone, Object, Serialize)]
pub struct DeviceJson {
    /// Desktop, Smartphone, Mobile phone, Appliance, Crawler or Unknown.
    pub category: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    /// Ready to show, e.g. "Chrome 120 · macOS 10.15 · Desktop".
    pub label: String,
}

impl From<&Device> for DeviceJson {
    fn from(d: &Device) -> Self {
        DeviceJson {
            category: d.category.clone(),
            browser: d.browser.clone(),
            browser_version: d.browser_version.clone(),
            os: d.os.clone(),
            os_version: d.os_version.clone(),
            label: d.label(),
        }
    }
}

/// Each part is null when unknown (private addresses, or not in the database).
#[derive(Debug, Clone, Object, Serialize)]
#[oai(nullable_all)]
pub struct LocationJson {
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    /// The trusted network (`[[networks]]`) the address is in, by name.
    pub network: Option<String>,
}

impl From<&Location> for LocationJson {
    fn from(l: &Location) -> Self {
        LocationJson::from(l.clone())
    }
}

impl From<Location> for LocationJson {
    fn from(l: Location) -> Self {
        LocationJson {
            country_code: l.country_code,
            country: l.country,
            city: l.city,
            network: l.network,
        }
    }
}

/// Everything Doorman holds about one person. Password and token hashes are never
/// part of it.
#[derive(Debug, Clone, Object)]
pub struct DataExport {
    pub exported_at: OffsetDateTime,
    pub profile: ExportProfile,
    /// Sessions still signed in.
    pub active_sessions: Vec<ExportSession>,
    /// Ended sessions, kept for `sessions.retention` after they end.
    pub ended_sessions: Vec<ExportSession>,
    /// Devices signed in from, forgotten after `privacy.devices_retention` unseen.
    pub devices: Vec<ExportDevice>,
    /// Every sign-in attempt as this user, kept for `privacy.login_records_retention`.
    pub login_records: Vec<ExportLoginRecord>,
    /// Sign-in alerts and security notices, kept for `privacy.alerts_retention`.
    pub alerts: Vec<ExportAlert>,
    /// Authenticator apps and passkeys (names and dates only).
    pub second_factors: Vec<ExportSecondFactor>,
    /// The security log's events about this user, kept for `privacy.events_retention`.
    pub events: Vec<EventJson>,
}

#[derive(Debug, Clone, Object)]
pub struct ExportProfile {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// `user`, `admin` or `owner`.
    pub role: String,
    /// `active` or `disabled`.
    pub status: String,
    pub account_id: i64,
    pub account_name: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Object)]
pub struct ExportSession {
    /// The public id (not the secret token).
    pub id: String,
    pub application: String,
    /// The device, as a hash of its id (the id itself is a credential, never shown):
    /// the first 16 hex characters of its SHA-256.
    pub device_hash: String,
    pub user_agent: String,
    pub device: DeviceJson,
    pub ip: String,
    pub location: LocationJson,
    pub created_at: OffsetDateTime,
    pub last_active_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    #[oai(nullable)]
    pub ended_at: Option<OffsetDateTime>,
    #[oai(nullable)]
    pub end_reason: Option<String>,
    /// How it was signed in: `password`, `totp`, `recovery_code`, `passkey`.
    pub auth_methods: Vec<String>,
}

/// A second factor, without its secret (the key or the passkey's public key).
#[derive(Debug, Clone, Object)]
pub struct ExportSecondFactor {
    pub id: i64,
    /// `totp` or `passkey`.
    pub kind: String,
    pub name: String,
    pub active: bool,
    pub created_at: OffsetDateTime,
    #[oai(nullable)]
    pub last_used_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Object)]
pub struct ExportDevice {
    /// A hash of the device id (the first 16 hex characters of its SHA-256), as in
    /// sessions and login records.
    pub device_hash: String,
    pub first_seen: OffsetDateTime,
    pub last_seen: OffsetDateTime,
}

#[derive(Debug, Clone, Object)]
pub struct ExportLoginRecord {
    pub id: i64,
    pub at: OffsetDateTime,
    pub email: String,
    pub success: bool,
    pub reason: String,
    pub ip: String,
    pub location: LocationJson,
    pub device: DeviceJson,
    /// A hash of the device id the attempt presented, as in sessions and devices.
    #[oai(nullable)]
    pub device_hash: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct ExportAlert {
    pub id: i64,
    /// Why it was sent, e.g. `new_device,new_country`, or `password_changed`.
    pub reasons: String,
    /// `pending`, `sent`, `failed`, `suppressed` or `skipped`.
    pub status: String,
    pub created_at: OffsetDateTime,
    #[oai(nullable)]
    pub sent_at: Option<OffsetDateTime>,
    /// What the email said: when, device, IP, location, session.
    pub details: serde_json::Value,
}

fn session(s: &Session) -> ExportSession {
    ExportSession {
        id: s.id.0.clone(),
        application: s.application.clone(),
        device_hash: device_hash(&s.device_id),
        user_agent: s.user_agent.clone(),
        device: (&s.device).into(),
        ip: s.ip.clone(),
        location: (&s.location).into(),
        created_at: at(s.created_at),
        last_active_at: at(s.last_active_at),
        expires_at: at(s.expires_at),
        ended_at: s.ended_at.map(at),
        end_reason: s.end_reason.map(|r| r.as_str().to_string()),
        auth_methods: s
            .auth_methods
            .iter()
            .map(|m| m.as_str().to_string())
            .collect(),
    }
}

impl From<&Export> for DataExport {
    fn from(e: &Export) -> Self {
        let u = &e.user;
        DataExport {
            exported_at: at(e.exported_at),
            profile: ExportProfile {
                id: u.id.0,
                email: u.email.clone(),
                name: u.name.clone(),
                role: u.role.as_str().to_string(),
                status: u.status.as_str().to_string(),
                account_id: u.account_id.0,
                account_name: u.account_name.clone(),
                created_at: at(u.created_at),
            },
            second_factors: e
                .second_factors
                .iter()
                .map(|f| ExportSecondFactor {
                    id: f.id,
                    kind: f.kind.clone(),
                    name: f.name.clone(),
                    active: f.active,
                    created_at: at(f.created_at),
                    last_used_at: f.last_used_at.map(at),
                })
                .collect(),
            active_sessions: e.active_sessions.iter().map(session).collect(),
            ended_sessions: e.ended_sessions.iter().map(session).collect(),
            devices: e
                .devices
                .iter()
                .map(|d| ExportDevice {
                    device_hash: device_hash(&d.device_id),
                    first_seen: at(d.first_seen),
                    last_seen: at(d.last_seen),
                })
                .collect(),
            login_records: e
                .login_records
                .iter()
                .map(|r| ExportLoginRecord {
                    id: r.id,
                    at: at(r.at),
                    email: r.email.clone(),
                    success: r.success,
                    reason: r.reason.clone(),
                    ip: r.ip.clone(),
                    location: (&r.location).into(),
                    device: (&r.device).into(),
                    device_hash: r.device_id.as_deref().map(device_hash),
                })
                .collect(),
            events: e.events.iter().map(EventJson::from).collect(),
            alerts: e
                .alerts
                .iter()
                .map(|a| ExportAlert {
                    id: a.id,
                    reasons: a.reasons.clone(),
                    status: a.status.clone(),
                    created_at: at(a.created_at),
                    sent_at: a.sent_at.map(at),
                    details: exported_details(&a.details),
                })
                .collect(),
        }
    }
}

impl DataExport {
    /// The document as the API sends it (poem-openapi's own serialisation).
    pub fn to_json_string(&self) -> String {
        poem_openapi::types::ToJSON::to_json_string(self)
    }
}

/// What an email said, for the export: without the value an emailed link's secret is
/// derived from (an export is a file people pass around; the link is not theirs to
/// share).
fn exported_details(raw: &str) -> serde_json::Value {
    let mut details = serde_json::from_str(raw).unwrap_or(serde_json::Value::Null);
    if let Some(map) = details.as_object_mut() {
        map.remove("link_seed");
    }
    details
}

// The security log's events, as the API, the data export and webhooks show them.

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
        let user = |u: &Option<(crate::model::UserId, Option<String>)>| {
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
            details: shown_details(&e.details),
        }
    }
}

/// An event's details as shown: a device id recorded before ids were hashed is shown
/// as its hash, like every device id (SPEC §19).
fn shown_details(raw: &str) -> serde_json::Value {
    let mut details =
        serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
    if let Some(map) = details.as_object_mut()
        && let Some(id) = map.remove("device_id")
    {
        let hash = id.as_str().map(device_hash).unwrap_or_default();
        map.insert("device_hash".into(), hash.into());
    }
    details
}
