//! The nouns of SPEC §1, shared by storage, the pages and the API.

use std::fmt;

use serde::Serialize;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(v).map($name)
            }
        }
    };
}

id_type!(AccountId);
id_type!(UserId);

/// A session's public id: random and URL-safe, shown in lists and URLs. It is not the
/// secret and cannot be used to authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SessionId(pub String);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = v.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(format!("unknown {}: {text}", stringify!($name)).into())
                })
            }
        }
    };
}

string_enum!(Role {
    User => "user",
    Admin => "admin",
    Owner => "owner",
});

impl Role {
    /// Higher is more powerful; nobody grants a role above their own.
    pub fn rank(self) -> u8 {
        match self {
            Role::User => 0,
            Role::Admin => 1,
            Role::Owner => 2,
        }
    }
}

string_enum!(UserStatus {
    Active => "active",
    Disabled => "disabled",
});

string_enum!(EndReason {
    Logout => "logout",
    Terminated => "terminated",
    TerminatedByAdmin => "terminated_by_admin",
    EndedOtherSessions => "ended_other_sessions",
    IdleTimeout => "idle_timeout",
    MaxLifetime => "max_lifetime",
    UserDisabled => "user_disabled",
    PasswordChanged => "password_changed",
});

string_enum!(EventType {
    SessionCreated => "session.created",
    SessionEnded => "session.ended",
    SessionMoved => "session.moved",
    LoginFailed => "login.failed",
    AlertQueued => "alert.queued",
    AlertSent => "alert.sent",
    AlertSuppressed => "alert.suppressed",
    AlertConfirmed => "alert.confirmed",
    AlertReported => "alert.reported",
    UserInvited => "user.invited",
    UserCreated => "user.created",
    UserInvitationAccepted => "user.invitation_accepted",
    UserDisabled => "user.disabled",
    UserEnabled => "user.enabled",
    UserDeleted => "user.deleted",
    UserRoleChanged => "user.role_changed",
    UserPasswordChanged => "user.password_changed",
    UserPasswordReset => "user.password_reset",
    UserEmailChanged => "user.email_changed",
    UserSecondFactorAdded => "user.second_factor_added",
    UserSecondFactorRemoved => "user.second_factor_removed",
    UserSecondFactorsReset => "user.second_factors_reset",
    AccessDenied => "access.denied",
});

impl EndReason {
    /// The second sentence of the "Your session has ended" notice, when we know why.
    pub fn explanation(self) -> Option<&'static str> {
        match self {
            EndReason::Terminated | EndReason::EndedOtherSessions | EndReason::PasswordChanged => {
                Some("It was ended from another of your devices.")
            }
            EndReason::TerminatedByAdmin | EndReason::UserDisabled => {
                Some("It was ended by an administrator.")
            }
            EndReason::IdleTimeout | EndReason::MaxLifetime => Some("It timed out."),
            EndReason::Logout => None,
        }
    }
}

/// What woothee made of a User-Agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub category: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
}

impl Device {
    /// "Chrome 120 · macOS 10.15 · Desktop": browser major version, OS major.minor.
    pub fn label(&self) -> String {
        let mut out = String::with_capacity(64);
        if self.browser != "Unknown" {
            push_version(&mut out, &self.browser, &self.browser_version, 1);
            out.push_str(" · ");
        }
        if self.os != "Unknown" {
            push_version(&mut out, &self.os, &self.os_version, 2);
            out.push_str(" · ");
        }
        out.push_str(&self.category);
        out
    }
}

/// Appends `name` and the first `keep` parts of `version` ("10_15_7" → "10.15").
fn push_version(out: &mut String, name: &str, version: &str, keep: usize) {
    out.push_str(name);
    if version == "UNKNOWN" {
        return;
    }
    let parts = version.split(['.', '_']).filter(|p| !p.is_empty());
    for (i, part) in parts.take(keep).enumerate() {
        out.push_str(if i == 0 { " " } else { "." });
        out.push_str(part);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
}

impl Location {
    /// "Berlin, Germany", "Germany" or "Unknown".
    pub fn label(&self) -> String {
        match (&self.city, &self.country) {
            (Some(city), Some(country)) => format!("{city}, {country}"),
            (None, Some(country)) => country.clone(),
            (Some(city), None) => city.clone(),
            (None, None) => "Unknown".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub account_id: AccountId,
    pub account_name: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Session {
    /// Row id: internal, never shown.
    pub pk: i64,
    pub id: SessionId,
    pub user_id: UserId,
    pub user_email: String,
    pub account_id: AccountId,
    pub account_name: String,
    pub application: String,
    pub device_id: String,
    pub user_agent: String,
    pub device: Device,
    pub ip: String,
    pub location: Location,
    pub created_at: i64,
    pub last_active_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<EndReason>,
    /// The protected applications the session has been used with, most recent first.
    pub applications_used: Vec<AppUse>,
}

/// A protected application a session was verified for, and when last.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppUse {
    pub name: String,
    pub last_used_at: i64,
}

impl Session {
    pub fn is_active(&self, now: i64) -> bool {
        self.ended_at.is_none() && self.expires_at > now
    }
}

/// The figures `/metrics` reads from the database.
#[derive(Debug, Clone)]
pub struct Gauges {
    pub active_sessions: i64,
    /// Alerts by status.
    pub alerts: Vec<(String, i64)>,
    /// When the oldest unsent alert was queued.
    pub oldest_pending: Option<i64>,
    /// Webhook deliveries: pending, failed (given up), and when the oldest pending one
    /// was queued.
    pub webhooks: (i64, i64, Option<i64>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_label_shortens_versions() {
        let d = Device {
            category: "Desktop".into(),
            browser: "Chrome".into(),
            browser_version: "120.0.6099.109".into(),
            os: "macOS".into(),
            os_version: "10.15.7".into(),
        };
        assert_eq!(d.label(), "Chrome 120 · macOS 10.15 · Desktop");
    }

    #[test]
    fn enums_round_trip() {
        for r in EndReason::ALL {
            assert_eq!(EndReason::parse(r.as_str()), Some(*r));
        }
        assert!(Role::Owner.rank() > Role::Admin.rank());
    }
}
