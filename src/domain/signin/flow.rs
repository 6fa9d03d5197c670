//! Signing in with a password (SPEC §3): the account the email names, the password
//! check under the limits, then a session or the second step; and signing out.

use tracing::instrument;

use crate::db::users::Credentials;
use crate::db::{self, DbError};
use crate::domain::attempts::limits::{Reservation, Subject};
use crate::domain::attempts::{Attempt, MAX_EMAIL, check_password, record_failure, reserve};
use crate::domain::audit::events;
use crate::domain::place::locate;
use crate::domain::signin::issue::{SessionContext, SignedIn, store_session};
use crate::domain::signin::second_step;
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{AuthMethods, Authed, ClientInfo, EndReason, User, UserStatus};
use crate::state::AppState;

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
