//! Sign-in, the per-request session check, and sign-out (SPEC §3).

use std::net::IpAddr;

use rusqlite::Connection;
use tracing::instrument;

use crate::db::login_records::NewLoginRecord;
use crate::db::sessions::NewSession;
use crate::db::users::Credentials;
use crate::db::{self, DbError};
use crate::domain::events::{self, NewEvent, Origin};
use crate::domain::model::EventType;
use crate::domain::model::{
    AccountId, AuthMethods, Device, EndReason, Location, Role, Session, User, UserId, UserStatus,
};
use crate::domain::ratelimit::{Reservation, Subject};
use crate::domain::{alerts, second_step, tokens};
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
    /// Where a browser goes once signed in (kept through a second step); "" for the API.
    pub target: String,
}

/// What a correct password leads to.
pub enum SignInOutcome {
    SignedIn(Box<SignedIn>),
    /// The person has a second factor: the sign-in waits for its second step.
    SecondStep(second_step::Pending),
    /// A second factor is required of the person and they have none: they enrol first.
    MustEnrol(second_step::Pending),
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
    /// The person has proven the address (SPEC §19).
    pub email_verified: bool,
}

/// A request's valid session and its user.
#[derive(Debug, Clone)]
pub struct Authed {
    pub principal: Principal,
    pub session: Session,
    /// A second factor is required of the person (by the install, their account or
    /// themself) and the session was signed in without one: it may only add a factor
    /// or sign out (SPEC §19). Only [`authenticate_held`] hands out such a session.
    ///
    /// [`authenticate_held`]: crate::domain::session_check::authenticate_held
    pub enrolment_pending: bool,
}

const MAX_EMAIL: usize = 254;

#[instrument(skip_all, err(level = "debug"), fields(ip = %client.ip))]
pub async fn sign_in(
    state: &AppState,
    req: SignInRequest,
    client: ClientInfo,
) -> Result<SignInOutcome> {
    let started = std::time::Instant::now();
    let now = crate::clock::now();
    let email = req.email.trim().to_string();
    let device = crate::ua::parse(&client.user_agent);
    let location = locate(state, client.ip);
    let presented_device = req.device_id.filter(|d| tokens::is_device_id(d));
    let attempt = Attempt::new(
        &email,
        &location,
        &client,
        &device,
        presented_device.as_deref(),
    );

    let found = find_account(state, &email, presented_device.clone()).await?;
    // Known only when Doorman gave this id to this same user before (SPEC §19): an id
    // of someone else, or one the client made up, counts for nothing.
    let known_device = found
        .as_ref()
        .filter(|f| f.device_known)
        .and(presented_device);
    let subject = Subject {
        email: &email,
        ip: client.ip,
        known_device: known_device.as_deref(),
    };
    let reservation = match reserve(state, &subject, None, &attempt, now).await {
        Ok(r) => r,
        Err(refused) => {
            state.metrics.count_sign_in("rate_limited");
            return Err(refused);
        }
    };
    // Read with the account: whether a second step (or an enrolment) follows.
    let next = found.as_ref().and_then(|f| f.next);
    let (user, version) =
        check_credentials(state, found, req.password, reservation, &attempt).await?;
    // An id that is not already this user's is never adopted: Doorman issues its own,
    // so that only ids it gave this person can ever make their sign-ins known.
    let device_id = known_device.unwrap_or_else(tokens::new_device_id);
    if let Some(purpose) = next {
        let pending = second_step::begin(
            state,
            &user,
            version,
            purpose,
            &req.application,
            &device_id,
            &req.target,
            client.ip,
        )
        .await?;
        return Ok(match purpose {
            second_step::Purpose::SecondFactor => SignInOutcome::SecondStep(pending),
            second_step::Purpose::Enrol => SignInOutcome::MustEnrol(pending),
        });
    }
    let context = SessionContext {
        device_id,
        application: req.application,
        client,
        methods: AuthMethods::PASSWORD,
    };
    store_session(state, user, version, context, started)
        .await
        .map(|signed| SignInOutcome::SignedIn(Box::new(signed)))
}

/// Where a new session comes from, and how its person proved who they are.
pub(crate) struct SessionContext {
    pub device_id: String,
    pub application: String,
    pub client: ClientInfo,
    pub methods: AuthMethods,
}

