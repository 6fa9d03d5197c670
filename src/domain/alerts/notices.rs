//! The outbox of sign-in alerts and security notices: what an email says (frozen when
//! it is queued), queueing one in the caller's transaction under the hourly limit, and
//! the worker's view of what is due, sent or failed.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::db::alerts::NewAlert;
use crate::db::{self, DbError};
use crate::domain::alerts::classify::{Reasons, Verdict};
use crate::domain::audit::events::{self, NewEvent};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{Authed, EventType, Session, UserId};
use crate::state::AppState;

/// Alerts emailed per user per hour; more are kept as `suppressed`.
const MAX_PER_HOUR: i64 = 5;

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
    /// The reader's time zone (IANA), looked up when the email is built, not frozen:
    /// times are shown in it as well as in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
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
            time_zone: None,
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
            time_zone: None,
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
                time_zone: None,
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

/// The time zone of an email's reader, when they gave one: its times are shown in it.
pub async fn reader_time_zone(state: &AppState, user: UserId) -> Result<Option<String>> {
    Ok(state
        .db
        .run(move |c| db::users::find_time_zone(c, user))
        .await?)
}

/// One email of the outbox (a sign-in alert or a security notice).
pub use crate::db::alerts::AlertRow as OutboxRow;

/// The next email due to be sent, if any.
pub async fn next_due(state: &AppState) -> Result<Option<OutboxRow>> {
    let now = crate::clock::now();
    Ok(state.db.run(move |c| db::alerts::next_due(c, now)).await?)
}

/// The SMTP server accepted the email. A sign-in alert's sending is an event
/// (`alert.sent`); the other emails' is not (a security notice's cause has its own
/// event, and an invitation or a reset link is not an alert).
pub async fn mark_sent(state: &AppState, alert: &OutboxRow) -> Result<()> {
    let is_alert = Reasons::parse(&alert.reasons).any();
    let (id, user) = (alert.id, alert.user_id);
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

/// The whole row of the caller's session (device, place), for a notice's "from this
/// device": the session check reads only what deciding needs.
pub async fn current_session(state: &AppState, me: &Authed) -> Result<Session> {
    let pk = me.session.pk;
    state
        .db
        .run(move |c| db::sessions::find_by_pk(c, pk)?.ok_or(Error::Unauthenticated(None)))
        .await
}
