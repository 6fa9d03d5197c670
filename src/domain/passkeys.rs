//! Passkeys and security keys (WebAuthn, SPEC §12), with webauthn-rs: registering them
//! (several, named), using one as the second step after the password, and signing in
//! with a discoverable passkey alone. The relying party is `server.public_url`: its
//! host is the RP id and its origin the only origin accepted, so passkeys work only
//! where people reach Doorman at that address (https, or http on localhost).
//!
//! A ceremony's state (the challenge the browser must sign) is kept server side in
//! `login_challenges`, never in the browser.

use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::instrument;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use crate::db::challenges::{ChallengeRow, NewChallenge};
use crate::db::second_factors::NewFactor;
use crate::db::{self, DbError};
use crate::domain::alerts::{self, Details};
use crate::domain::auth::{self, Attempt, Authed, ClientInfo, SessionContext, SignedIn};
use crate::domain::model::{AuthMethod, AuthMethods, UserId, UserStatus};
use crate::domain::ratelimit::Subject;
use crate::domain::second_step::{self, Holder, Purpose};
use crate::domain::{second_factors, step_up, tokens};
use crate::error::{Error, Result};
use crate::state::AppState;

const REGISTER: &str = "passkey_register";
const LOGIN: &str = "passkey_login";
const STEP_UP: &str = "passkey_step_up";
/// How long a browser may take over a ceremony.
const CEREMONY_TTL: i64 = 5 * 60;
/// A browser's answer is a few kilobytes; more is not one.
const MAX_CREDENTIAL_JSON: usize = 64 * 1024;

