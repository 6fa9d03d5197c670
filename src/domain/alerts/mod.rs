//! Sign-in alerts (SPEC §5): deciding *new device* / *new country*, queueing exactly one
//! email in the sign-in's own transaction, the hourly limit, and the signed single-use
//! "Not you? End this session" link.

pub mod links;
pub mod moves;
pub mod prefs;
pub mod responses;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::db::alerts::NewAlert;
use crate::db::{self, DbError};
use crate::domain::audit::events::{self, NewEvent};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{AlertPrefs, EndReason, EventType, Location, Session, UserId};
use crate::state::AppState;

/// Alerts emailed per user per hour; more are kept as `suppressed`.
pub const MAX_PER_HOUR: i64 = 5;

/// Why a sign-in alert is sent; several combine into one email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reasons {
    pub new_device: bool,
    pub new_country: bool,
    /// An impossible journey from the previous sign-in (SPEC §14).
    pub travel: bool,
    /// A live session used from another country (its own email).
    pub moved: bool,
}

impl Reasons {
    fn parts(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        [
            (self.new_device, "new_device", "a new device"),
            (self.new_country, "new_country", "a new country"),
            (self.travel, "travel", "an impossible journey"),
            (
                self.moved,
                "moved",
                "your session moving to another country",
            ),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, code, phrase)| (code, phrase))
    }

    pub fn any(self) -> bool {
        self.parts().next().is_some()
    }

    /// "a new device", "a new device and a new country", "a new device, a new country
    /// and an impossible journey".
    pub fn phrase(self) -> String {
        let words: Vec<&str> = self.parts().map(|(_, p)| p).collect();
        match words.split_last() {
            None => String::new(),
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }

    /// "new_device,new_country": as stored in the outbox.
    pub fn code(self) -> String {
        self.parts().map(|(c, _)| c).collect::<Vec<_>>().join(",")
    }

    pub fn parse(code: &str) -> Self {
        let has = |c: &str| code.split(',').any(|p| p == c);
        Reasons {
            new_device: has("new_device"),
            new_country: has("new_country"),
            travel: has("travel"),
            moved: has("moved"),
        }
    }

    /// Only the reasons the person chose to hear about.
    pub fn allowed_by(self, p: AlertPrefs) -> Self {
        Reasons {
            new_device: self.new_device && p.new_device,
            new_country: self.new_country && p.new_country,
            travel: self.travel && p.travel,
            moved: self.moved && p.moved,
        }
    }
}

/// `alerts.travel_min_km` and `alerts.travel_max_kmh`.
#[derive(Debug, Clone, Copy)]
pub struct TravelLimits {
    pub min_km: f64,
    pub max_kmh: f64,
}

/// What a successful sign-in brings to the alert decision.
pub struct SignInFacts<'a> {
    /// The device id was unknown for the user.
    pub device_is_new: bool,
    pub location: &'a Location,
    pub at: i64,
    /// From a trusted network with `alerts = false`.
    pub silent: bool,
}

/// The decision for one sign-in: the reasons, and the journey's words when one is
/// impossible ("from Budapest, Hungary to Tokyo, Japan in 2 hours").
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub reasons: Reasons,
    pub journey: Option<String>,
}

/// Decides the reasons for a successful sign-in, inside its transaction and *before* the
/// sign-in itself is recorded (it compares with earlier ones). A first sign-in never
/// alerts; an unknown country never counts as new; a sign-in from a silent trusted
/// network never alerts; reasons the person turned off are dropped (unless their
/// account locks them on).
pub fn classify(
    c: &Connection,
    user: UserId,
    facts: &SignInFacts<'_>,
    limits: TravelLimits,
) -> Result<Verdict, DbError> {
    if facts.silent || !db::login_records::has_success(c, user)? {
        return Ok(Verdict::default());
    }
    let new_country = match facts.location.country_code.as_deref() {
        Some(cc) => !db::login_records::has_country(c, user, cc)?,
        None => false,
    };
    let journey = match db::login_records::find_last_success(c, user)? {
        Some((then, from)) => impossible_journey(&from, then, facts.location, facts.at, limits),
        None => None,
    };
    let reasons = Reasons {
        new_device: facts.device_is_new,
        new_country,
        travel: journey.is_some(),
        moved: false,
    };
    let reasons = reasons.allowed_by(preferences_in(c, user)?);
    Ok(Verdict {
        journey: journey.filter(|_| reasons.travel),
        reasons,
    })
}

