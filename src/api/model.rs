//! The API's JSON shapes (SPEC §7) and their conversion from domain values.

use poem_openapi::Object;
use serde::Serialize;
use time::OffsetDateTime;

use crate::model::Principal;
use crate::model::{Session, SessionView};

/// An RFC 3339 UTC time from Unix seconds.
pub use crate::clock::at;

#[derive(Debug, Clone, Object, Serialize)]
pub struct UserRef {
    pub id: i64,
    pub email: String,
}

#[derive(Debug, Clone, Object, Serialize)]
pub struct AccountRef {
    pub id: i64,
    pub name: String,
}

pub use crate::http::export::{DeviceJson, LocationJson};

/// An active session.
#[derive(Debug, Clone, Object, Serialize)]
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
    #[serde(serialize_with = "crate::api::json::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(serialize_with = "crate::api::json::rfc3339")]
    pub last_active_at: OffsetDateTime,
    #[serde(serialize_with = "crate::api::json::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The protected applications this session has been used with (through the verify
    /// endpoints), most recent first; written at most once per touch interval.
    pub applications_used: Vec<AppUseJson>,
    /// The applications signed in to with this session through OpenID Connect, one per
    /// client, each with where its sign-out stands (`status`: still `signed_in`, or
    /// signed out by back-channel logout, or `at_next_check` for an app without it).
    pub signed_in_to: Vec<SignedInJson>,
    /// How the session was signed in: `password`, `totp`, `recovery_code`, `passkey`
    /// (e.g. `["password", "totp"]`, or `["passkey"]`).
    pub auth_methods: Vec<String>,
    /// Where the session is now used from, when that is another country than it signed
    /// in from; null until it moves.
    #[oai(nullable)]
    pub moved_to: Option<MovedJson>,
}

/// A session's new place (SPEC §14).
#[derive(Debug, Clone, Object, Serialize)]
pub struct MovedJson {
    #[oai(nullable)]
    pub country_code: Option<String>,
    #[oai(nullable)]
    pub country: Option<String>,
    #[oai(nullable)]
    pub city: Option<String>,
    /// When the session was first seen there (last activity written from there).
    #[serde(serialize_with = "crate::api::json::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Object, Serialize)]
pub struct AppUseJson {
    pub name: String,
    #[serde(serialize_with = "crate::api::json::rfc3339")]
    pub last_used_at: OffsetDateTime,
}

#[derive(Debug, Clone, Object, Serialize)]
pub struct SignedInJson {
    /// The application's name.
    pub name: String,
    pub client_id: String,
    /// Where its sign-out stands (SPEC §21).
    pub status: AppStatusJson,
    /// When it was told it is signed out (its logout token was taken) or, for an app
    /// without back-channel logout, when its grant ended; null while signed in or being
    /// told.
    #[oai(nullable)]
    #[serde(serialize_with = "crate::api::json::rfc3339_opt")]
    pub signed_out_at: Option<OffsetDateTime>,
}

/// `signed_in`: the app has the person. `signing_out`: its grant ended and its logout
/// token is being delivered. `signed_out`: it took the logout token. `logout_failed`: it
/// refused the logout token for 24 hours; its tokens are dead, so it loses the person at
/// its next check. `at_next_check`: no back-channel logout; its tokens are dead, so it
/// loses the person at its next token refresh or userinfo call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum, Serialize)]
#[oai(rename = "AppStatus", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AppStatusJson {
    SignedIn,
    SigningOut,
    SignedOut,
    LogoutFailed,
    AtNextCheck,
}

impl From<crate::model::AppStatus> for AppStatusJson {
    fn from(s: crate::model::AppStatus) -> Self {
        use crate::model::AppStatus as S;
        match s {
            S::SignedIn => AppStatusJson::SignedIn,
            S::SigningOut => AppStatusJson::SigningOut,
            S::SignedOut => AppStatusJson::SignedOut,
            S::LogoutFailed => AppStatusJson::LogoutFailed,
            S::AtNextCheck => AppStatusJson::AtNextCheck,
        }
    }
}

