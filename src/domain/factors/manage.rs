//! A person's own second factors (SPEC §12): listing them, adding an authenticator app,
//! activating it with a first code, renaming and removing factors, and new recovery
//! codes. Checking a code is in `codes`; passkeys are registered in `passkeys`; the
//! policy that requires a factor is in `policy`; "confirm it's you" is in `step_up`.

use rusqlite::Connection;
use tracing::instrument;

use crate::db::second_factors::{FactorRow, NewFactor};
use crate::db::{self, DbError};
use crate::domain::alerts::notices::{self, Details};
use crate::domain::attempts::limits::Subject;
use crate::domain::attempts::{Attempt, record_failure, reserve, with_account};
use crate::domain::factors::codes::{
    Code, Prover, TOTP_KEY_BYTES, base32, matching_step, otpauth_uri, parse_code,
    replace_recovery_codes,
};
use crate::domain::factors::policy::required;
use crate::domain::factors::step_up;
use crate::domain::place::locate;
use crate::error::{Error, Result};
use crate::model::{AuthMethod, Authed, ClientInfo, CurrentSession, Session, UserId};
use crate::state::AppState;

const MAX_NAME: usize = 64;
/// Factors a person may have (active or waiting for their first code).
const MAX_FACTORS: usize = 20;

/// A factor as the pages and the API show it.
#[derive(Debug, Clone)]
pub struct Factor {
    pub id: i64,
    /// `totp` or `passkey`.
    pub kind: String,
    pub name: String,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&FactorRow> for Factor {
    fn from(f: &FactorRow) -> Self {
        Factor {
            id: f.id,
            kind: f.kind.clone(),
            name: f.name.clone(),
            active: f.active,
            created_at: f.created_at,
            last_used_at: f.last_used_at,
        }
    }
}

/// A person's factors and how many recovery codes they have left.
#[derive(Debug, Clone)]
pub struct Overview {
    pub factors: Vec<Factor>,
    pub recovery_codes_left: i64,
}

impl Overview {
    pub fn active(&self) -> impl Iterator<Item = &Factor> {
        self.factors.iter().filter(|f| f.active)
    }

    pub fn has_active(&self) -> bool {
        self.active().next().is_some()
    }
}

/// A new, inactive authenticator: the key to show (text and QR), once.
pub struct TotpEnrolment {
    pub id: i64,
    /// The key in base32, as apps take it typed in.
    pub secret: String,
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

// ---- a person's own factors ----

pub async fn overview(state: &AppState, user: UserId) -> Result<Overview> {
    state
        .db
        .run(move |c| overview_tx(c, user))
        .await
        .map_err(Into::into)
}

fn overview_tx(c: &Connection, user: UserId) -> Result<Overview, DbError> {
    Ok(Overview {
        factors: db::second_factors::list_for_user(c, user)?
            .iter()
            .map(Factor::from)
            .collect(),
        recovery_codes_left: db::second_factors::count_unused_recovery_codes(c, user)?,
    })
}

pub(crate) fn check_factor_name(name: &str, fallback: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(fallback.to_string());
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_name",
            format!(
                "A factor's name is at most {MAX_NAME} characters, without control characters."
            ),
        ));
    }
    Ok(name.to_string())
}

/// Starts adding an authenticator app: an inactive factor with a new key. Adding a
/// factor needs a fresh "confirm it's you" (see [`step_up::require`]).
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn start_totp(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    name: &str,
    proof: step_up::Proof,
) -> Result<TotpEnrolment> {
    let name = check_factor_name(name, "Authenticator app")?;
    step_up::require(state, me, client, proof).await?;
    let user = me.principal.user_id;
    create_totp(state, user, &me.principal.email, name).await
}

/// Creates an inactive TOTP factor (also for an enrolment during sign-in).
pub(crate) async fn create_totp(
    state: &AppState,
    user: UserId,
    email: &str,
    name: String,
) -> Result<TotpEnrolment> {
    let mut key = [0u8; TOTP_KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| Error::Internal(e.to_string()))?;
    let now = crate::clock::now();
    let id = state
        .db
        .run(move |c| -> Result<i64> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            room_for_one_more(&tx, user)?;
            let id = db::second_factors::insert(
                &tx,
                &NewFactor {
                    user_id: user,
                    kind: "totp",
                    name: &name,
                    secret: Some(&key),
                    credential_id: None,
                    credential: None,
                    active: false,
                    now,
                },
            )?;
            tx.commit()?;
            Ok(id)
        })
        .await?;
    let secret = base32(&key);
    Ok(TotpEnrolment {
        id,
        otpauth_uri: otpauth_uri(&secret, email),
        secret,
    })
}

