//! Sign-in, the per-request session check, and sign-out (SPEC §3).

use std::net::IpAddr;

use rusqlite::Connection;
use tracing::instrument;

use crate::db::login_records::NewLoginRecord;
use crate::db::sessions::NewSession;
use crate::db::{self, DbError};
use crate::domain::model::{
    AccountId, Device, EndReason, Location, Role, Session, UserId, UserStatus,
};
use crate::domain::{alerts, passwords, tokens};
use crate::error::{Error, Result};
use crate::state::AppState;

/// Where a request comes from, as far as we believe it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: String,
}

pub struct SignInRequest {
    pub email: String,
    pub password: String,
    /// The device id the client already holds (cookie or API field), if any.
    pub device_id: Option<String>,
    pub application: String,
}

pub struct SignedIn {
    /// The secret: handed to the client once, never stored.
    pub token: String,
    pub device_id: String,
    pub session: Session,
    pub principal: Principal,
}

/// Who is making an authenticated request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub account_id: AccountId,
    pub account_name: String,
}

/// A request's valid session and its user.
#[derive(Debug, Clone)]
pub struct Authed {
    pub principal: Principal,
    pub session: Session,
}

const MAX_EMAIL: usize = 254;

#[instrument(skip_all, err(level = "debug"), fields(ip = %client.ip))]
pub async fn sign_in(state: &AppState, req: SignInRequest, client: ClientInfo) -> Result<SignedIn> {
    let started = std::time::Instant::now();
    let now = db::now();
    let email = req.email.trim().to_string();
    let device = crate::ua::parse(&client.user_agent);
    let location = state.geo.lookup(client.ip);
    let ip = client.ip.to_string();
    let presented_device = req.device_id.filter(|d| tokens::is_device_id(d));

    let reservation = match state.limiter.reserve(&email, &ip, now) {
        Ok(r) => r,
        Err(wait) => {
            let attempt = Attempt::new(
                &email,
                &ip,
                &location,
                &client,
                &device,
                presented_device.as_deref(),
            );
            state.metrics.count_sign_in("rate_limited");
            record_failure(state, attempt, None, "rate_limited").await;
            return Err(Error::RateLimited {
                retry_after_secs: wait,
            });
        }
    };

    let lookup_email = email.clone();
    let found = if email.is_empty() || email.len() > MAX_EMAIL {
        None
    } else {
        state
            .db
            .run(move |c| db::users::find_credentials(c, &lookup_email))
            .await?
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    // Always run argon2, even for an unknown email, so timing tells nothing.
    let password_ok = passwords::check(state, req.password, hash).await;
    let user = match user {
        Some(u) if password_ok && u.status == UserStatus::Active => u,
        other => {
            let reason = match &other {
                None => "unknown_email",
                Some(_) if !password_ok => "wrong_password",
                Some(_) => "user_disabled",
            };
            let attempt = Attempt::new(
                &email,
                &ip,
                &location,
                &client,
                &device,
                presented_device.as_deref(),
            );
            state.metrics.count_sign_in(reason);
            record_failure(state, attempt, other.map(|u| u.id), reason).await;
            return Err(Error::InvalidCredentials);
        }
    };
    state.limiter.release(reservation);

    let token = tokens::new_token();
    let token_hash = tokens::hash_token(&token);
    let public_id = tokens::new_public_id();
    let device_id = presented_device.unwrap_or_else(tokens::new_device_id);
    let s = &state.config.sessions;
    let expires_at = now + s.idle_timeout.as_secs().min(s.max_lifetime.as_secs()) as i64;
    let application = req.application;
    let principal = Principal {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        role: user.role,
        account_id: user.account_id,
        account_name: user.account_name.clone(),
    };
    let user_agent = client.user_agent;
    let (dev_id, loc, dev) = (device_id.clone(), location.clone(), device.clone());
    let mail_enabled = state.mailer.is_some();
    let (session, queued) = state
        .db
        .run(move |c| {
            let tx = c.transaction()?;
            let pk = db::sessions::insert(
                &tx,
                &NewSession {
                    public_id: &public_id,
                    token_hash: &token_hash,
                    user_id: user.id,
                    account_id: user.account_id,
                    application: &application,
                    device_id: &dev_id,
                    user_agent: &user_agent,
                    device: &dev,
                    ip: &ip,
                    location: &loc,
                    now,
                    expires_at,
                },
            )?;
            let device_is_new = db::devices::upsert(&tx, user.id, &dev_id, now)?;
            // Decided before this sign-in is recorded: it compares with earlier ones.
            let reasons =
                alerts::classify(&tx, user.id, device_is_new, loc.country_code.as_deref())?;
            db::login_records::insert(
                &tx,
                &NewLoginRecord {
                    at: now,
                    email: &email,
                    user_id: Some(user.id),
                    ip: &ip,
                    location: &loc,
                    device_id: Some(&dev_id),
                    user_agent: &user_agent,
                    device: &dev,
                    success: true,
                    reason: "ok",
                },
            )?;
            let session = Session {
                pk,
                id: crate::domain::model::SessionId(public_id),
                user_id: user.id,
                user_email: user.email,
                account_id: user.account_id,
                account_name: user.account_name,
                application,
                device_id: dev_id,
                user_agent,
                device: dev,
                ip,
                location: loc,
                created_at: now,
                last_active_at: now,
                expires_at,
                ended_at: None,
                end_reason: None,
            };
            let queued = if reasons.any() {
                Some(alerts::enqueue(
                    &tx,
                    reasons,
                    &session,
                    &user.name,
                    mail_enabled,
                )?)
            } else {
                None
            };
            tx.commit()?;
            Ok((session, queued))
        })
        .await?;
    if queued == Some("pending") {
        state.mail_wakeup.notify_one();
    }
    state.metrics.count_sign_in("ok");
    state.metrics.observe_sign_in(started.elapsed());
    tracing::info!(user_id = %principal.user_id, session = %session.id, "signed in");
    Ok(SignedIn {
        token,
        device_id,
        session,
        principal,
    })
}

/// The parts of a failed attempt worth keeping.
struct Attempt {
    email: String,
    ip: String,
    location: Location,
    device_id: Option<String>,
    user_agent: String,
    device: Device,
}

impl Attempt {
    fn new(
        email: &str,
        ip: &str,
        location: &Location,
        client: &ClientInfo,
        device: &Device,
        device_id: Option<&str>,
    ) -> Self {
        Attempt {
            // Bounded: the email field is attacker-controlled.
            email: email.chars().take(MAX_EMAIL).collect(),
            ip: ip.to_string(),
            location: location.clone(),
            device_id: device_id.map(str::to_string),
            user_agent: client.user_agent.clone(),
            device: device.clone(),
        }
    }
}

async fn record_failure(state: &AppState, a: Attempt, user: Option<UserId>, reason: &'static str) {
    let now = db::now();
    let result = state
        .db
        .run(move |c| {
            db::login_records::insert(
                c,
                &NewLoginRecord {
                    at: now,
                    email: &a.email,
                    user_id: user,
                    ip: &a.ip,
                    location: &a.location,
                    device_id: a.device_id.as_deref(),
                    user_agent: &a.user_agent,
                    device: &a.device,
                    success: false,
                    reason,
                },
            )
        })
        .await;
    if let Err(err) = result {
        // The refusal stands either way; losing a history row must not turn it into a 500.
        tracing::warn!(%err, "could not record failed sign-in");
    }
    tracing::info!(reason, "sign-in refused");
}

/// Where a request's database work runs: at once on the async worker (a pooled
/// connection was idle and the work is a short read), or on the blocking pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Inline,
    Blocking,
}

