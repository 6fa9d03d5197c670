//! Second factors (SPEC §12): authenticator apps (TOTP, RFC 6238), recovery codes, the
//! rate-limited check of a code, and the policy that requires a factor. Passkeys are in
//! `passkeys`; the sign-in's second step in `second_step`; "confirm it's you" in
//! `step_up`.

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use tracing::instrument;

use crate::db::second_factors::{FactorRow, NewFactor};
use crate::db::{self, DbError};
use crate::domain::alerts::{self, Details};
use crate::domain::auth::{self, Attempt, Authed, ClientInfo};
use crate::domain::model::{AccountId, AuthMethod, Session, UserId};
use crate::domain::permissions::{admin_scope, check_manage_user};
use crate::domain::ratelimit::Subject;
use crate::domain::step_up;
use crate::error::{Error, Result};
use crate::state::AppState;

/// RFC 6238 as every authenticator app does it: SHA-1, 6 digits, 30-second steps.
pub const TOTP_STEP: i64 = 30;
const TOTP_DIGITS: usize = 6;
/// 160 bits, the length RFC 4226 recommends.
const TOTP_KEY_BYTES: usize = 20;
/// Recovery codes given at once.
pub const RECOVERY_CODES: usize = 10;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const MAX_NAME: usize = 64;
/// Factors a person may have (active or waiting for their first code).
pub const MAX_FACTORS: usize = 20;

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

// ---- TOTP arithmetic ----

fn totp(secret: &[u8]) -> Option<totp_rs::TOTP> {
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        TOTP_DIGITS,
        0,
        TOTP_STEP as u64,
        secret.to_vec(),
    )
    .ok()
}

/// The time step of a code that `secret` gives within one step of `now` (clock skew
/// either way), the earliest first.
fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let t = totp(secret)?;
    let current = now.div_euclid(TOTP_STEP);
    (current - 1..=current + 1).find(|step| {
        let expected = t.generate((step * TOTP_STEP).max(0) as u64);
        crate::domain::tokens::constant_time_eq(expected.as_bytes(), code.as_bytes())
    })
}

/// `otpauth://totp/Doorman:ann@acme.test?secret=…&issuer=Doorman…`: what the QR code
/// carries.
pub fn otpauth_uri(secret_base32: &str, email: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "otpauth://totp/Doorman:{}?secret={secret_base32}&issuer=Doorman&algorithm=SHA1&digits=6&period=30",
        enc(email).replace('+', "%20")
    )
}

fn base32(bytes: &[u8]) -> String {
    totp_rs::Secret::Raw(bytes.to_vec())
        .to_encoded()
        .to_string()
        .trim_end_matches('=')
        .to_string()
}

/// What a person typed, read as a TOTP code or a recovery code.
enum Code {
    Totp(String),
    Recovery(String),
}

fn parse_code(raw: &str) -> Option<Code> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() == TOTP_DIGITS && compact.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Code::Totp(compact));
    }
    let letters: String = compact
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if letters.len() == 8 && letters.bytes().all(|b| BASE32.contains(&b)) {
        return Some(Code::Recovery(format!(
            "{}-{}",
            &letters[..4],
            &letters[4..]
        )));
    }
    None
}

fn recovery_hash(user: UserId, code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"doorman-recovery\0");
    h.update(user.0.to_be_bytes());
    h.update(code.as_bytes());
    h.finalize().into()
}

fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 8];
            // The OS random source failing is not something a server can continue through.
            #[allow(clippy::expect_used)]
            getrandom::fill(&mut bytes).expect("operating system random source unavailable");
            let s: String = bytes
                .iter()
                .map(|b| BASE32[(b & 31) as usize] as char)
                .collect();
            format!("{}-{}", &s[..4], &s[4..])
        })
        .collect()
}