/// Refuses a new factor past [`MAX_FACTORS`]; authenticators never activated make room
/// first (a person who started many enrolments).
pub(crate) fn room_for_one_more(c: &Connection, user: UserId) -> Result<()> {
    let factors = db::second_factors::list_for_user(c, user)?;
    if factors.len() < MAX_FACTORS {
        return Ok(());
    }
    for f in factors.iter().filter(|f| !f.active) {
        db::second_factors::delete(c, user, f.id)?;
    }
    if factors.iter().filter(|f| f.active).count() >= MAX_FACTORS {
        return Err(Error::conflict(
            "too_many_factors",
            format!("You have {MAX_FACTORS} second factors already: remove one first."),
        ));
    }
    Ok(())
}

/// The key of an inactive TOTP factor of the user, to show again (an enrolment page
/// reloaded).
pub async fn pending_totp(
    state: &AppState,
    user: UserId,
    email: &str,
    id: i64,
) -> Result<Option<TotpEnrolment>> {
    let row = state
        .db
        .run(move |c| db::second_factors::find(c, user, id))
        .await?;
    Ok(row.filter(|f| !f.active && f.kind == "totp").and_then(|f| {
        let secret = base32(f.secret.as_deref()?);
        Some(TotpEnrolment {
            id: f.id,
            otpauth_uri: otpauth_uri(&secret, email),
            secret,
        })
    }))
}

/// What activating a factor gives: the recovery codes, when it is the first factor.
pub struct Activated {
    pub recovery_codes: Option<Vec<String>>,
}

/// Activates an inactive authenticator with one correct code. A wrong code counts
/// toward the sign-in limits. The first factor comes with ten recovery codes; the
/// person is emailed.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %who.user))]
pub(crate) async fn activate_totp(
    state: &AppState,
    who: &Prover<'_>,
    from: Option<&Session>,
    carry: Option<&CurrentSession>,
    id: i64,
    code: &str,
) -> Result<Activated> {
    let (user, email, name, client) = (who.user, who.email, who.name, who.client);
    let now = crate::clock::now();
    let device = crate::ua::parse(&client.user_agent);
    let location = locate(state, client.ip);
    let attempt = Attempt::new(email, &location, client, &device, None);
    let subject = Subject {
        email,
        ip: client.ip,
        known_device: None,
    };
    let who = with_account(state, Some(user)).await;
    let reservation = reserve(state, &subject, who, &attempt, now).await?;
    let digits = match parse_code(code) {
        Some(Code::Totp(d)) => d,
        _ => String::new(),
    };
    let notice = match from {
        Some(s) => Details::notice(email, name, now, Some(s)),
        None => Details::of_request(email, name, now, &device, &client.ip.to_string(), &location),
    };
    let mail_enabled = state.mailer.is_some();
    // A session held at enrolment that adds it now carries it, and is let through
    // (SPEC §19).
    let carried = carry.map(|s| (s.pk, s.auth_methods.with(AuthMethod::Totp).to_text()));
    let outcome = state
        .db
        .run(move |c| -> Result<Option<Activated>> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(f) = db::second_factors::find(&tx, user, id)? else {
                return Err(Error::NotFound);
            };
            if f.active || f.kind != "totp" {
                return Err(Error::conflict(
                    "already_active",
                    "This authenticator is active already.",
                ));
            }
            let step = f
                .secret
                .as_deref()
                .and_then(|s| matching_step(s, &digits, now));
            let Some(step) = step else {
                return Ok(None);
            };
            let first = !db::second_factors::list_for_user(&tx, user)?
                .iter()
                .any(|f| f.active);
            db::second_factors::take_step(&tx, id, step, now)?;
            db::second_factors::activate(&tx, user, id)?;
            if let Some((pk, methods)) = &carried {
                db::sessions::add_auth_method(&tx, *pk, methods)?;
            }
            let codes = if first || db::second_factors::count_unused_recovery_codes(&tx, user)? == 0
            {
                Some(replace_recovery_codes(&tx, user)?)
            } else {
                None
            };
            crate::domain::audit::events::record_about(
                &tx,
                crate::model::EventType::UserSecondFactorAdded,
                user,
                now,
                |e| {
                    e.actor(Some(user))
                        .detail("kind", "totp")
                        .detail("factor_id", id)
                },
            )?;
            notices::enqueue_notice(
                &tx,
                notices::SECOND_FACTOR_ADDED,
                user,
                &notice,
                mail_enabled,
            )?;
            tx.commit()?;
            Ok(Some(Activated {
                recovery_codes: codes,
            }))
        })
        .await;
    match outcome {
        Ok(Some(done)) => {
            reservation.succeeded();
            if mail_enabled {
                state.mail_wakeup.notify_one();
            }
            tracing::info!(factor = id, "authenticator app added");
            Ok(done)
        }
        Ok(None) => {
            reservation.failed();
            record_failure(state, attempt, who, "wrong_code").await;
            Err(Error::InvalidCode)
        }
        Err(err) => {
            // Not a guess: the factor was missing or active already.
            reservation.succeeded();
            Err(err)
        }
    }
}