/// Checks a presented token on every request: the session must exist, not have ended,
/// not have expired, and belong to an active user. Nothing is cached, so an ended
/// session is refused on the very next request. Last activity is written at most once
/// per `sessions.touch_interval`.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Authed> {
    authenticate_then(state, token, |_, _, _| Ok(Some(())))
        .await
        .map(|(authed, ())| authed)
}

/// Authenticates, then runs `then` with the caller on the same pooled connection.
///
/// The check is an indexed read of one row, cheaper than handing it to a blocking thread
/// and back, so it first runs inline ([`Db::try_inline`](crate::db::Db::try_inline)),
/// with `then` told [`Place::Inline`]. It goes to the blocking pool instead when no
/// connection is idle, when the session's activity is due to be written (a write may
/// wait for SQLite's single writer or checkpoint the log), or when `then` answers `None`
/// (too much to do inline); `then` must not answer `None` for [`Place::Blocking`].
pub async fn authenticate_then<T, F>(state: &AppState, token: &str, then: F) -> Result<(Authed, T)>
where
    T: Send + 'static,
    F: Fn(&Connection, &Authed, Place) -> std::result::Result<Option<T>, DbError> + Send + 'static,
{
    if token.is_empty() || token.len() > 128 {
        return Err(Error::Unauthenticated(None));
    }
    let hash = tokens::hash_token(token);
    let s = &state.config.sessions;
    let policy = Policy {
        touch: s.touch_interval.as_secs() as i64,
        idle: s.idle_timeout.as_secs() as i64,
        max: s.max_lifetime.as_secs() as i64,
    };
    let inline = state
        .db
        .try_inline(|c| check_then(c, &hash, policy, &then, Place::Inline));
    if let Some(Some(done)) = inline.transpose()? {
        return done;
    }
    state
        .db
        .run(move |c| {
            check_then(c, &hash, policy, &then, Place::Blocking)?
                .ok_or_else(|| DbError::Task("a blocking storage call asked to be deferred".into()))
        })
        .await?
}

