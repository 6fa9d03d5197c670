//! The API's JSON shapes (SPEC §7) and their conversion from domain values.

use poem_openapi::Object;
use time::OffsetDateTime;

use crate::domain::auth::Principal;
use crate::domain::model::{Device, Location, Session};

/// An RFC 3339 UTC time from Unix seconds.
pub fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[derive(Debug, Clone, Object)]
pub struct UserRef {
    pub id: i64,
    pub email: String,
}

#[derive(Debug, Clone, Object)]
pub struct AccountRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Object)]
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
#[derive(Debug, Clone, Object)]
#[oai(nullable_all)]
pub struct LocationJson {
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
}

impl From<&Location> for LocationJson {
    fn from(l: &Location) -> Self {
        LocationJson {
            country_code: l.country_code.clone(),
            country: l.country.clone(),
            city: l.city.clone(),
        }
    }
}

/// An active session.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Session")]
pub struct SessionJson {
    /// Public id: use it to end the session. It is not the secret token.
    pub id: String,
    /// True for the session making this request.
    pub current: bool,
    pub user: UserRef,
    pub account: AccountRef,
    /// `web`, `api`, or a configured application's name.
    pub application: String,
    pub device: DeviceJson,
    pub ip: String,
    pub location: LocationJson,
    pub created_at: OffsetDateTime,
    pub last_active_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl SessionJson {
    pub fn new(s: &Session, current_pk: Option<i64>) -> Self {
        SessionJson {
            id: s.id.0.clone(),
            current: current_pk == Some(s.pk),
            user: UserRef {
                id: s.user_id.0,
                email: s.user_email.clone(),
            },
            account: AccountRef {
                id: s.account_id.0,
                name: s.account_name.clone(),
            },
            application: s.application.clone(),
            device: (&s.device).into(),
            ip: s.ip.clone(),
            location: (&s.location).into(),
            created_at: at(s.created_at),
            last_active_at: at(s.last_active_at),
            expires_at: at(s.expires_at),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct MeUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// `user`, `admin` or `owner`.
    pub role: String,
    pub account: AccountRef,
}

impl From<&Principal> for MeUser {
    fn from(p: &Principal) -> Self {
        MeUser {
            id: p.user_id.0,
            email: p.email.clone(),
            name: p.name.clone(),
            role: p.role.as_str().to_string(),
            account: AccountRef {
                id: p.account_id.0,
                name: p.account_name.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct Me {
    pub user: MeUser,
    pub session: SessionJson,
}