/// The preferences that apply: the person's own, or all on when their account locks them.
fn preferences_in(c: &Connection, user: UserId) -> Result<AlertPrefs, DbError> {
    let (prefs, locked) = db::alert_prefs::find(c, user)?;
    Ok(if locked { AlertPrefs::default() } else { prefs })
}

/// Both places known to the city, further apart than `min_km` (less what the database
/// says each point may be off by), and faster than `max_kmh` between the two times.
pub fn impossible_journey(
    from: &Location,
    from_at: i64,
    to: &Location,
    to_at: i64,
    limits: TravelLimits,
) -> Option<String> {
    let (a, b) = (from.city_level()?, to.city_level()?);
    let slack = f64::from(a.accuracy_km.unwrap_or(0)) + f64::from(b.accuracy_km.unwrap_or(0));
    let km = (a.distance_km(&b) - slack).max(0.0);
    if km <= limits.min_km {
        return None;
    }
    // Two sign-ins in the same second are a minute apart for the arithmetic.
    let secs = (to_at - from_at).max(60);
    let kmh = km / (secs as f64 / 3600.0);
    (kmh > limits.max_kmh).then(|| {
        format!(
            "from {} to {} in {}",
            from.place(),
            to.place(),
            crate::clock::span(secs)
        )
    })
}

/// What the email says, frozen when the alert is queued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Details {
    pub to_email: String,
    pub to_name: String,
    pub at: i64,
    pub device: String,
    pub browser: String,
    pub os: String,
    pub ip: String,
    pub location: String,
    pub session_public_id: String,
    pub session_expires_at: i64,
    /// The impossible journey, in words, when that is a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey: Option<String>,
    /// For a moved session: where it is now used from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// For a report to admins: the person who reported (their email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
}

impl Details {
    pub fn new(session: &Session, to_name: &str) -> Self {
        let d = &session.device;
        let join = |name: &str, version: &str| {
            if version.is_empty() {
                name.to_string()
            } else {
                format!("{name} {version}")
            }
        };
        Details {
            to_email: session.user_email.clone(),
            to_name: to_name.to_string(),
            at: session.created_at,
            device: d.category.clone(),
            browser: join(&d.browser, &d.browser_version),
            os: join(&d.os, &d.os_version),
            ip: session.ip.clone(),
            location: session.location.label(),
            session_public_id: session.id.0.clone(),
            session_expires_at: session.expires_at,
            journey: None,
            moved_to: None,
            about: None,
        }
    }
}

/// The `reasons` of a security notice: the password was changed. Notices go through
/// the same outbox as alerts but are never held back by the hourly limit and carry no
/// end-session link.
pub const PASSWORD_CHANGED: &str = "password_changed";
/// The notices of second factors (SPEC §12), like [`PASSWORD_CHANGED`].
pub const SECOND_FACTOR_ADDED: &str = "second_factor_added";
pub const SECOND_FACTOR_REMOVED: &str = "second_factor_removed";
pub const RECOVERY_CODE_USED: &str = "recovery_code_used";
pub const SECOND_FACTORS_RESET: &str = "second_factors_reset";
/// The notice that second steps failed in a row after a correct password (SPEC §19):
/// someone knows the person's password. At most one an hour.
pub const PASSWORD_KNOWN: &str = "password_known";

impl Details {
    /// A notice about a request that has no session (yet): a sign-in's second step.
    pub fn of_request(
        email: &str,
        name: &str,
        at: i64,
        device: &crate::model::Device,
        ip: &str,
        location: &crate::model::Location,
    ) -> Self {
        let join = |name: &str, version: &str| {
            if version.is_empty() {
                name.to_string()
            } else {
                format!("{name} {version}")
            }
        };
        Details {
            to_email: email.to_string(),
            to_name: name.to_string(),
            at,
            device: device.category.clone(),
            browser: join(&device.browser, &device.browser_version),
            os: join(&device.os, &device.os_version),
            ip: ip.to_string(),
            location: location.label(),
            session_public_id: String::new(),
            session_expires_at: 0,
            journey: None,
            moved_to: None,
            about: None,
        }
    }

