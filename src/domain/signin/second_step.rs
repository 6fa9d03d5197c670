//! The sign-in's second step (SPEC §12): after a correct password, a person with a
//! second factor gets a challenge (5 minutes) instead of a session; a person who must
//! have one and has none gets an enrolment challenge instead. No session row exists
//! until the step succeeds. Browsers hold the challenge in an HttpOnly cookie, which
//! binds it to that browser; the API hands it to the script.

use std::net::IpAddr;

use rusqlite::Connection;

use crate::db::challenges::{ChallengeRow, NewChallenge};
use crate::db::{self, DbError};
use crate::domain::alerts::{self, Details, PASSWORD_KNOWN};
use crate::domain::attempts::challenges::{Found, Holder, find_for, methods_of, store};
use crate::domain::factors::codes::{Prover, check_code};
use crate::domain::factors::manage::{self, TotpEnrolment};
use crate::domain::factors::policy;
use crate::domain::place::locate;
use crate::domain::signin::issue::{SessionContext, SignedIn, store_session};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{AuthMethod, AuthMethods, ClientInfo, User, UserId};
use crate::state::AppState;

/// How long a second step may take.
pub const SECOND_STEP_TTL: i64 = 5 * 60;
/// How long an enrolment may take: scanning a QR code with a phone takes longer.
pub const ENROL_TTL: i64 = 15 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SecondFactor,
    Enrol,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::SecondFactor => "second_factor",
            Purpose::Enrol => "enrol",
        }
    }
}

/// A sign-in waiting for its second step or its enrolment.
pub struct Pending {
    /// The challenge's secret: a cookie for browsers, the API's `challenge`.
    pub challenge: String,
    /// What the second step accepts: `totp`, `recovery_code`, `passkey`.
    pub methods: Vec<&'static str>,
    pub device_id: String,
}

/// What follows a correct password for `user`, read in the sign-in's own lookup.
pub(crate) fn after_password(
    state: &AppState,
    c: &Connection,
    user: UserId,
) -> Result<Option<Purpose>, DbError> {
    let has_factor = db::second_factors::list_for_user(c, user)?
        .iter()
        .any(|f| f.active);
    if has_factor {
        return Ok(Some(Purpose::SecondFactor));
    }
    if policy::required(state, c, user)? {
        return Ok(Some(Purpose::Enrol));
    }
    Ok(None)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn begin(
    state: &AppState,
    user: &User,
    version: i64,
    purpose: Purpose,
    application: &str,
    device_id: &str,
    target: &str,
    from: IpAddr,
) -> Result<Pending> {
    let token = tokens::new_token();
    let hash = tokens::hash_token(&token);
    let now = crate::clock::now();
    let ttl = match purpose {
        Purpose::SecondFactor => SECOND_STEP_TTL,
        Purpose::Enrol => ENROL_TTL,
    };
    let (uid, app, dev, target) = (
        user.id,
        application.to_string(),
        device_id.to_string(),
        target.to_string(),
    );
    let holder = Holder::Address(from).key();
    let methods = state
        .db
        .run(move |c| -> Result<_, DbError> {
            store(
                c,
                &NewChallenge {
                    token_hash: &hash,
                    purpose: purpose.as_str(),
                    user_id: Some(uid),
                    credentials_version: version,
                    application: &app,
                    device_id: &dev,
                    target: &target,
                    state: None,
                    limit_key: &holder,
                    now,
                    expires_at: now + ttl,
                },
            )?;
            match purpose {
                Purpose::SecondFactor => methods_of(c, uid),
                Purpose::Enrol => Ok(Vec::new()),
            }
        })
        .await?;
    tracing::info!(user_id = %user.id, purpose = purpose.as_str(), "password right; next step");
    Ok(Pending {
        challenge: token,
        methods,
        device_id: device_id.to_string(),
    })
}

/// The live challenge of `token` for `purpose`, or `None` (unknown, used, expired, or
/// its user disabled since).
pub async fn find(state: &AppState, token: &str, purpose: Purpose) -> Result<Option<Found>> {
    find_for(state, token, purpose.as_str()).await
}

/// Completes a second step with a code (TOTP or recovery code). A wrong, reused or
/// expired code is `InvalidCode` and counts toward the sign-in limits.
pub async fn complete(
    state: &AppState,
    token: &str,
    code: &str,
    client: ClientInfo,
) -> Result<SignedIn> {
    let started = std::time::Instant::now();
    let Some(found) = find(state, token, Purpose::SecondFactor).await? else {
        return Err(Error::InvalidCode);
    };
    let (ch, user) = (found.challenge, found.user);
    let known = is_known_device(state, user.id, &ch.device_id).await?;
    let checked = check_code(
        state,
        &Prover {
            user: user.id,
            email: &user.email,
            name: &user.name,
            known_device: known.then_some(ch.device_id.as_str()),
            client: &client,
        },
        code,
    )
    .await;
    let method = match checked {
        Ok(method) => method,
        Err(Error::InvalidCode) => {
            if state.limiter.second_step_failed(user.id) {
                tell_password_known(state, &user, &client).await;
            }
            return Err(Error::InvalidCode);
        }
        Err(err) => return Err(err),
    };
    finish(
        state,
        ch,
        user,
        client,
        AuthMethods::of(&[AuthMethod::Password, method]),
        started,
    )
    .await
}

/// Ends a challenge and stores the session it led to. Only one request can end a
/// challenge: a second one racing it gets `InvalidCode`.
pub(crate) async fn finish(
    state: &AppState,
    ch: ChallengeRow,
    user: User,
    client: ClientInfo,
    methods: AuthMethods,
    started: std::time::Instant,
) -> Result<SignedIn> {
    let id = ch.id;
    if !state.db.run(move |c| db::challenges::delete(c, id)).await? {
        return Err(Error::InvalidCode);
    }
    store_session(
        state,
        user,
        ch.credentials_version,
        SessionContext {
            device_id: ch.device_id,
            application: ch.application,
            client,
            methods,
        },
        started,
    )
    .await
}

/// Second steps failed in a row after a correct password
/// ([`SECOND_STEP_ROW`](crate::domain::attempts::limits::SECOND_STEP_ROW) of them): someone
/// knows the person's password. Emails them (SPEC §19), at most once an hour, outside
/// the hourly limit of sign-in alerts. The refusal stands whatever happens here.
async fn tell_password_known(state: &AppState, user: &User, client: &ClientInfo) {
    let now = crate::clock::now();
    let device = crate::ua::parse(&client.user_agent);
    let location = locate(state, client.ip);
    let notice = Details::of_request(
        &user.email,
        &user.name,
        now,
        &device,
        &client.ip.to_string(),
        &location,
    );
    let (id, mail_enabled) = (user.id, state.mailer.is_some());
    let queued = state
        .db
        .run(move |c| -> Result<bool, DbError> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let last = db::alerts::find_latest_of(&tx, id, PASSWORD_KNOWN)?;
            if last.is_some_and(|at| at > now - 3600) {
                return Ok(false);
            }
            alerts::enqueue_notice(&tx, PASSWORD_KNOWN, id, &notice, mail_enabled)?;
            tx.commit()?;
            Ok(true)
        })
        .await;
    match queued {
        Ok(true) => {
            tracing::warn!(user_id = %id, "second steps failed in a row; person told");
            state.mail_wakeup.notify_one();
        }
        Ok(false) => {}
        Err(err) => tracing::warn!(%err, "could not queue the notice of failed second steps"),
    }
}