/// [`activate_totp`] for the signed-in person.
pub async fn activate_mine(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    id: i64,
    code: &str,
) -> Result<Activated> {
    let p = &me.principal;
    let who = Prover {
        user: p.user_id,
        email: &p.email,
        name: &p.name,
        known_device: None,
        client,
    };
    let carry = me.enrolment_pending.then_some(&me.session);
    let current = crate::domain::alerts::notices::current_session(state, me).await?;
    activate_totp(state, &who, Some(&current), carry, id, code).await
}

/// Renames one of the person's factors (a label only: no step-up).
pub async fn rename(state: &AppState, me: &Authed, id: i64, name: &str) -> Result<()> {
    let name = check_factor_name(name, "")?;
    if name.is_empty() {
        return Err(Error::invalid("invalid_name", "Give the factor a name."));
    }
    let user = me.principal.user_id;
    let done = state
        .db
        .run(move |c| db::second_factors::rename(c, user, id, &name))
        .await?;
    if done { Ok(()) } else { Err(Error::NotFound) }
}

/// Removes one of the person's factors, after a fresh "confirm it's you". The last
/// active factor cannot go while one is required; with it go the recovery codes. The
/// person is emailed.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn remove(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    id: i64,
    proof: step_up::Proof,
) -> Result<()> {
    step_up::require(state, me, client, proof).await?;
    let user = me.principal.user_id;
    let current = crate::domain::alerts::notices::current_session(state, me).await?;
    let notice = Details::notice(
        &me.principal.email,
        &me.principal.name,
        crate::clock::now(),
        Some(&current),
    );
    let mail_enabled = state.mailer.is_some();
    let st = state.clone();
    state
        .db
        .run(move |c| -> Result<()> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let factors = db::second_factors::list_for_user(&tx, user)?;
            let Some(f) = factors.iter().find(|f| f.id == id) else {
                return Err(Error::NotFound);
            };
            let others = factors.iter().filter(|o| o.active && o.id != id).count();
            if f.active && others == 0 && required(&st, &tx, user)? {
                return Err(Error::conflict(
                    "second_factor_required",
                    "A second factor is required for your account: add another one before removing this one.",
                ));
            }
            db::second_factors::delete(&tx, user, id)?;
            if f.active {
                if others == 0 {
                    db::second_factors::replace_recovery_codes(&tx, user, &[])?;
                }
                crate::domain::audit::events::record_about(&tx, crate::model::EventType::UserSecondFactorRemoved, user, crate::clock::now(), |e| {
                    e.actor(Some(user))
                        .detail("kind", f.kind.as_str())
                        .detail("factor_id", id)
                })?;
                notices::enqueue_notice(
                    &tx,
                    notices::SECOND_FACTOR_REMOVED,
                    user,
                    &notice,
                    mail_enabled,
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(factor = id, "second factor removed");
    Ok(())
}

/// Ten new recovery codes (the old ones stop working), after a fresh "confirm it's you".
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn regenerate_recovery_codes(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    proof: step_up::Proof,
) -> Result<Vec<String>> {
    step_up::require(state, me, client, proof).await?;
    let user = me.principal.user_id;
    let codes = state
        .db
        .run(move |c| -> Result<Vec<String>> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let active = db::second_factors::list_for_user(&tx, user)?
                .iter()
                .any(|f| f.active);
            if !active {
                return Err(Error::conflict(
                    "no_second_factor",
                    "Recovery codes come with a second factor: add one first.",
                ));
            }
            let codes = replace_recovery_codes(&tx, user)?;
            tx.commit()?;
            Ok(codes)
        })
        .await?;
    tracing::info!("recovery codes regenerated");
    Ok(codes)
}

/// The ten recovery codes of someone adding their first factor some other way
/// (a passkey), in the caller's transaction, when they have none.
pub(crate) fn codes_for_first_factor(
    c: &Connection,
    user: UserId,
) -> Result<Option<Vec<String>>, DbError> {
    if db::second_factors::count_unused_recovery_codes(c, user)? > 0 {
        return Ok(None);
    }
    replace_recovery_codes(c, user).map(Some)
}