    /// What a security notice says: who, when, and from which session (none for a
    /// change made on the command line).
    pub fn notice(email: &str, name: &str, at: i64, from: Option<&Session>) -> Self {
        match from {
            Some(s) => Details {
                at,
                ..Details::new(s, name)
            },
            None => Details {
                to_email: email.to_string(),
                to_name: name.to_string(),
                at,
                device: "Command line".into(),
                browser: String::new(),
                os: String::new(),
                ip: String::new(),
                location: String::new(),
                session_public_id: String::new(),
                session_expires_at: 0,
                journey: None,
                moved_to: None,
                about: None,
            },
        }
    }
}

/// Queues a security notice in the caller's transaction: `pending`, or `skipped` when
/// email is off. Returns the status used.
pub fn enqueue_notice(
    c: &Connection,
    kind: &'static str,
    user: UserId,
    details: &Details,
    mail_enabled: bool,
) -> Result<&'static str, DbError> {
    enqueue_message(c, kind, user, details, details.at, mail_enabled)
}

/// Queues an email that is not a sign-in alert (a notice, an invitation, a reset
/// link): never held back by the hourly limit, no end-session link. `details` is what
/// the worker builds the email from.
pub fn enqueue_message(
    c: &Connection,
    kind: &'static str,
    user: UserId,
    details: &impl Serialize,
    at: i64,
    mail_enabled: bool,
) -> Result<&'static str, DbError> {
    let status = if mail_enabled { "pending" } else { "skipped" };
    let json = serde_json::to_string(details).map_err(|e| DbError::Refused(e.to_string()))?;
    let message_id = format!("<notice.{}@doorman>", tokens::new_public_id());
    db::alerts::insert(
        c,
        &NewAlert {
            user_id: user,
            session_id: None,
            reasons: kind,
            status,
            now: at,
            message_id: &message_id,
            details: &json,
        },
    )?;
    Ok(status)
}

/// Queues the alert in the caller's transaction: `skipped` when email is off,
/// `suppressed` past the hourly limit, else `pending` (reporting how many were held back).
/// Returns the status used.
pub fn enqueue(
    c: &Connection,
    verdict: &Verdict,
    session: &Session,
    to_name: &str,
    mail_enabled: bool,
) -> Result<&'static str, DbError> {
    let details = Details {
        journey: verdict.journey.clone(),
        ..Details::new(session, to_name)
    };
    enqueue_details(
        c,
        verdict.reasons,
        session,
        &details,
        session.created_at,
        mail_enabled,
    )
}

/// [`enqueue`] with the email's details given.
pub fn enqueue_details(
    c: &Connection,
    reasons: Reasons,
    session: &Session,
    details: &Details,
    now: i64,
    mail_enabled: bool,
) -> Result<&'static str, DbError> {
    let status = if !mail_enabled {
        "skipped"
    } else if db::alerts::count_recent_mailed(c, session.user_id, now - 3600)? >= MAX_PER_HOUR {
        "suppressed"
    } else {
        "pending"
    };
    let details = serde_json::to_string(details).map_err(|e| DbError::Refused(e.to_string()))?;
    let code = reasons.code();
    let message_id = format!("<alert.{}@doorman>", tokens::new_public_id());
    let id = db::alerts::insert(
        c,
        &NewAlert {
            user_id: session.user_id,
            session_id: Some(session.pk),
            reasons: &code,
            status,
            now,
            message_id: &message_id,
            details: &details,
        },
    )?;
    if status == "pending" {
        db::alerts::report_suppressed(c, session.user_id, id)?;
    }
    let kind = if status == "suppressed" {
        EventType::AlertSuppressed
    } else {
        EventType::AlertQueued
    };
    events::record(
        c,
        NewEvent::new(kind, now)
            .session(session)
            .detail("alert_id", id)
            .detail("reasons", reasons.code())
            .detail("status", status),
    )?;
    if status == "skipped" {
        tracing::info!(
            alert = id,
            reasons = %code,
            "email is off (no mail.smtp_url); alert kept as skipped"
        );
    }
    Ok(status)
}