fn webauthn(state: &AppState) -> Result<Webauthn> {
    let url = Url::parse(state.config.server.public_base())
        .map_err(|e| Error::Internal(format!("server.public_url: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| Error::Internal("server.public_url has no host".into()))?
        .to_string();
    WebauthnBuilder::new(&host, &url)
        .and_then(|b| b.rp_name("Doorman").build())
        .map_err(|e| Error::Internal(format!("WebAuthn: {e}")))
}

/// Whether passkeys can work here: `server.public_url` names a host browsers accept as
/// a relying party.
pub fn enabled(state: &AppState) -> bool {
    webauthn(state).is_ok()
}

/// The WebAuthn user handle of a user: stable for the install, meaningless elsewhere.
fn user_handle(state: &AppState, user: UserId) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"doorman-passkey-user\0");
    h.update(state.link_key.as_slice());
    h.update(user.0.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

fn passkeys_of(c: &rusqlite::Connection, user: UserId) -> Result<Vec<(i64, Passkey)>, DbError> {
    Ok(db::second_factors::list_for_user(c, user)?
        .into_iter()
        .filter(|f| f.active && f.kind == "passkey")
        .filter_map(|f| {
            let pk = serde_json::from_str::<Passkey>(f.credential.as_deref()?).ok()?;
            Some((f.id, pk))
        })
        .collect())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    if text.len() > MAX_CREDENTIAL_JSON {
        return Err(Error::InvalidCode);
    }
    serde_json::from_str(text).map_err(|_| Error::InvalidCode)
}

/// A ceremony for the browser: the options to pass to `navigator.credentials`, and
/// the token that finds its state again.
pub struct Ceremony {
    pub token: String,
    pub options: String,
}

/// Keeps a ceremony's state. A signed-in person's ceremony is theirs (and counts against
/// their budget of pending ones); a passwordless sign-in's belongs to no one yet, and
/// counts against its address's.
async fn store_ceremony(
    state: &AppState,
    purpose: &'static str,
    holder: Holder,
    label: &str,
    device_id: &str,
    application: &str,
    ceremony_state: String,
) -> Result<String> {
    let token = tokens::new_token();
    let hash = tokens::hash_token(&token);
    let now = crate::clock::now();
    let user = match holder {
        Holder::Person(user) => Some(user),
        Holder::Address(_) => None,
    };
    let (label, device, app, holder) = (
        label.to_string(),
        device_id.to_string(),
        application.to_string(),
        holder.key(),
    );
    state
        .db
        .run(move |c| {
            second_step::store(
                c,
                &NewChallenge {
                    token_hash: &hash,
                    purpose,
                    user_id: user,
                    credentials_version: 0,
                    application: &app,
                    device_id: &device,
                    target: &label,
                    state: Some(&ceremony_state),
                    limit_key: &holder,
                    now,
                    expires_at: now + CEREMONY_TTL,
                },
            )
        })
        .await?;
    Ok(token)
}

// ---- registering ----

/// Starts registering a passkey named `name` for the signed-in person, after a fresh
/// "confirm it's you". The passkey is asked to be discoverable, so that it can also
/// sign in on its own.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn start_registration(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    name: &str,
    proof: step_up::Proof,
) -> Result<Ceremony> {
    let name = second_factors::check_factor_name(name, "Passkey")?;
    step_up::require(state, me, client, proof).await?;
    let w = webauthn(state)?;
    let user = me.principal.user_id;
    let existing = state.db.run(move |c| passkeys_of(c, user)).await?;
    let exclude = existing.iter().map(|(_, p)| p.cred_id().clone()).collect();
    let (ccr, reg) = w
        .start_passkey_registration(
            user_handle(state, user),
            &me.principal.email,
            &me.principal.name,
            Some(exclude),
        )
        .map_err(|e| Error::Internal(format!("WebAuthn: {e}")))?;
    let mut options: Value =
        serde_json::to_value(&ccr).map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(sel) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        sel.insert("residentKey".into(), Value::from("required"));
        sel.insert("requireResidentKey".into(), Value::from(true));
    }
    let token = store_ceremony(
        state,
        REGISTER,
        Holder::Person(user),
        &name,
        "",
        "",
        to_json(&reg)?,
    )
    .await?;
    Ok(Ceremony {
        token,
        options: options.to_string(),
    })
}

/// Finishes a registration with the browser's answer: the passkey is active at once.
/// The first factor comes with recovery codes; the person is emailed.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn finish_registration(
    state: &AppState,
    me: &Authed,
    token: &str,
    credential: &str,
) -> Result<Option<Vec<String>>> {
    let Some(found) = second_step::find_for(state, token, REGISTER).await? else {
        return Err(Error::invalid(
            "ceremony_expired",
            "Adding the passkey took too long. Please try again.",
        ));
    };
    let ch = found.challenge;
    let user = me.principal.user_id;
    if found.user.id != user {
        return Err(Error::NotFound);
    }
    let reg: PasskeyRegistration = from_json(ch.state.as_deref().unwrap_or_default())?;
    let answer: RegisterPublicKeyCredential = from_json(credential).map_err(|_| bad_answer())?;
    let passkey = webauthn(state)?
        .finish_passkey_registration(&answer, &reg)
        .map_err(|e| {
            tracing::info!(%e, "passkey registration refused");
            bad_answer()
        })?;
    let stored = to_json(&passkey)?;
    let cred_id = passkey.cred_id().as_ref().to_vec();
    let now = crate::clock::now();
    let notice = Details::notice(
        &me.principal.email,
        &me.principal.name,
        now,
        Some(&me.session),
    );
    let mail_enabled = state.mailer.is_some();
    let (cid, name) = (ch.id, ch.target.clone());
    // A session held at enrolment that adds it now carries it (SPEC §19).
    let carried = me.enrolment_pending.then(|| {
        (
            me.session.pk,
            me.session
                .auth_methods
                .with(crate::domain::model::AuthMethod::Passkey)
                .to_text(),
        )
    });
    let codes = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if !db::challenges::delete(&tx, cid)? {
                return Err(bad_answer());
            }
            second_factors::room_for_one_more(&tx, user)?;
            db::second_factors::insert(
                &tx,
                &NewFactor {
                    user_id: user,
                    kind: "passkey",
                    name: &name,
                    secret: None,
                    credential_id: Some(&cred_id),
                    credential: Some(&stored),
                    active: true,
                    now,
                },
            )?;
            let codes = second_factors::codes_for_first_factor(&tx, user)?;
            if let Some((pk, methods)) = &carried {
                db::sessions::add_auth_method(&tx, *pk, methods)?;
            }
            crate::domain::events::record_about(
                &tx,
                crate::domain::model::EventType::UserSecondFactorAdded,
                user,
                now,
                |e| {
                    e.actor(Some(user))
                        .detail("kind", "passkey")
                        .detail("name", name.as_str())
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
            Ok(codes)
        })
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                Error::conflict("passkey_exists", "That passkey is registered already.")
            } else {
                e
            }
        })?;
    if mail_enabled {
        state.mail_wakeup.notify_one();
    }
    tracing::info!("passkey added");
    Ok(codes)
}

fn bad_answer() -> Error {
    Error::invalid(
        "passkey_refused",
        "The passkey's answer could not be verified. Please try again.",
    )
}

// ---- the second step ----

/// The options of a passkey second step for the sign-in of `token`, or `None` when the
/// person has no passkey. Each call starts a new ceremony for that sign-in.
pub async fn second_step_options(state: &AppState, token: &str) -> Result<Option<String>> {
    let Some(found) = second_step::find(state, token, Purpose::SecondFactor).await? else {
        return Ok(None);
    };
    let user = found.user.id;
    let keys: Vec<Passkey> = state
        .db
        .run(move |c| passkeys_of(c, user))
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (rcr, auth) = webauthn(state)?
        .start_passkey_authentication(&keys)
        .map_err(|e| Error::Internal(format!("WebAuthn: {e}")))?;
    let (cid, st) = (found.challenge.id, to_json(&auth)?);
    state
        .db
        .run(move |c| db::challenges::set_state(c, cid, &st))
        .await?;
    Ok(Some(to_json(&rcr)?))
}

