//! Sign-in alerts (SPEC §5): deciding *new device* / *new country*, queueing exactly one
//! email in the sign-in's own transaction, the hourly limit, and the signed single-use
//! "Not you? End this session" link.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::db::alerts::NewAlert;
use crate::db::{self, DbError};
use crate::domain::events::{self, NewEvent};
use crate::domain::model::{EndReason, EventType, Session, UserId};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::state::AppState;

/// Alerts emailed per user per hour; more are kept as `suppressed`.
pub const MAX_PER_HOUR: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reasons {
    pub new_device: bool,
    pub new_country: bool,
}

impl Reasons {
    pub fn any(self) -> bool {
        self.new_device || self.new_country
    }

    /// "a new device", "a new country" or "a new device and a new country".
    pub fn phrase(self) -> &'static str {
        match (self.new_device, self.new_country) {
            (true, true) => "a new device and a new country",
            (true, false) => "a new device",
            _ => "a new country",
        }
    }

    pub fn code(self) -> &'static str {
        match (self.new_device, self.new_country) {
            (true, true) => "new_device,new_country",
            (true, false) => "new_device",
            _ => "new_country",
        }
    }

    pub fn parse(code: &str) -> Self {
        Reasons {
            new_device: code.contains("new_device"),
            new_country: code.contains("new_country"),
        }
    }
}

/// Decides the reasons for a successful sign-in, inside its transaction and *before* the
/// sign-in itself is recorded. `device_is_new` is whether the device id was unknown for
/// the user. A first sign-in never alerts; an unknown country never counts as new.
pub fn classify(
    c: &Connection,
    user: UserId,
    device_is_new: bool,
    country: Option<&str>,
) -> Result<Reasons, DbError> {
    if !db::login_records::has_success(c, user)? {
        return Ok(Reasons {
            new_device: false,
            new_country: false,
        });
    }
    let new_country = match country {
        Some(cc) => !db::login_records::has_country(c, user, cc)?,
        None => false,
    };
    Ok(Reasons {
        new_device: device_is_new,
        new_country,
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
        }
    }
}

/// The `reasons` of a security notice: the password was changed. Notices go through
/// the same outbox as alerts but are never held back by the hourly limit and carry no
/// end-session link.
pub const PASSWORD_CHANGED: &str = "password_changed";

impl Details {
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
            now: details.at,
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
    reasons: Reasons,
    session: &Session,
    to_name: &str,
    mail_enabled: bool,
) -> Result<&'static str, DbError> {
    let now = session.created_at;
    let status = if !mail_enabled {
        "skipped"
    } else if db::alerts::count_recent_mailed(c, session.user_id, now - 3600)? >= MAX_PER_HOUR {
        "suppressed"
    } else {
        "pending"
    };
    let details = serde_json::to_string(&Details::new(session, to_name))
        .map_err(|e| DbError::Refused(e.to_string()))?;
    let message_id = format!("<alert.{}@doorman>", tokens::new_public_id());
    let id = db::alerts::insert(
        c,
        &NewAlert {
            user_id: session.user_id,
            session_id: Some(session.pk),
            reasons: reasons.code(),
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
            reasons = reasons.code(),
            "email is off (no mail.smtp_url); alert kept as skipped"
        );
    }
    Ok(status)
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], alert: i64, expires: i64) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(b"doorman-end-session\0");
    m.update(&alert.to_be_bytes());
    m.update(&expires.to_be_bytes());
    Some(m)
}

/// The token of an alert's end-session link: alert id and expiry, signed.
pub fn sign_link(key: &[u8], alert: i64, expires: i64) -> String {
    let mut bytes = Vec::with_capacity(48);
    bytes.extend_from_slice(&alert.to_be_bytes());
    bytes.extend_from_slice(&expires.to_be_bytes());
    if let Some(m) = mac(key, alert, expires) {
        bytes.extend_from_slice(&m.finalize().into_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks a link token's signature and expiry; returns the alert id.
pub fn verify_link(key: &[u8], token: &str, now: i64) -> Option<i64> {
    if token.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != 48 {
        return None;
    }
    let alert = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
    let expires = i64::from_be_bytes(bytes[8..16].try_into().ok()?);
    mac(key, alert, expires)?.verify_slice(&bytes[16..]).ok()?;
    (expires > now).then_some(alert)
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
    let alert_id = verify_link(&state.link_key, token, now).ok_or(Error::NotFound)?;
    let found = state
        .db
        .run(move |c| -> Result<_> {
            let Some(alert) = db::alerts::find_by_id(c, alert_id)? else {
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
    let alert_id = verify_link(&state.link_key, token, now).ok_or(Error::NotFound)?;
    state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction()?;
            let Some(alert) = db::alerts::find_by_id(&tx, alert_id)? else {
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
        };
        assert_eq!(both.phrase(), "a new device and a new country");
        assert_eq!(Reasons::parse(both.code()), both);
        let dev = Reasons {
            new_device: true,
            new_country: false,
        };
        assert_eq!(dev.phrase(), "a new device");
    }

    #[test]
    fn links_are_signed_and_expire() {
        let key = [7u8; 32];
        let t = sign_link(&key, 42, 1000);
        assert_eq!(verify_link(&key, &t, 999), Some(42));
        assert_eq!(verify_link(&key, &t, 1000), None, "expired");
        assert_eq!(verify_link(&[8u8; 32], &t, 999), None, "other key");
        let mut forged = URL_SAFE_NO_PAD.decode(&t).unwrap();
        forged[7] = 43;
        assert_eq!(
            verify_link(&key, &URL_SAFE_NO_PAD.encode(forged), 999),
            None
        );
        assert_eq!(verify_link(&key, "garbage!", 0), None);
    }
}
