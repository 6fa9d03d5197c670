//! The nouns of SPEC §1, shared by storage, the leaf services, the rules, the pages and
//! the API. Imports nothing of the crate but `clock`: everything else stands on it.

mod identity;

pub use identity::{Authed, ClientInfo, CurrentSession, Principal};

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

// `Invited`: invited and not yet accepted, so cannot sign in. Stored as `active` with
// the invitation's time (`db::users`), never written as such.
string_enum!(UserStatus {
    Active => "active",
    Disabled => "disabled",
    Invited => "invited",
});

// `PasswordReset`: a forgotten-password link was used, or the operator's CLI set it.
string_enum!(EndReason {
    Logout => "logout",
    Terminated => "terminated",
    TerminatedByAdmin => "terminated_by_admin",
    EndedOtherSessions => "ended_other_sessions",
    IdleTimeout => "idle_timeout",
    MaxLifetime => "max_lifetime",
    UserDisabled => "user_disabled",
    PasswordChanged => "password_changed",
    PasswordReset => "password_reset",
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
    AppSignedIn => "app.signed_in",
    AppTokenRefused => "app.token_refused",
    AppSignedOut => "app.signed_out",
    AppLogoutFailed => "app.logout_failed",
    PolicyChanged => "policy.changed",
});

impl EndReason {
    /// The second sentence of the "Your session has ended" notice, when we know why.
    pub fn explanation(self) -> Option<&'static str> {
        match self {
            EndReason::Terminated | EndReason::EndedOtherSessions => {
                Some("It was ended from another of your devices.")
            }
            EndReason::PasswordChanged => {
                Some("Your password was changed, so your other sessions were ended.")
            }
            EndReason::PasswordReset => {
                Some("Your password was reset, so all your sessions were ended.")
            }
            EndReason::TerminatedByAdmin | EndReason::UserDisabled => {
                Some("It was ended by an administrator.")
            }
            EndReason::IdleTimeout | EndReason::MaxLifetime => Some("It timed out."),
            EndReason::Logout => None,
        }
    }
}

string_enum!(AuthMethod {
    Password => "password",
    Totp => "totp",
    RecoveryCode => "recovery_code",
    Passkey => "passkey",
});

impl AuthMethod {
    fn bit(self) -> u8 {
        match self {
            AuthMethod::Password => 1,
            AuthMethod::Totp => 2,
            AuthMethod::RecoveryCode => 4,
            AuthMethod::Passkey => 8,
        }
    }

    /// How the listings name it: "Password + authenticator app".
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Password => "Password",
            AuthMethod::Totp => "authenticator app",
            AuthMethod::RecoveryCode => "recovery code",
            AuthMethod::Passkey => "passkey",
        }
    }
}

/// How a session was signed in (SPEC §12): a small set of [`AuthMethod`]s, kept in
/// its row as text ("password,totp").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthMethods(u8);

impl AuthMethods {
    /// A password and nothing else: how most sessions are signed in.
    pub const PASSWORD: AuthMethods = AuthMethods(1);

    pub fn of(methods: &[AuthMethod]) -> Self {
        AuthMethods(methods.iter().fold(0, |bits, m| bits | m.bit()))
    }

    /// The stored text; an unknown word is ignored (a newer binary's method).
    pub fn parse_list(text: &str) -> Self {
        if text == "password" {
            return AuthMethods(1);
        }
        AuthMethods(
            text.split(',')
                .filter_map(AuthMethod::parse)
                .fold(0, |bits, m| bits | m.bit()),
        )
    }

    pub fn with(self, m: AuthMethod) -> Self {
        AuthMethods(self.0 | m.bit())
    }

    pub fn contains(self, m: AuthMethod) -> bool {
        self.0 & m.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = AuthMethod> {
        AuthMethod::ALL
            .iter()
            .copied()
            .filter(move |m| self.contains(*m))
    }

    /// Signed in with something besides (or instead of) a password: what an application
    /// with `require_second_factor` asks for. A passkey is a factor of its own.
    pub fn has_second_factor(self) -> bool {
        self.iter().any(|m| m != AuthMethod::Password)
    }

    pub fn to_text(self) -> String {
        self.iter()
            .map(AuthMethod::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// "Password + authenticator app", "Passkey".
    pub fn label(self) -> String {
        let mut out = String::new();
        for (i, m) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(" + ");
            }
            let l = m.label();
            if i == 0 {
                let mut cs = l.chars();
                if let Some(first) = cs.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(cs.as_str());
                }
            } else {
                out.push_str(l);
            }
        }
        out
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
        self.as_ref().label_into(&mut out);
        out
    }