/// Completes a second step with a passkey's answer. A refused answer counts toward the
/// sign-in limits, as a wrong code does.
pub async fn complete_second_step(
    state: &AppState,
    token: &str,
    credential: &str,
    client: ClientInfo,
) -> Result<SignedIn> {
    let started = std::time::Instant::now();
    let Some(found) = second_step::find(state, token, Purpose::SecondFactor).await? else {
        return Err(Error::InvalidCode);
    };
    let (ch, user) = (found.challenge, found.user);
    let verified = verify_limited(state, &user.email, Some(user.id), &client, || {
        let auth: PasskeyAuthentication = from_json(ch.state.as_deref().unwrap_or_default())?;
        let answer: PublicKeyCredential = from_json(credential)?;
        let result = webauthn(state)?
            .finish_passkey_authentication(&answer, &auth)
            .map_err(|_| Error::InvalidCode)?;
        Ok(result)
    })
    .await?;
    record_passkey_use(state, user.id, verified).await?;
    second_step::finish(
        state,
        ch,
        user,
        client,
        AuthMethods::of(&[AuthMethod::Password, AuthMethod::Passkey]),
        started,
    )
    .await
}

/// Runs a passkey check under the sign-in limits of `email` and the client's address.
async fn verify_limited<T>(
    state: &AppState,
    email: &str,
    user: Option<UserId>,
    client: &ClientInfo,
    check: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let now = crate::clock::now();
    let device = crate::ua::parse(&client.user_agent);
    let location = auth::locate(state, client.ip);
    let attempt = Attempt::new(email, &location, client, &device, None);
    let subject = Subject {
        email,
        ip: client.ip,
        known_device: None,
    };
    let user = auth::with_account(state, user).await;
    let reservation = auth::reserve(state, &subject, user, &attempt, now).await?;
    match check() {
        Ok(v) => {
            reservation.succeeded();
            Ok(v)
        }
        Err(err) => {
            reservation.failed();
            state.metrics.count_sign_in("failure");
            auth::record_failure(state, attempt, user, "passkey_refused").await;
            Err(err)
        }
    }
}

/// Keeps the passkey's signature counter (and last use) up to date after a use.
async fn record_passkey_use(
    state: &AppState,
    user: UserId,
    result: webauthn_rs::prelude::AuthenticationResult,
) -> Result<()> {
    let now = crate::clock::now();
    state
        .db
        .run(move |c| -> Result<()> {
            for (id, mut pk) in passkeys_of(c, user)? {
                if pk.cred_id() == result.cred_id() {
                    let changed = pk.update_credential(&result).unwrap_or(false);
                    let stored = if changed { Some(to_json(&pk)?) } else { None };
                    db::second_factors::record_use(c, id, stored.as_deref(), now)?;
                    return Ok(());
                }
            }
            Err(Error::InvalidCode)
        })
        .await
}

// ---- "confirm it's you" with a passkey ----

/// A ceremony with which the signed-in person confirms it is them with one of their
/// passkeys; `None` when they have none.
pub async fn step_up_ceremony(state: &AppState, me: &Authed) -> Result<Option<Ceremony>> {
    let user = me.principal.user_id;
    let keys: Vec<Passkey> = state
        .db
        .run(move |c| passkeys_of(c, user))
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (rcr, auth) = webauthn(state)?
        .start_passkey_authentication(&keys)
        .map_err(|e| Error::Internal(format!("WebAuthn: {e}")))?;
    let token = store_ceremony(
        state,
        STEP_UP,
        Holder::Person(user),
        "",
        "",
        "",
        to_json(&auth)?,
    )
    .await?;
    Ok(Some(Ceremony {
        token,
        options: to_json(&rcr)?,
    }))
}

/// Checks a passkey's answer to a step-up ceremony of the same person, under the
/// sign-in limits.
pub(crate) async fn check_step_up(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    token: &str,
    credential: &str,
) -> Result<()> {
    let Some(found) = second_step::find_for(state, token, STEP_UP).await? else {
        return Err(Error::InvalidCode);
    };
    let user = me.principal.user_id;
    if found.user.id != user {
        return Err(Error::InvalidCode);
    }
    let ch = found.challenge;
    let result = verify_limited(state, &me.principal.email, Some(user), client, || {
        let auth: PasskeyAuthentication = from_json(ch.state.as_deref().unwrap_or_default())?;
        let answer: PublicKeyCredential = from_json(credential)?;
        webauthn(state)?
            .finish_passkey_authentication(&answer, &auth)
            .map_err(|_| Error::InvalidCode)
    })
    .await?;
    let cid = ch.id;
    if !state
        .db
        .run(move |c| db::challenges::delete(c, cid))
        .await?
    {
        return Err(Error::InvalidCode);
    }
    record_passkey_use(state, user, result).await
}