/// Replaces the user's recovery codes with ten new ones, in the caller's transaction;
/// returns them (shown once).
fn replace_recovery_codes(c: &Connection, user: UserId) -> Result<Vec<String>, DbError> {
    let codes = new_recovery_codes();
    let hashes: Vec<[u8; 32]> = codes.iter().map(|c| recovery_hash(user, c)).collect();
    db::second_factors::replace_recovery_codes(c, user, &hashes)?;
    Ok(codes)
}

// ---- checking a code ----

/// Who is proving it is them with a code, and from where.
pub(crate) struct Prover<'a> {
    pub user: UserId,
    pub email: &'a str,
    pub name: &'a str,
    /// The device the request comes from, when the user has signed in from it before.
    pub known_device: Option<&'a str>,
    pub client: &'a ClientInfo,
}

/// Checks a code (TOTP or recovery) of `p.user` under the sign-in limits: a wrong one
/// counts as a failed attempt of the email and the address, and leaves a login record.
/// A used recovery code is gone, and its owner is emailed.
pub(crate) async fn check_code(state: &AppState, p: &Prover<'_>, raw: &str) -> Result<AuthMethod> {
    let now = crate::clock::now();
    let device = crate::ua::parse(&p.client.user_agent);
    let location = auth::locate(state, p.client.ip);
    let attempt = Attempt::new(p.email, &location, p.client, &device, p.known_device);
    let subject = Subject {
        email: p.email,
        ip: p.client.ip,
        known_device: p.known_device,
    };
    let who = auth::with_account(state, Some(p.user)).await;
    let reservation = auth::reserve(state, &subject, who, &attempt, now).await?;
    let code = parse_code(raw);
    let user = p.user;
    let notice = Details::of_request(
        p.email,
        p.name,
        now,
        &device,
        &p.client.ip.to_string(),
        &location,
    );
    let mail_enabled = state.mailer.is_some();
    let used = match code {
        None => None,
        Some(code) => {
            state
                .db
                .run(move |c| use_code(c, user, &code, now, &notice, mail_enabled))
                .await?
        }
    };
    match used {
        Some(method) => {
            reservation.succeeded();
            if method == AuthMethod::RecoveryCode && mail_enabled {
                state.mail_wakeup.notify_one();
            }
            Ok(method)
        }
        None => {
            reservation.failed();
            state.metrics.count_sign_in("failure");
            auth::record_failure(state, attempt, who, "wrong_code").await;
            Err(Error::InvalidCode)
        }
    }
}

/// Uses the code if it is one of the user's: a TOTP code of an active factor not used
/// before, or an unused recovery code.
fn use_code(
    c: &mut Connection,
    user: UserId,
    code: &Code,
    now: i64,
    notice: &Details,
    mail_enabled: bool,
) -> Result<Option<AuthMethod>, DbError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let used = match code {
        Code::Totp(digits) => {
            let mut found = false;
            for f in db::second_factors::list_for_user(&tx, user)? {
                if take_totp(&tx, &f, digits, now)? {
                    found = true;
                    break;
                }
            }
            found.then_some(AuthMethod::Totp)
        }
        Code::Recovery(text) => {
            let has_factor = db::second_factors::list_for_user(&tx, user)?
                .iter()
                .any(|f| f.active);
            let hash = recovery_hash(user, text);
            if has_factor && db::second_factors::use_recovery_code(&tx, user, &hash, now)? {
                alerts::enqueue_notice(
                    &tx,
                    alerts::RECOVERY_CODE_USED,
                    user,
                    notice,
                    mail_enabled,
                )?;
                Some(AuthMethod::RecoveryCode)
            } else {
                None
            }
        }
    };
    tx.commit()?;
    Ok(used)
}