    pub fn as_ref(&self) -> DeviceRef<'_> {
        DeviceRef {
            category: &self.category,
            browser: &self.browser,
            browser_version: &self.browser_version,
            os: &self.os,
            os_version: &self.os_version,
        }
    }
}

/// A [`Device`] borrowed from where it was read.
#[derive(Debug, Clone, Copy)]
pub struct DeviceRef<'a> {
    pub category: &'a str,
    pub browser: &'a str,
    pub browser_version: &'a str,
    pub os: &'a str,
    pub os_version: &'a str,
}

impl DeviceRef<'_> {
    /// Appends [`Device::label`] to `out`.
    pub fn label_into(&self, out: &mut String) {
        if self.browser != "Unknown" {
            push_version(out, self.browser, self.browser_version, 1);
            out.push_str(" · ");
        }
        if self.os != "Unknown" {
            push_version(out, self.os, self.os_version, 2);
            out.push_str(" · ");
        }
        out.push_str(self.category);
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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    /// Where the database puts the address, for the travel check (SPEC §14); not shown.
    pub coords: Option<Coords>,
    /// The trusted network (`[[networks]]`) the address is in, by name.
    pub network: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coords {
    pub latitude: f64,
    pub longitude: f64,
    /// How far off the point may be, when the database says.
    pub accuracy_km: Option<u32>,
}

impl Coords {
    /// Great-circle distance (haversine, mean Earth radius).
    pub fn distance_km(&self, other: &Coords) -> f64 {
        let (la1, la2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let dla = la2 - la1;
        let dlo = (other.longitude - self.longitude).to_radians();
        let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
        2.0 * 6371.0 * h.sqrt().min(1.0).asin()
    }
}

impl Location {
    /// "Berlin, Germany", "Germany" or "Unknown".
    pub fn place(&self) -> String {
        match (&self.city, &self.country) {
            (Some(city), Some(country)) => format!("{city}, {country}"),
            (None, Some(country)) => country.clone(),
            (Some(city), None) => city.clone(),
            (None, None) => "Unknown".into(),
        }
    }

    /// [`Self::place`], after the trusted network's name when there is one
    /// ("Office · Budapest, Hungary").
    pub fn label(&self) -> String {
        match &self.network {
            Some(net) => format!("{net} · {}", self.place()),
            None => self.place(),
        }
    }

    /// Known to the city, with a point: what the travel check compares.
    pub fn city_level(&self) -> Option<Coords> {
        self.city.as_ref().and(self.country_code.as_ref())?;
        self.coords
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_at: i64,
    /// The domains its admins may create or invite addresses in (lower-case; empty:
    /// any). The owner is not limited (SPEC §19).
    pub email_domains: Vec<String>,
}

impl Account {
    /// Whether `email` lies in the account's domains (any, when it names none).
    pub fn allows_email(&self, email: &str) -> bool {
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.trim().to_ascii_lowercase())
            .unwrap_or_default();
        self.email_domains.is_empty() || self.email_domains.contains(&domain)
    }
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
    /// The person has proven the address (SPEC §19): only then does it match an
    /// application's `allow_emails`.
    pub email_verified: bool,
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
    /// The reason an administrator gave for ending it.
    pub end_note: Option<String>,
    /// Where the session is now used from, when that is another country than it
    /// signed in from (SPEC §14).
    pub moved_to: Option<Moved>,
    /// The protected applications the session has been used with, most recent first.
    pub applications_used: Vec<AppUse>,
    /// How it was signed in.
    pub auth_methods: AuthMethods,
    /// When its person last proved it was them in it (the sign-in, or a step-up).
    pub verified_at: i64,
    /// The applications signed in to with it through OpenID Connect (SPEC §20), one per
    /// client, and whether each is still signed in (SPEC §21).
    pub signed_in_to: Vec<SignedInApp>,
}

/// An application a session signed in to through OpenID Connect, and where its sign-out
/// stands once its grant has ended (SPEC §21).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedInApp {
    pub name: String,
    pub client_id: String,
    #[serde(default)]
    pub status: AppStatus,
    /// When the app was told (a delivered logout token) or, for an app without a
    /// back-channel URI, when its grant ended.
    #[serde(default)]
    pub at: Option<i64>,
}

/// Where an app's sign-out from a session stands (SPEC §21).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    /// Its grant is live: the app has the person.
    #[default]
    SignedIn,
    /// Its grant ended; its logout token is on its way (or being retried).
    SigningOut,
    /// Its grant ended and it took the logout token (or ended the grant itself).
    SignedOut,
    /// Its grant ended; it refused the logout token for 24 hours. Its tokens are dead, so it
    /// loses the person at its next check.
    LogoutFailed,
    /// Its grant ended and it has no back-channel URI: its tokens are dead, so it loses the
    /// person at its next token refresh or userinfo call.
    AtNextCheck,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::SignedIn => "signed_in",
            AppStatus::SigningOut => "signing_out",
            AppStatus::SignedOut => "signed_out",
            AppStatus::LogoutFailed => "logout_failed",
            AppStatus::AtNextCheck => "at_next_check",
        }
    }
}