// ---- signing in with a passkey alone ----

/// Starts a passwordless sign-in: any discoverable passkey of this install may answer.
/// Anyone may start one, so the ceremonies pending from one address (IPv6: its /64) are
/// bounded, and so are all of them ([`second_step::MAX_PENDING_PER_HOLDER`]).
pub async fn begin_passwordless(
    state: &AppState,
    application: &str,
    target: &str,
    device_id: &str,
    from: std::net::IpAddr,
) -> Result<Ceremony> {
    let (rcr, auth) = webauthn(state)?
        .start_discoverable_authentication()
        .map_err(|e| Error::Internal(format!("WebAuthn: {e}")))?;
    let mut options: Value =
        serde_json::to_value(&rcr).map_err(|e| Error::Internal(e.to_string()))?;
    // A button press, not the autofill list: the browser's own dialog.
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    let token = store_ceremony(
        state,
        LOGIN,
        Holder::Address(from),
        target,
        device_id,
        application,
        to_json(&auth)?,
    )
    .await?;
    Ok(Ceremony {
        token,
        options: options.to_string(),
    })
}

/// The ceremony of a passwordless sign-in, unknown, used or expired ones being `None`.
async fn find_login(state: &AppState, token: &str) -> Result<Option<ChallengeRow>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let hash = tokens::hash_token(token);
    let now = crate::clock::now();
    Ok(state
        .db
        .run(move |c| db::challenges::find(c, &hash, LOGIN, now))
        .await?)
}

/// Where a passwordless sign-in goes once done (kept with its ceremony).
pub async fn passwordless_target(state: &AppState, token: &str) -> Result<Option<String>> {
    Ok(find_login(state, token).await?.map(|ch| ch.target))
}

/// Completes a passwordless sign-in: the passkey names its user; the session records
/// `passkey` alone.
pub async fn complete_passwordless(
    state: &AppState,
    token: &str,
    credential: &str,
    client: ClientInfo,
) -> Result<SignedIn> {
    let started = std::time::Instant::now();
    let Some(ch) = find_login(state, token).await? else {
        return Err(Error::InvalidCode);
    };
    let answer: PublicKeyCredential = from_json(credential)?;
    let w = webauthn(state)?;
    let (handle, cred_id) = w
        .identify_discoverable_authentication(&answer)
        .map_err(|_| Error::InvalidCode)?;
    let cred_id = cred_id.to_vec();
    let presented = ch.device_id.clone();
    let found = state
        .db
        .run(move |c| -> Result<_> {
            let Some(f) = db::second_factors::find_by_credential_id(c, &cred_id)? else {
                return Ok(None);
            };
            let Some(user) = db::users::find_by_id(c, f.user_id)? else {
                return Ok(None);
            };
            // The browser's device id counts only if Doorman gave it to this person
            // (SPEC §19); else the session gets a new one.
            let device = if tokens::is_device_id(&presented)
                && db::devices::is_known(c, user.id, &presented)?
            {
                presented
            } else {
                tokens::new_device_id()
            };
            let version = db::users::find_credentials(c, &user.email)?
                .map(|(_, cr)| cr.version)
                .unwrap_or_default();
            let pk = f
                .credential
                .as_deref()
                .and_then(|t| serde_json::from_str::<Passkey>(t).ok());
            Ok(pk.map(|pk| (user, version, pk, device)))
        })
        .await?;
    let Some((user, version, passkey, device_id)) = found else {
        return Err(Error::InvalidCode);
    };
    let email = user.email.clone();
    let result = verify_limited(state, &email, Some(user.id), &client, || {
        if handle != user_handle(state, user.id) || user.status != UserStatus::Active {
            return Err(Error::InvalidCode);
        }
        let auth: DiscoverableAuthentication = from_json(ch.state.as_deref().unwrap_or_default())?;
        w.finish_discoverable_authentication(&answer, auth, &[DiscoverableKey::from(&passkey)])
            .map_err(|_| Error::InvalidCode)
    })
    .await?;
    let cid = ch.id;
    if !state
        .db
        .run(move |c| db::challenges::delete(c, cid))
        .await?
    {
        return Err(Error::InvalidCode);
    }
    record_passkey_use(state, user.id, result).await?;
    auth::store_session(
        state,
        user,
        version,
        SessionContext {
            device_id,
            application: ch.application,
            client,
            methods: AuthMethods::of(&[AuthMethod::Passkey]),
        },
        started,
    )
    .await
}