/// Accepts `digits` for an active TOTP factor when they match a step within one of now
/// that is later than the last step it accepted.
fn take_totp(c: &Connection, f: &FactorRow, digits: &str, now: i64) -> Result<bool, DbError> {
    if f.kind != "totp" || !f.active {
        return Ok(false);
    }
    let Some(secret) = &f.secret else {
        return Ok(false);
    };
    match matching_step(secret, digits, now) {
        Some(step) if f.last_step.is_none_or(|last| step > last) => {
            db::second_factors::take_step(c, f.id, step, now)
        }
        _ => Ok(false),
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
    carry: Option<&Session>,
    id: i64,
    code: &str,
) -> Result<Activated> {
    let (user, email, name, client) = (who.user, who.email, who.name, who.client);
    let now = crate::clock::now();
    let device = crate::ua::parse(&client.user_agent);
    let location = auth::locate(state, client.ip);
    let attempt = Attempt::new(email, &location, client, &device, None);
    let subject = Subject {
        email,
        ip: client.ip,
        known_device: None,
    };
    let who = auth::with_account(state, Some(user)).await;
    let reservation = auth::reserve(state, &subject, who, &attempt, now).await?;
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
            crate::domain::events::record_about(
                &tx,
                crate::domain::model::EventType::UserSecondFactorAdded,
                user,
                now,
                |e| {
                    e.actor(Some(user))
                        .detail("kind", "totp")
                        .detail("factor_id", id)
                },
            )?;
            alerts::enqueue_notice(
                &tx,
                alerts::SECOND_FACTOR_ADDED,
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
            auth::record_failure(state, attempt, who, "wrong_code").await;
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
    activate_totp(state, &who, Some(&me.session), carry, id, code).await
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

/// Whether a second factor is required of this user: by the install, their account or
/// their own flag.
pub(crate) fn required(state: &AppState, c: &Connection, user: UserId) -> Result<bool, DbError> {
    Ok(state.config.security.require_second_factor || db::second_factors::required_of(c, user)?)
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
    let notice = Details::notice(
        &me.principal.email,
        &me.principal.name,
        crate::clock::now(),
        Some(&me.session),
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
                crate::domain::events::record_about(&tx, crate::domain::model::EventType::UserSecondFactorRemoved, user, crate::clock::now(), |e| {
                    e.actor(Some(user))
                        .detail("kind", f.kind.as_str())
                        .detail("factor_id", id)
                })?;
                alerts::enqueue_notice(
                    &tx,
                    alerts::SECOND_FACTOR_REMOVED,
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

// ---- admins ----

/// An admin removes every second factor and recovery code of a user in scope: all the
/// user's sessions end, and the user is emailed. Returns how many sessions ended.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.principal.user_id, user_id = %id))]
pub async fn admin_reset(state: &AppState, me: &Authed, id: UserId) -> Result<usize> {
    admin_scope(&me.principal)?;
    let actor = me.principal.clone();
    let mail_enabled = state.mailer.is_some();
    let (factors, ended) = state
        .db
        .run(move |c| -> Result<(usize, usize)> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(target) = db::users::find_by_id(&tx, id)? else {
                return Err(Error::NotFound);
            };
            check_manage_user(&actor, &target)?;
            let now = crate::clock::now();
            let factors = db::second_factors::delete_all_for_user(&tx, id)?;
            let ended = db::sessions::end_all_for_user(
                &tx,
                id,
                None,
                now,
                Some(actor.user_id),
                crate::domain::model::EndReason::TerminatedByAdmin,
            )?;
            crate::domain::events::record(
                &tx,
                crate::domain::events::NewEvent::new(
                    crate::domain::model::EventType::UserSecondFactorsReset,
                    now,
                )
                .user(target.id, target.account_id)
                .actor(Some(actor.user_id))
                .detail("factors_removed", factors)
                .detail("sessions_ended", ended.len()),
            )?;
            crate::domain::events::record_ended(&tx, &ended, now)?;
            let ended = ended.len();
            let notice = Details::notice(&target.email, &target.name, now, None);
            let notice = Details {
                device: "Changed by an administrator".into(),
                ..notice
            };
            alerts::enqueue_notice(&tx, alerts::SECOND_FACTORS_RESET, id, &notice, mail_enabled)?;
            tx.commit()?;
            Ok((factors, ended))
        })
        .await?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!(factors, ended, "second factors reset by an admin");
    Ok(ended)
}

/// An admin requires (or stops requiring) a second factor of everyone in an account in
/// their scope.
pub async fn set_account_policy(
    state: &AppState,
    me: &Authed,
    account: AccountId,
    on: bool,
) -> Result<()> {
    let scope = admin_scope(&me.principal)?;
    if !scope.covers(account) {
        return Err(Error::NotFound);
    }
    let by = me.principal.user_id;
    let done = state
        .db
        .run(move |c| -> Result<bool> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = db::second_factors::required_for_account(&tx, account)?;
            if !db::second_factors::set_required_for_account(&tx, account, on)? {
                return Ok(false);
            }
            if before != on {
                let mut event = crate::domain::events::NewEvent::new(
                    crate::domain::model::EventType::PolicyChanged,
                    crate::clock::now(),
                )
                .actor(Some(by))
                .detail("policy", "require_second_factor")
                .detail("scope", "account")
                .detail("on", on);
                event.account = Some(account);
                crate::domain::events::record(&tx, event)?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await?;
    if !done {
        return Err(Error::NotFound);
    }
    tracing::info!(account = %account, on, "second-factor policy changed");
    Ok(())
}

pub async fn account_policy(state: &AppState, account: AccountId) -> Result<bool> {
    Ok(state
        .db
        .run(move |c| db::second_factors::required_for_account(c, account))
        .await?)
}

/// An admin requires (or stops requiring) a second factor of one user in scope.
pub async fn set_user_policy(state: &AppState, me: &Authed, id: UserId, on: bool) -> Result<()> {
    let actor = me.principal.clone();
    state
        .db
        .run(move |c| -> Result<()> {
            let Some(target) = db::users::find_by_id(c, id)? else {
                return Err(Error::NotFound);
            };
            check_manage_user(&actor, &target)?;
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = db::second_factors::required_of_user_alone(&tx, id)?;
            db::second_factors::set_required_for_user(&tx, id, on)?;
            if before != on {
                crate::domain::events::record(
                    &tx,
                    crate::domain::events::NewEvent::new(
                        crate::domain::model::EventType::PolicyChanged,
                        crate::clock::now(),
                    )
                    .user(id, target.account_id)
                    .actor(Some(actor.user_id))
                    .detail("policy", "require_second_factor")
                    .detail("scope", "user")
                    .detail("on", on),
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_leniently() {
        assert!(matches!(parse_code(" 123 456 "), Some(Code::Totp(c)) if c == "123456"));
        assert!(matches!(parse_code("ABCD-EF23"), Some(Code::Recovery(c)) if c == "abcd-ef23"));
        assert!(matches!(parse_code("abcdef23"), Some(Code::Recovery(c)) if c == "abcd-ef23"));
        assert!(parse_code("12345").is_none());
        assert!(parse_code("abcd-ef01").is_none(), "0 and 1 are not base32");
    }

    #[test]
    fn recovery_codes_have_the_documented_form() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 9);
            assert_eq!(&c[4..5], "-");
            assert!(
                c.bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| BASE32.contains(&b))
            );
        }
    }

    #[test]
    fn totp_accepts_one_step_of_skew_either_way() {
        let key = [7u8; 20];
        let t = totp(&key).unwrap();
        let now = 1_700_000_015;
        let step = now / TOTP_STEP;
        for (offset, ok) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = t.generate(((step + offset) * TOTP_STEP) as u64);
            assert_eq!(matching_step(&key, &code, now).is_some(), ok, "{offset}");
        }
        assert!(otpauth_uri(&base32(&key), "a b@x").contains("Doorman:a%20b%40x?secret="));
    }
}