impl SessionJson {
    /// The listings write their sessions with [`write_session`] instead; this is the
    /// schema's value, for the sign-in's answer and the tests that hold the writer to it.
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
            device: DeviceJson::from(&s.device),
            ip: s.ip.clone(),
            location: LocationJson::from(&s.location),
            created_at: at(s.created_at),
            last_active_at: at(s.last_active_at),
            expires_at: at(s.expires_at),
            applications_used: app_uses(&s.applications_used),
            signed_in_to: signed_in(&s.signed_in_to),
            auth_methods: s
                .auth_methods
                .iter()
                .map(|m| m.as_str().to_string())
                .collect(),
            moved_to: s.moved_to.as_ref().map(|m| MovedJson {
                country_code: m.location.country_code.clone(),
                country: m.location.country.clone(),
                city: m.location.city.clone(),
                at: at(m.at),
            }),
        }
    }
}

/// Writes `s` as [`SessionJson`] serialises (the same fields, in the same order), straight
/// from the borrowed view: a listing writes fifty without building a value or a string
/// for each field. `label` is scratch space for the device's label, kept across a
/// listing's sessions.
pub fn write_session(out: &mut Vec<u8>, s: &SessionView<'_>, current: bool, label: &mut String) {
    use crate::api::json::{put, put_opt_str, put_str, put_time};
    out.reserve(SESSION_JSON_BYTES);
    out.extend_from_slice(b"{\"id\":");
    put_str(out, s.id);
    out.extend_from_slice(if current {
        b",\"current\":true,\"user\":{\"id\":"
    } else {
        b",\"current\":false,\"user\":{\"id\":"
    });
    put(out, &s.user_id);
    out.extend_from_slice(b",\"email\":");
    put_str(out, s.user_email);
    out.extend_from_slice(b"},\"account\":{\"id\":");
    put(out, &s.account_id);
    out.extend_from_slice(b",\"name\":");
    put_str(out, s.account_name);
    out.extend_from_slice(b"},\"application\":");
    put_str(out, s.application);
    let d = &s.device;
    out.extend_from_slice(b",\"device\":{\"category\":");
    put_str(out, d.category);
    out.extend_from_slice(b",\"browser\":");
    put_str(out, d.browser);
    out.extend_from_slice(b",\"browser_version\":");
    put_str(out, d.browser_version);
    out.extend_from_slice(b",\"os\":");
    put_str(out, d.os);
    out.extend_from_slice(b",\"os_version\":");
    put_str(out, d.os_version);
    out.extend_from_slice(b",\"label\":");
    label.clear();
    d.label_into(label);
    put_str(out, label);
    out.extend_from_slice(b"},\"ip\":");
    put_str(out, s.ip);
    out.extend_from_slice(b",\"location\":{");
    put_place(out, &s.place);
    out.extend_from_slice(b",\"network\":");
    put_opt_str(out, s.place.network);
    out.extend_from_slice(b"},\"created_at\":");
    put_time(out, s.created_at);
    out.extend_from_slice(b",\"last_active_at\":");
    put_time(out, s.last_active_at);
    out.extend_from_slice(b",\"expires_at\":");
    put_time(out, s.expires_at);
    out.extend_from_slice(b",\"applications_used\":");
    if s.applications_used.is_empty() {
        out.extend_from_slice(b"[]");
    } else {
        put(out, &app_uses(&s.applications_used));
    }
    out.extend_from_slice(b",\"signed_in_to\":");
    if s.signed_in_to.is_empty() {
        out.extend_from_slice(b"[]");
    } else {
        put(out, &signed_in(&s.signed_in_to));
    }
    out.extend_from_slice(b",\"auth_methods\":[");
    for (i, m) in s.auth_methods.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_str(out, m.as_str());
    }
    out.extend_from_slice(b"],\"moved_to\":");
    match &s.moved_to {
        None => out.extend_from_slice(b"null"),
        Some((to, at)) => {
            out.push(b'{');
            put_place(out, to);
            out.extend_from_slice(b",\"at\":");
            put_time(out, *at);
            out.push(b'}');
        }
    }
    out.push(b'}');
}

/// A place's `"country_code"`, `"country"` and `"city"` fields.
fn put_place(out: &mut Vec<u8>, p: &crate::model::PlaceRef<'_>) {
    use crate::api::json::put_opt_str;
    out.extend_from_slice(b"\"country_code\":");
    put_opt_str(out, p.country_code);
    out.extend_from_slice(b",\"country\":");
    put_opt_str(out, p.country);
    out.extend_from_slice(b",\"city\":");
    put_opt_str(out, p.city);
}