type HmacSha256 = Hmac<Sha256>;

/// What an alert link does; each is signed for its purpose alone, so one link's token
/// never works as another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// "Not you? End this session" (SPEC §5).
    End,
    /// "Yes, it was me" (SPEC §14).
    Confirm,
    /// "No, secure my account" (SPEC §14).
    Secure,
}

impl LinkPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            LinkPurpose::End => b"doorman-end-session\0",
            LinkPurpose::Confirm => b"doorman-confirm-sign-in\0",
            LinkPurpose::Secure => b"doorman-secure-account\0",
        }
    }
}

fn mac(key: &[u8], purpose: LinkPurpose, link: AlertLink, expires: i64) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(purpose.label());
    m.update(&link.alert.to_be_bytes());
    m.update(&link.user.0.to_be_bytes());
    m.update(&expires.to_be_bytes());
    Some(m)
}

/// What an alert link names: the alert, and the person it was sent to. Both are signed
/// together (SPEC §19), so a link acts only while its alert belongs to that person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLink {
    pub alert: i64,
    pub user: UserId,
}

impl AlertLink {
    /// The alert this link names, if it still belongs to the person the link was sent
    /// to; `None` otherwise, and the link does nothing.
    pub fn find(self, c: &Connection) -> Result<Option<db::alerts::AlertRow>, DbError> {
        Ok(db::alerts::find_by_id(c, self.alert)?.filter(|a| a.user_id == self.user))
    }
}

/// The token of an alert's end-session link: alert, person and expiry, signed.
pub fn sign_link(key: &[u8], link: AlertLink, expires: i64) -> String {
    sign_link_for(key, LinkPurpose::End, link, expires)
}

