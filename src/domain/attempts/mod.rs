//! Attempts to prove who one is (a password, a code, a passkey) and what a refused one
//! leaves: each takes a slot of the sign-in limits (`limits`), and a failure leaves a
//! login record and a `login.failed` event. Sign-in, the second step, step-up and the
//! password checks of a signed-in person all count here.

pub mod challenges;
pub mod limits;

use crate::db::login_records::NewLoginRecord;
use crate::db::{self, DbError};
use crate::domain::attempts::limits::{Reservation, Subject};
use crate::domain::audit::events::{self, NewEvent, Origin};
use crate::domain::place::locate;
use crate::error::{Error, Result};
use crate::model::{AccountId, Authed, ClientInfo, Device, EventType, Location, UserId};
use crate::state::AppState;

/// The longest email an attempt keeps: the field is attacker-controlled.
pub(crate) const MAX_EMAIL: usize = 254;

/// The user with their account, as [`reserve`] and [`record_failure`] take them, for the
/// steps that know only the user.
pub(crate) async fn with_account(
    state: &AppState,
    user: Option<UserId>,
) -> Option<(UserId, AccountId)> {
    let id = user?;
    match state.db.run(move |c| db::users::find_by_id(c, id)).await {
        Ok(found) => found.map(|u| (u.id, u.account_id)),
        Err(err) => {
            tracing::warn!(%err, "could not read the user of a sign-in step");
            None
        }
    }
}

/// Takes a slot of the sign-in limits for this attempt, or refuses it (recording at most
/// one refusal per email and address a minute, as `user`'s when known).
pub(crate) async fn reserve(
    state: &AppState,
    who: &Subject<'_>,
    user: Option<(UserId, AccountId)>,
    attempt: &Attempt,
    now: i64,
) -> Result<Reservation> {
    match state.limiter.reserve(who, now).await {
        Ok(r) => Ok(r),
        Err(wait) => {
            if state.limiter.record_refusal(who.email, who.ip, now) {
                record_failure(state, attempt.clone(), user, "rate_limited").await;
            }
            Err(Error::RateLimited {
                retry_after_secs: wait,
            })
        }
    }
}

/// Checks a signed-in person's current password again (a password change, and later an
/// email change or a step-up), under the same limits as sign-in: failures count toward
/// the email's and the IP's budget and leave a login record.
pub(crate) async fn check_current_password(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    password: String,
) -> Result<()> {
    let now = crate::clock::now();
    let email = me.principal.email.clone();
    let subject = Subject {
        email: &email,
        ip: client.ip,
        known_device: None,
    };
    let attempt = {
        let device = crate::ua::parse(&client.user_agent);
        let location = locate(state, client.ip);
        Attempt::new(
            &email,
            &location,
            client,
            &device,
            Some(&me.session.device_id),
        )
    };
    let user = me.principal.user_id;
    let who = Some((user, me.principal.account_id));
    let reservation = reserve(state, &subject, who, &attempt, now).await?;
    let stored = state
        .db
        .run(move |c| db::users::password_hash(c, user))
        .await?;
    if !check_password(state, password, stored).await {
        reservation.failed();
        record_failure(state, attempt, who, "wrong_current_password").await;
        return Err(Error::invalid(
            "wrong_password",
            "The current password is not right.",
        ));
    }
    reservation.succeeded();
    Ok(())
}

/// Verifies with the server's hasher (see [`Hasher::verify`]) and records how long the
/// hash took in its metrics (`doorman_password_check_seconds`).
pub(crate) async fn check_password(
    state: &AppState,
    password: String,
    hash: Option<String>,
) -> bool {
    let (ok, took) = state.hasher.verify(password, hash).await;
    state.metrics.observe_password_check(took);
    ok
}

/// The parts of a failed attempt worth keeping.
#[derive(Clone)]
pub(crate) struct Attempt {
    email: String,
    ip: String,
    location: Location,
    device_id: Option<String>,
    user_agent: String,
    device: Device,
}

impl Attempt {
    pub(crate) fn new(
        email: &str,
        location: &Location,
        client: &ClientInfo,
        device: &Device,
        device_id: Option<&str>,
    ) -> Self {
        Attempt {
            // Bounded: the email field is attacker-controlled.
            email: email.chars().take(MAX_EMAIL).collect(),
            ip: client.ip.to_string(),
            location: location.clone(),
            device_id: device_id.map(str::to_string),
            user_agent: client.user_agent.clone(),
            device: device.clone(),
        }
    }
}

/// Records a refused attempt: its login record and its `login.failed` event, in one
/// transaction. `user` is the user the email names, with their account, when known.
pub(crate) async fn record_failure(
    state: &AppState,
    a: Attempt,
    user: Option<(UserId, AccountId)>,
    reason: &'static str,
) {
    let now = crate::clock::now();
    let result = state
        .db
        .run(move |c| -> std::result::Result<(), DbError> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            db::login_records::insert(
                &tx,
                &NewLoginRecord {
                    at: now,
                    email: &a.email,
                    user_id: user.map(|u| u.0),
                    ip: &a.ip,
                    location: &a.location,
                    device_id: a.device_id.as_deref(),
                    user_agent: &a.user_agent,
                    device: &a.device,
                    success: false,
                    reason,
                },
            )?;
            let mut event = NewEvent::new(EventType::LoginFailed, now)
                .origin(Origin {
                    ip: a.ip.clone(),
                    location: a.location.clone(),
                    device: a.device.clone(),
                })
                .detail("email", a.email.as_str())
                .detail("reason", reason);
            if let Some((id, account)) = user {
                event = event.user(id, account);
            }
            events::record(&tx, event)?;
            tx.commit()?;
            Ok(())
        })
        .await;
    if let Err(err) = result {
        // The refusal stands either way; losing a history row must not turn it into a 500.
        tracing::warn!(%err, "could not record failed sign-in");
    }
    tracing::info!(reason, "sign-in refused");
}