fn app_uses(uses: &[crate::model::AppUse]) -> Vec<AppUseJson> {
    uses.iter()
        .map(|u| AppUseJson {
            name: u.name.clone(),
            last_used_at: at(u.last_used_at),
        })
        .collect()
}

fn signed_in(apps: &[crate::model::SignedInApp]) -> Vec<SignedInJson> {
    apps.iter()
        .map(|a| SignedInJson {
            signed_out_at: a.at.map(at),
            status: a.status.into(),
            name: a.name.clone(),
            client_id: a.client_id.clone(),
        })
        .collect()
}

/// About what one session's JSON takes.
pub const SESSION_JSON_BYTES: usize = 680;

#[derive(Debug, Clone, Object, Serialize)]
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

#[derive(Debug, Clone, Object, Serialize)]
pub struct Me {
    pub user: MeUser,
    pub session: SessionJson,
}

/// [`Me`] as serde writes it, its (current) session by [`write_session`].
pub fn write_me(user: &MeUser, session: &SessionView<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + SESSION_JSON_BYTES);
    out.extend_from_slice(b"{\"user\":");
    crate::api::json::put(&mut out, user);
    out.extend_from_slice(b",\"session\":");
    write_session(&mut out, session, true, &mut String::new());
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;

    use super::*;
    use crate::api::sessions::{ListWriter, SessionList};
    use crate::domain::sessions::SessionSink;
    use crate::model::{AccountId, Device, Location, Role, SessionId, UserId};

    fn session(location: Location) -> Session {
        Session {
            pk: 7,
            id: SessionId("pub-id".into()),
            user_id: UserId(3),
            user_email: "ann@example.com".into(),
            account_id: AccountId(2),
            account_name: "Acme \"quoted\" · ünïcode".into(),
            application: "web".into(),
            device_id: "dev".into(),
            user_agent: "ua".into(),
            device: Device {
                category: "Desktop".into(),
                browser: "Firefox".into(),
                browser_version: "128.0".into(),
                os: "Linux".into(),
                os_version: String::new(),
            },
            ip: "203.0.113.9".into(),
            location,
            created_at: 1_700_000_000,
            last_active_at: 1_700_000_061,
            expires_at: 1_701_209_661,
            ended_at: None,
            end_reason: None,
            end_note: None,
            moved_to: Some(crate::model::Moved {
                location: Location {
                    country_code: Some("JP".into()),
                    country: Some("Japan".into()),
                    ..Location::default()
                },
                at: 1_700_000_050,
            }),
            applications_used: vec![crate::model::AppUse {
                name: "Grafana".into(),
                last_used_at: 1_700_000_030,
            }],
            auth_methods: crate::model::AuthMethods::PASSWORD,
            verified_at: 1_700_000_000,
            signed_in_to: vec![
                crate::model::SignedInApp {
                    name: "Wiki".into(),
                    client_id: "wiki".into(),
                    status: crate::model::AppStatus::SignedIn,
                    at: None,
                },
                crate::model::SignedInApp {
                    name: "Grafana".into(),
                    client_id: "grafana".into(),
                    status: crate::model::AppStatus::SignedOut,
                    at: Some(1_700_000_060),
                },
            ],
        }
    }

    /// [`crate::api::json::JsonOut`] answers with these types' serde JSON, and the
    /// OpenAPI document describes poem-openapi's rendering: both must give the same JSON.
    fn same<T: ToJSON + Serialize>(value: &T) {
        let serde = serde_json::to_vec(value).unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&serde).unwrap();
        let documented = value.to_json().unwrap();
        assert_eq!(ours, documented);
    }

    #[test]
    fn strings_that_need_escaping_are_written_as_serde_writes_them() {
        let mut s = session(Location {
            country_code: Some("\\\"".into()),
            country: Some("line\nbreak\ttab\u{1}\u{7f}\u{1f}".into()),
            city: None,
            ..Location::default()
        });
        s.device.browser = "emoji 🦀 and \"quotes\" and back\\slash".into();
        s.ip = "\u{0}".into();
        same(&SessionList {
            items: vec![SessionJson::new(&s, None)],
            next_cursor: Some("a\"b".into()),
        });
    }

    /// The listing writes each session with [`write_session`] instead of serde: byte for
    /// byte the same JSON, whatever the session holds.
    #[test]
    fn a_written_session_is_what_serde_writes() {
        let mut odd = session(Location {
            country_code: Some("\\\"".into()),
            country: Some("line\nbreak\ttab\u{1}\u{7f}\u{1f}".into()),
            city: None,
            network: Some("Office".into()),
            ..Location::default()
        });
        odd.device.browser = "emoji 🦀 and \"quotes\" and back\\slash".into();
        odd.device.os = "Unknown".into();
        odd.ip = "\u{0}".into();
        odd.auth_methods = crate::model::AuthMethods::of(&[
            crate::model::AuthMethod::Password,
            crate::model::AuthMethod::Totp,
        ]);
        let mut plain = session(Location::default());
        plain.moved_to = None;
        plain.applications_used.clear();
        plain.signed_in_to.clear();
        let mut label = String::new();
        for s in [&odd, &plain, &session(Location::default())] {
            for current in [Some(s.pk), None] {
                let mut ours = Vec::new();
                write_session(&mut ours, &s.view(), current.is_some(), &mut label);
                let serde = serde_json::to_vec(&SessionJson::new(s, current)).unwrap();
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(serde).unwrap()
                );
            }
        }
    }

    #[test]
    fn serde_output_matches_the_documented_schema() {
        let known = Location {
            country_code: Some("DE".into()),
            country: Some("Germany".into()),
            city: Some("Berlin".into()),
            network: Some("Office".into()),
            ..Location::default()
        };
        let unknown = Location::default();
        let items = vec![
            SessionJson::new(&session(known.clone()), Some(7)),
            SessionJson::new(&session(unknown), Some(8)),
        ];
        same(&SessionList {
            items: items.clone(),
            next_cursor: Some("next".into()),
        });
        same(&SessionList {
            items: vec![],
            next_cursor: None,
        });
        let principal = Principal {
            user_id: UserId(3),
            email: "ann@example.com".into(),
            name: "Ann".into(),
            role: Role::Admin,
            account_id: AccountId(2),
            account_name: "Acme".into(),
            email_verified: true,
        };
        let me = Me {
            user: MeUser::from(&principal),
            session: items[0].clone(),
        };
        same(&me);
        assert_eq!(
            write_me(&me.user, &session(known).view()),
            serde_json::to_vec(&me).unwrap()
        );
    }

    /// Writes `sessions` as the listing does, `current` marking one of them.
    fn written(sessions: &[crate::model::Session], current: Option<i64>) -> Vec<u8> {
        let mut w = ListWriter::new();
        for s in sessions {
            w.push(&s.view(), Some(s.pk) == current);
        }
        w.finish(None)
    }

    #[test]
    fn the_written_listing_is_serdes_with_the_current_session_first() {
        let sessions: Vec<_> = (1..=4)
            .map(|pk| {
                let mut s = session(Location::default());
                s.pk = pk;
                s.id = crate::model::SessionId(format!("s{pk}"));
                s
            })
            .collect();
        for current in [None, Some(1), Some(3), Some(4)] {
            let mut ordered: Vec<_> = sessions.iter().collect();
            if let Some(pos) = ordered.iter().position(|s| Some(s.pk) == current) {
                ordered[..=pos].rotate_right(1);
            }
            let expected = SessionList {
                items: ordered
                    .iter()
                    .map(|s| SessionJson::new(s, current))
                    .collect(),
                next_cursor: None,
            };
            assert_eq!(
                String::from_utf8(written(&sessions, current)).unwrap(),
                serde_json::to_string(&expected).unwrap(),
                "{current:?}"
            );
        }
        let mut w = ListWriter::in_order();
        for s in &sessions {
            w.push(&s.view(), s.pk == 3);
        }
        let expected = SessionList {
            items: sessions
                .iter()
                .map(|s| SessionJson::new(s, Some(3)))
                .collect(),
            next_cursor: Some("next".into()),
        };
        assert_eq!(
            String::from_utf8(w.finish(Some("next"))).unwrap(),
            serde_json::to_string(&expected).unwrap(),
            "a search's page keeps its order"
        );
        assert_eq!(
            written(&[], None),
            serde_json::to_vec(&SessionList {
                items: vec![],
                next_cursor: None
            })
            .unwrap()
        );
    }
}