/// Stores a verified sign-in's session (see [`insert_session`]): the last step of
/// every way of signing in.
pub(crate) async fn store_session(
    state: &AppState,
    user: User,
    version: i64,
    ctx: SessionContext,
    started: std::time::Instant,
) -> Result<SignedIn> {
    let now = crate::clock::now();
    let client = ctx.client;
    let device = crate::ua::parse(&client.user_agent);
    let location = locate(state, client.ip);
    let attempt = Attempt::new(
        &user.email,
        &location,
        &client,
        &device,
        Some(&ctx.device_id),
    );
    let token = tokens::new_token();
    let device_id = ctx.device_id;
    let new = NewSignIn {
        token_hash: tokens::hash_token(&token),
        public_id: tokens::new_public_id(),
        device_id: device_id.clone(),
        user_agent: client.user_agent,
        device,
        ip: client.ip.to_string(),
        location,
        application: ctx.application,
        email: user.email.clone(),
        now,
        expires_at: {
            let s = &state.config.sessions;
            now + s.idle_timeout.as_secs().min(s.max_lifetime.as_secs()) as i64
        },
        methods: ctx.methods,
    };
    let principal = Principal::from(&user);
    let alerting = Alerting {
        mail_enabled: state.mailer.is_some(),
        silent: silent(state, &new.location),
        limits: alerts::TravelLimits {
            min_km: state.config.alerts.travel_min_km,
            max_kmh: state.config.alerts.travel_max_kmh,
        },
    };
    let inserted = state
        .db
        .run(move |c| insert_session(c, user, version, new, alerting))
        .await?;
    let Some((session, queued)) = inserted else {
        // The password or the user's status changed while this sign-in was being
        // checked: the credentials it verified are no longer the user's.
        state.metrics.count_sign_in("failure");
        record_failure(
            state,
            attempt,
            Some((principal.user_id, principal.account_id)),
            "credentials_changed",
        )
        .await;
        return Err(Error::InvalidCredentials);
    };
    if queued == Some("pending") {
        state.mail_wakeup.notify_one();
    }
    state.limiter.second_step_passed(principal.user_id);
    state.metrics.count_sign_in("success");
    state.metrics.observe_sign_in(started.elapsed());
    tracing::info!(user_id = %principal.user_id, session = %session.id, "signed in");
    Ok(SignedIn {
        token,
        device_id,
        session,
        principal,
    })
}

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

/// The password check: the user and the credentials version it verified, or the one
/// refusal every failure gets (unknown email, wrong password and disabled user look
/// the same). argon2 runs even for an unknown email, so timing tells nothing.
async fn check_credentials(
    state: &AppState,
    found: Option<Found>,
    password: String,
    reservation: Reservation,
    attempt: &Attempt,
) -> Result<(User, i64)> {
    let (user, credentials) = match found {
        Some(f) => (Some(f.user), Some(f.credentials)),
        None => (None, None),
    };
    let hash = credentials.as_ref().map(|c| c.hash.clone());
    let password_ok = check_password(state, password, hash).await;
    match (user, credentials) {
        (Some(u), Some(c)) if password_ok && u.status == UserStatus::Active => {
            // Not a guess: the password was right, whatever the insert finds later.
            reservation.succeeded();
            Ok((u, c.version))
        }
        (other, _) => {
            let reason = match &other {
                None => "unknown_email",
                Some(_) if !password_ok => "wrong_password",
                Some(_) => "user_disabled",
            };
            reservation.failed();
            // Metrics are public to whoever may scrape them: one outcome for every
            // refusal, so they never tell an unknown email from a wrong password.
            state.metrics.count_sign_in("failure");
            let user = other.map(|u| (u.id, u.account_id));
            record_failure(state, attempt.clone(), user, reason).await;
            Err(Error::InvalidCredentials)
        }
    }
}

impl From<&User> for Principal {
    fn from(user: &User) -> Self {
        Principal {
            user_id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
            account_id: user.account_id,
            account_name: user.account_name.clone(),
            email_verified: user.email_verified,
        }
    }
}

/// The account a sign-in names, its credentials, and whether the presented device is
/// one it has signed in from before.
struct Found {
    user: User,
    credentials: Credentials,
    device_known: bool,
    next: Option<second_step::Purpose>,
}