/// Which sign-in alerts a person gets (SPEC §14): all on unless they turned some off.
/// Security notices are not among them: those cannot be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPrefs {
    pub new_device: bool,
    pub new_country: bool,
    pub travel: bool,
    pub moved: bool,
}

impl Default for AlertPrefs {
    fn default() -> Self {
        AlertPrefs {
            new_device: true,
            new_country: true,
            travel: true,
            moved: true,
        }
    }
}

/// A session now seen from another country: where, and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub location: Location,
    pub at: i64,
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

    /// What the listings show of it, borrowed.
    pub fn view(&self) -> SessionView<'_> {
        SessionView {
            pk: self.pk,
            id: &self.id.0,
            user_id: self.user_id.0,
            user_email: &self.user_email,
            account_id: self.account_id.0,
            account_name: &self.account_name,
            application: &self.application,
            device: self.device.as_ref(),
            ip: &self.ip,
            place: PlaceRef::of(&self.location),
            created_at: self.created_at,
            last_active_at: self.last_active_at,
            expires_at: self.expires_at,
            applications_used: std::borrow::Cow::Borrowed(&self.applications_used),
            signed_in_to: std::borrow::Cow::Borrowed(&self.signed_in_to),
            auth_methods: self.auth_methods,
            moved_to: self
                .moved_to
                .as_ref()
                .map(|m| (PlaceRef::of(&m.location), m.at)),
        }
    }
}

/// A session as the listings show it, borrowed from where it was read (a database row
/// or a [`Session`]): a listing's JSON is written straight from it, with no string
/// copied on the way.
#[derive(Debug, Clone)]
pub struct SessionView<'a> {
    pub pk: i64,
    pub id: &'a str,
    pub user_id: i64,
    pub user_email: &'a str,
    pub account_id: i64,
    pub account_name: &'a str,
    pub application: &'a str,
    pub device: DeviceRef<'a>,
    pub ip: &'a str,
    pub place: PlaceRef<'a>,
    pub created_at: i64,
    pub last_active_at: i64,
    pub expires_at: i64,
    /// Most recent first; seldom any (an empty vector holds nothing).
    pub applications_used: std::borrow::Cow<'a, [AppUse]>,
    pub signed_in_to: std::borrow::Cow<'a, [SignedInApp]>,
    pub auth_methods: AuthMethods,
    /// Where it is now used from (its network is never set), and since when.
    pub moved_to: Option<(PlaceRef<'a>, i64)>,
}

/// The shown parts of a [`Location`], borrowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlaceRef<'a> {
    pub country_code: Option<&'a str>,
    pub country: Option<&'a str>,
    pub city: Option<&'a str>,
    pub network: Option<&'a str>,
}

impl<'a> PlaceRef<'a> {
    pub fn of(l: &'a Location) -> Self {
        PlaceRef {
            country_code: l.country_code.as_deref(),
            country: l.country.as_deref(),
            city: l.city.as_deref(),
            network: l.network.as_deref(),
        }
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
    /// Back-channel logouts (§21): pending, failed (given up), and when the oldest
    /// pending one was queued.
    pub logouts: (i64, i64, Option<i64>),
}

/// How the scheduled backups went since the server started (the newest backup found on
/// disk at start counts as the last success).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupRecord {
    /// Unix time of the newest good backup.
    pub last_success: Option<i64>,
    /// Unix time of the newest failed attempt.
    pub last_failure: Option<i64>,
    pub failures: u64,
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
    fn auth_methods_round_trip_and_read_as_people_read_them() {
        let m = AuthMethods::of(&[AuthMethod::Password, AuthMethod::Totp]);
        assert_eq!(m.to_text(), "password,totp");
        assert_eq!(AuthMethods::parse_list("password,totp"), m);
        assert_eq!(m.label(), "Password + authenticator app");
        assert!(m.has_second_factor());
        assert!(!AuthMethods::parse_list("password").has_second_factor());
        assert_eq!(AuthMethods::parse_list("passkey").label(), "Passkey");
    }

    #[test]
    fn enums_round_trip() {
        for r in EndReason::ALL {
            assert_eq!(EndReason::parse(r.as_str()), Some(*r));
        }
        assert!(Role::Owner.rank() > Role::Admin.rank());
    }
}