async fn is_known_device(state: &AppState, user: UserId, device: &str) -> Result<bool> {
    if device.is_empty() {
        return Ok(false);
    }
    let device = device.to_string();
    Ok(state
        .db
        .run(move |c| db::devices::is_known(c, user, &device))
        .await?)
}

/// The authenticator key an enrolment shows: made on first view, the same on reload.
pub async fn enrolment_key(state: &AppState, token: &str) -> Result<Option<(User, TotpEnrolment)>> {
    let Some(found) = find(state, token, Purpose::Enrol).await? else {
        return Ok(None);
    };
    let (ch, user) = (found.challenge, found.user);
    if let Some(id) = ch.factor_id
        && let Some(key) = manage::pending_totp(state, user.id, &user.email, id).await?
    {
        return Ok(Some((user, key)));
    }
    let key = manage::create_totp(state, user.id, &user.email, "Authenticator app".into()).await?;
    let (cid, fid) = (ch.id, key.id);
    state
        .db
        .run(move |c| db::challenges::set_factor(c, cid, fid))
        .await?;
    Ok(Some((user, key)))
}

/// Completes an enrolment with the first code of the new authenticator: the factor is
/// active, the session stored, and the recovery codes returned (shown once).
pub async fn finish_enrolment(
    state: &AppState,
    token: &str,
    code: &str,
    client: ClientInfo,
) -> Result<(SignedIn, Vec<String>)> {
    let started = std::time::Instant::now();
    let Some(found) = find(state, token, Purpose::Enrol).await? else {
        return Err(Error::InvalidCode);
    };
    let (ch, user) = (found.challenge, found.user);
    let Some(factor) = ch.factor_id else {
        return Err(Error::InvalidCode);
    };
    let who = Prover {
        user: user.id,
        email: &user.email,
        name: &user.name,
        known_device: None,
        client: &client,
    };
    let activated = manage::activate_totp(state, &who, None, None, factor, code).await?;
    let signed = finish(
        state,
        ch,
        user,
        client,
        AuthMethods::of(&[AuthMethod::Password, AuthMethod::Totp]),
        started,
    )
    .await?;
    Ok((signed, activated.recovery_codes.unwrap_or_default()))
}