/// The token of one of an alert's links.
pub fn sign_link_for(key: &[u8], purpose: LinkPurpose, link: AlertLink, expires: i64) -> String {
    let mut bytes = Vec::with_capacity(LINK_BYTES);
    bytes.extend_from_slice(&link.alert.to_be_bytes());
    bytes.extend_from_slice(&link.user.0.to_be_bytes());
    bytes.extend_from_slice(&expires.to_be_bytes());
    if let Some(m) = mac(key, purpose, link, expires) {
        bytes.extend_from_slice(&m.finalize().into_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Alert id, user id and expiry (8 bytes each), then the HMAC-SHA256. Links made before
/// the user id was signed (48 bytes) are no longer accepted: nothing in them says whose
/// alert they were for.
const LINK_BYTES: usize = 56;

/// Checks an end-session link token's signature and expiry.
pub fn verify_link(key: &[u8], token: &str, now: i64) -> Option<AlertLink> {
    verify_link_for(key, LinkPurpose::End, token, now)
}

/// Checks a link token for `purpose`; returns what it names.
pub fn verify_link_for(
    key: &[u8],
    purpose: LinkPurpose,
    token: &str,
    now: i64,
) -> Option<AlertLink> {
    if token.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != LINK_BYTES {
        return None;
    }
    let word = |i: usize| -> Option<i64> {
        Some(i64::from_be_bytes(
            bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let link = AlertLink {
        alert: word(0)?,
        user: UserId(word(1)?),
    };
    let expires = word(2)?;
    mac(key, purpose, link, expires)?
        .verify_slice(&bytes[24..])
        .ok()?;
    (expires > now).then_some(link)
}

/// What the link page shows before the POST.
pub struct LinkTarget {
    pub details: Details,
    pub session_active: bool,
    pub used: bool,
}

/// Resolves a link token (GET: changes nothing).
pub async fn link_target(state: &AppState, token: &str) -> Result<LinkTarget> {
    let now = crate::clock::now();
    let link = verify_link(&state.link_key, token, now).ok_or(Error::NotFound)?;
    let alert_id = link.alert;
    let found = state
        .db
        .run(move |c| -> Result<_> {
            let Some(alert) = link.find(c)? else {
                return Ok(None);
            };
            let active = match alert.session_id {
                Some(_) => {
                    let details: Option<Details> = serde_json::from_str(&alert.details).ok();
                    match details {
                        Some(d) => db::sessions::find_by_public_id(c, &d.session_public_id)?
                            .is_some_and(|s| s.is_active(now)),
                        None => false,
                    }
                }
                None => false,
            };
            Ok(Some((alert, active)))
        })
        .await?;
    let (alert, session_active) = found.ok_or(Error::NotFound)?;
    let details: Details = serde_json::from_str(&alert.details)
        .map_err(|e| Error::Internal(format!("alert {alert_id} details: {e}")))?;
    Ok(LinkTarget {
        details,
        session_active,
        used: alert.link_used_at.is_some(),
    })
}

/// Uses the link: ends the session it names, once. Returns false when the link was used
/// before or the session had already ended.
pub async fn end_via_link(state: &AppState, token: &str) -> Result<bool> {
    let now = crate::clock::now();
    let link = verify_link(&state.link_key, token, now).ok_or(Error::NotFound)?;
    let alert_id = link.alert;
    state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction()?;
            let Some(alert) = link.find(&tx)? else {
                return Err(Error::NotFound);
            };
            if !db::alerts::update_link_used(&tx, alert_id, now)? {
                return Ok(false);
            }
            let details: Option<Details> = serde_json::from_str(&alert.details).ok();
            let ended = match details {
                Some(d) => match db::sessions::find_by_public_id(&tx, &d.session_public_id)? {
                    Some(s) if s.is_active(now) => {
                        let ended = db::sessions::end(
                            &tx,
                            s.pk,
                            now,
                            Some(alert.user_id),
                            EndReason::Terminated,
                        )?;
                        events::record_ended(&tx, ended.as_slice(), now)?;
                        ended.is_some()
                    }
                    _ => false,
                },
                None => false,
            };
            tx.commit()?;
            if ended {
                tracing::info!(alert = alert_id, "session ended from an alert email link");
            }
            Ok(ended)
        })
        .await
}

/// One email of the outbox (a sign-in alert or a security notice).
pub use crate::db::alerts::AlertRow as OutboxRow;

/// The next email due to be sent, if any.
pub async fn next_due(state: &AppState) -> Result<Option<OutboxRow>> {
    let now = crate::clock::now();
    Ok(state.db.run(move |c| db::alerts::next_due(c, now)).await?)
}

/// The SMTP server accepted the email. A sign-in alert's sending is an event
/// (`alert.sent`); a security notice's is not (its cause has its own).
pub async fn mark_sent(state: &AppState, alert: &OutboxRow) -> Result<()> {
    let (id, user, is_alert) = (alert.id, alert.user_id, alert.reasons != PASSWORD_CHANGED);
    let session_pk = alert.session_id;
    state
        .db
        .run(move |c| -> std::result::Result<(), DbError> {
            let now = crate::clock::now();
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            db::alerts::update_sent(&tx, id, now)?;
            if is_alert && let Some(u) = db::users::find_by_id(&tx, user)? {
                let mut e = NewEvent::new(EventType::AlertSent, now)
                    .user(u.id, u.account_id)
                    .detail("alert_id", id);
                if let Some(pk) = session_pk
                    && let Some(s) = db::sessions::find_by_pk(&tx, pk)?
                {
                    e = e.session(&s);
                }
                events::record(&tx, e)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// An attempt failed: retried after `retry_in` seconds, or given up (`failed`).
pub async fn mark_failed(
    state: &AppState,
    id: i64,
    retry_in: i64,
    error: String,
    give_up: bool,
) -> Result<()> {
    let next = crate::clock::now() + retry_in;
    state
        .db
        .run(move |c| db::alerts::update_failed_attempt(c, id, next, &error, give_up))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases() {
        let both = Reasons {
            new_device: true,
            new_country: true,
            ..Reasons::default()
        };
        assert_eq!(both.phrase(), "a new device and a new country");
        assert_eq!(Reasons::parse(&both.code()), both);
        let three = Reasons {
            travel: true,
            ..both
        };
        assert_eq!(
            three.phrase(),
            "a new device, a new country and an impossible journey"
        );
        assert_eq!(Reasons::parse(&three.code()), three);
        let dev = Reasons {
            new_device: true,
            ..Reasons::default()
        };
        assert_eq!(dev.phrase(), "a new device");
        let off = AlertPrefs {
            new_country: false,
            ..AlertPrefs::default()
        };
        assert_eq!(three.allowed_by(off).code(), "new_device,travel");
    }

    fn at(city: &str, country: &str, latitude: f64, longitude: f64) -> Location {
        Location {
            country_code: Some("XX".into()),
            country: Some(country.into()),
            city: Some(city.into()),
            coords: Some(crate::model::Coords {
                latitude,
                longitude,
                accuracy_km: None,
            }),
            network: None,
        }
    }

    #[test]
    fn journeys() {
        let limits = TravelLimits {
            min_km: 500.0,
            max_kmh: 1000.0,
        };
        let budapest = at("Budapest", "Hungary", 47.50, 19.04);
        let tokyo = at("Tokyo", "Japan", 35.68, 139.69);
        let vienna = at("Vienna", "Austria", 48.21, 16.37);
        assert_eq!(
            impossible_journey(&budapest, 0, &tokyo, 7200, limits).as_deref(),
            Some("from Budapest, Hungary to Tokyo, Japan in 2 hours")
        );
        assert_eq!(
            impossible_journey(&budapest, 0, &tokyo, 86_400, limits),
            None,
            "a day"
        );
        assert_eq!(
            impossible_journey(&budapest, 0, &vienna, 60, limits),
            None,
            "near"
        );
        let country_only = Location {
            city: None,
            ..tokyo.clone()
        };
        assert_eq!(
            impossible_journey(&budapest, 0, &country_only, 60, limits),
            None
        );
    }

    #[test]
    fn links_are_signed_and_expire() {
        let key = [7u8; 32];
        let link = AlertLink {
            alert: 42,
            user: UserId(9),
        };
        let t = sign_link(&key, link, 1000);
        assert_eq!(verify_link(&key, &t, 999), Some(link));
        assert_eq!(verify_link(&key, &t, 1000), None, "expired");
        assert_eq!(verify_link(&[8u8; 32], &t, 999), None, "other key");
        let mut forged = URL_SAFE_NO_PAD.decode(&t).unwrap();
        forged[7] = 43;
        assert_eq!(
            verify_link(&key, &URL_SAFE_NO_PAD.encode(&forged), 999),
            None
        );
        let mut other_user = URL_SAFE_NO_PAD.decode(&t).unwrap();
        other_user[15] = 10;
        assert_eq!(
            verify_link(&key, &URL_SAFE_NO_PAD.encode(other_user), 999),
            None,
            "the person is signed with the alert"
        );
        assert_eq!(verify_link(&key, "garbage!", 0), None);
        let confirm = sign_link_for(&key, LinkPurpose::Confirm, link, 1000);
        assert_eq!(
            verify_link_for(&key, LinkPurpose::Confirm, &confirm, 999),
            Some(link)
        );
        assert_eq!(verify_link(&key, &confirm, 999), None, "one purpose only");
        assert_eq!(
            verify_link_for(&key, LinkPurpose::Secure, &confirm, 999),
            None
        );
    }

    #[test]
    fn links_from_before_the_user_was_signed_do_nothing() {
        // The old layout: alert id, expiry, HMAC over purpose, alert and expiry.
        let key = [7u8; 32];
        let mut m = HmacSha256::new_from_slice(&key).unwrap();
        m.update(LinkPurpose::End.label());
        m.update(&42i64.to_be_bytes());
        m.update(&1000i64.to_be_bytes());
        let mut bytes = 42i64.to_be_bytes().to_vec();
        bytes.extend_from_slice(&1000i64.to_be_bytes());
        bytes.extend_from_slice(&m.finalize().into_bytes());
        assert_eq!(verify_link(&key, &URL_SAFE_NO_PAD.encode(bytes), 999), None);
    }
}