/// Session lifetimes, in seconds.
#[derive(Debug, Clone, Copy)]
struct Policy {
    touch: i64,
    idle: i64,
    max: i64,
}

/// The check and `then` at `place`; `None` when they must be done on the blocking pool.
fn check_then<T>(
    c: &Connection,
    hash: &[u8],
    policy: Policy,
    then: &impl Fn(&Connection, &Authed, Place) -> std::result::Result<Option<T>, DbError>,
    place: Place,
) -> std::result::Result<Option<Result<(Authed, T)>>, DbError> {
    let authed = match check_token(c, hash, policy, place)? {
        None => return Ok(None),
        Some(Ok(authed)) => authed,
        Some(Err(refused)) => return Ok(Some(Err(refused))),
    };
    Ok(then(c, &authed, place)?.map(|out| Ok((authed, out))))
}

/// The session check itself, on a connection: the session of the token, refused when it
/// has ended, expired or its user is disabled; its activity recorded at most once per
/// touch interval. `None` when that record is due and `place` is [`Place::Inline`].
fn check_token(
    c: &Connection,
    hash: &[u8],
    policy: Policy,
    place: Place,
) -> std::result::Result<Option<Result<Authed>>, DbError> {
    let Some(mut m) = db::sessions::find_by_token_hash(c, hash)? else {
        return Ok(Some(Err(Error::Unauthenticated(None))));
    };
    let now = db::now();
    let sess = &mut m.session;
    if sess.is_active(now)
        && m.status == UserStatus::Active
        && now - sess.last_active_at >= policy.touch
    {
        if place == Place::Inline {
            return Ok(None);
        }
        let expires = (now + policy.idle).min(sess.created_at + policy.max);
        // The touch does not wait for the write lock: while another write holds it,
        // SQLite's busy handler would sleep (1, 2, 5, 10… ms) with this request and its
        // pooled connection. Skipped, the touch is simply made by the session's next
        // request.
        c.busy_timeout(std::time::Duration::ZERO)?;
        let touched = db::sessions::update_last_active(c, sess.pk, now, expires);
        c.busy_timeout(db::BUSY_TIMEOUT)?;
        match touched {
            Ok(()) => {
                sess.last_active_at = now;
                sess.expires_at = expires;
            }
            Err(err) if err.is_busy() => {
                tracing::debug!("session activity not recorded: database busy")
            }
            // A read-only or full disk must not lock everyone out: the check itself
            // succeeded, only the bookkeeping did not.
            Err(err) if err.is_unavailable() => {
                tracing::warn!(%err, "could not record session activity")
            }
            Err(err) => return Err(err),
        }
    }
    let sess = m.session;
    if let Some(reason) = sess.end_reason.filter(|_| sess.ended_at.is_some()) {
        return Ok(Some(Err(Error::Unauthenticated(Some(reason)))));
    }
    if sess.expires_at <= now {
        let reason = if sess.expires_at >= sess.created_at + policy.max {
            EndReason::MaxLifetime
        } else {
            EndReason::IdleTimeout
        };
        return Ok(Some(Err(Error::Unauthenticated(Some(reason)))));
    }
    if m.status != UserStatus::Active {
        return Ok(Some(Err(Error::Unauthenticated(Some(
            EndReason::UserDisabled,
        )))));
    }
    Ok(Some(Ok(Authed {
        principal: Principal {
            user_id: sess.user_id,
            email: sess.user_email.clone(),
            name: m.user_name,
            role: m.role,
            account_id: sess.account_id,
            account_name: sess.account_name.clone(),
        },
        session: sess,
    })))
}

/// Ends the caller's own session.
pub async fn sign_out(state: &AppState, authed: &Authed) -> Result<()> {
    let (pk, user) = (authed.session.pk, authed.principal.user_id);
    state
        .db
        .run(move |c| db::sessions::end(c, pk, db::now(), Some(user), EndReason::Logout))
        .await?;
    tracing::info!(user_id = %user, session = %authed.session.id, "signed out");
    Ok(())
}
