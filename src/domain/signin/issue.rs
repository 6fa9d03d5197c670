//! Issuing a session: the last step of every way of signing in. The session, the
//! device, the login record and any alert are written in one transaction.

use rusqlite::Connection;

use crate::db::login_records::NewLoginRecord;
use crate::db::sessions::NewSession;
use crate::db::{self, DbError};
use crate::domain::alerts;
use crate::domain::attempts::{Attempt, record_failure};
use crate::domain::audit::events::{self, NewEvent};
use crate::domain::place::{locate, silent};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{
    AuthMethods, ClientInfo, Device, EventType, Location, Principal, Session, User,
};
use crate::state::AppState;

pub struct SignedIn {
    /// The secret: handed to the client once, never stored.
    pub token: String,
    pub device_id: String,
    pub session: Session,
    pub principal: Principal,
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