async fn find_account(
    state: &AppState,
    email: &str,
    device: Option<String>,
) -> Result<Option<Found>> {
    if email.is_empty() || email.len() > MAX_EMAIL {
        return Ok(None);
    }
    let email = email.to_string();
    let st = state.clone();
    state
        .db
        .run(move |c| -> Result<_> {
            let Some((user, credentials)) = db::users::find_credentials(c, &email)? else {
                return Ok(None);
            };
            let device_known = match &device {
                Some(d) => db::devices::is_known(c, user.id, d)?,
                None => false,
            };
            let next = second_step::after_password(&st, c, user.id)?;
            Ok(Some(Found {
                user,
                credentials,
                device_known,
                next,
            }))
        })
        .await
}

/// Where an address is: the GeoIP database's answer, with the trusted network
/// (`[[networks]]`) that holds it, by name.
pub fn locate(state: &AppState, ip: IpAddr) -> Location {
    let mut location = state.geo.lookup(ip);
    location.network = state.config.network_of(ip).map(|n| n.name.clone());
    location
}

/// From a trusted network with `alerts = false`: never alerted about.
pub fn silent(state: &AppState, location: &Location) -> bool {
    location.network.as_deref().is_some_and(|name| {
        state
            .config
            .networks
            .iter()
            .any(|n| n.name == name && !n.alerts)
    })
}

/// What the alert decision needs from the configuration.
#[derive(Clone, Copy)]
struct Alerting {
    mail_enabled: bool,
    silent: bool,
    limits: alerts::TravelLimits,
}

/// A verified sign-in, ready to be stored.
struct NewSignIn {
    token_hash: [u8; 32],
    public_id: String,
    device_id: String,
    user_agent: String,
    device: Device,
    ip: String,
    location: Location,
    application: String,
    email: String,
    now: i64,
    expires_at: i64,
    methods: AuthMethods,
}

/// Stores the session, the device, the login record and any alert in one transaction,
/// after checking that the user still has the credentials version the sign-in verified
/// (`None` when not: nothing is written).
fn insert_session(
    c: &mut Connection,
    user: User,
    version: i64,
    n: NewSignIn,
    alerting: Alerting,
) -> std::result::Result<Option<(Session, Option<&'static str>)>, DbError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if !db::users::credentials_current(&tx, user.id, version)? {
        return Ok(None);
    }
    let now = n.now;
    let session = db::sessions::insert(
        &tx,
        &NewSession {
            public_id: &n.public_id,
            token_hash: &n.token_hash,
            user_id: user.id,
            account_id: user.account_id,
            application: &n.application,
            device_id: &n.device_id,
            user_agent: &n.user_agent,
            device: &n.device,
            ip: &n.ip,
            location: &n.location,
            now,
            expires_at: n.expires_at,
            auth_methods: n.methods,
        },
    )?;
    events::record(
        &tx,
        NewEvent::new(EventType::SessionCreated, now)
            .session(&session)
            .actor(Some(user.id))
            .detail("application", n.application.as_str())
            .detail("device_hash", tokens::device_hash(&n.device_id)),
    )?;
    let device_is_new = db::devices::upsert(&tx, user.id, &n.device_id, now)?;
    // Decided before this sign-in is recorded: it compares with earlier ones.
    let verdict = alerts::classify(
        &tx,
        user.id,
        &alerts::SignInFacts {
            device_is_new,
            location: &n.location,
            at: now,
            silent: alerting.silent,
        },
        alerting.limits,
    )?;
    db::login_records::insert(
        &tx,
        &NewLoginRecord {
            at: now,
            email: &n.email,
            user_id: Some(user.id),
            ip: &n.ip,
            location: &n.location,
            device_id: Some(&n.device_id),
            user_agent: &n.user_agent,
            device: &n.device,
            success: true,
            reason: "ok",
        },
    )?;
    let queued = if verdict.reasons.any() {
        Some(alerts::enqueue(
            &tx,
            &verdict,
            &session,
            &user.name,
            alerting.mail_enabled,
        )?)
    } else {
        None
    };
    tx.commit()?;
    Ok(Some((session, queued)))
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
async fn check_password(state: &AppState, password: String, hash: Option<String>) -> bool {
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

/// Ends the caller's own session.
pub async fn sign_out(state: &AppState, authed: &Authed) -> Result<()> {
    let (pk, user) = (authed.session.pk, authed.principal.user_id);
    state
        .db
        .run(move |c| -> std::result::Result<(), DbError> {
            let now = crate::clock::now();
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let ended = db::sessions::end(&tx, pk, now, Some(user), EndReason::Logout)?;
            events::record_ended(&tx, ended.as_slice(), now)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    tracing::info!(user_id = %user, session = %authed.session.id, "signed out");
    Ok(())
}
