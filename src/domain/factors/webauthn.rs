//! WebAuthn with webauthn-rs (SPEC §12): what registering a passkey, the sign-in's
//! passkey steps and "confirm it's you" share. The relying party is
//! `server.public_url`: its host is the RP id and its origin the only origin accepted,
//! so passkeys work only where people reach Doorman at that address (https, or http on
//! localhost).
//!
//! A ceremony's state (the challenge the browser must sign) is kept server side in
//! `login_challenges`, never in the browser.

use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use crate::db::challenges::NewChallenge;
use crate::db::{self, DbError};
use crate::domain::attempts::challenges::{self, Holder};
use crate::domain::attempts::limits::Subject;
use crate::domain::attempts::{Attempt, record_failure, reserve, with_account};
use crate::domain::place::locate;
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{Authed, ClientInfo, UserId};
use crate::state::AppState;

const STEP_UP: &str = "passkey_step_up";
/// How long a browser may take over a ceremony.
const CEREMONY_TTL: i64 = 5 * 60;
/// A browser's answer is a few kilobytes; more is not one.
const MAX_CREDENTIAL_JSON: usize = 64 * 1024;

pub(crate) fn webauthn(state: &AppState) -> Result<Webauthn> {
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
pub(crate) fn user_handle(state: &AppState, user: UserId) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"doorman-passkey-user\0");
    h.update(state.link_key.as_slice());
    h.update(user.0.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

pub(crate) fn passkeys_of(
    c: &rusqlite::Connection,
    user: UserId,
) -> Result<Vec<(i64, Passkey)>, DbError> {
    Ok(db::second_factors::list_for_user(c, user)?
        .into_iter()
        .filter(|f| f.active && f.kind == "passkey")
        .filter_map(|f| {
            let pk = serde_json::from_str::<Passkey>(f.credential.as_deref()?).ok()?;
            Some((f.id, pk))
        })
        .collect())
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
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
pub(crate) async fn store_ceremony(
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
            challenges::store(
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

pub(crate) fn bad_answer() -> Error {
    Error::invalid(
        "passkey_refused",
        "The passkey's answer could not be verified. Please try again.",
    )
}

/// Runs a passkey check under the sign-in limits of `email` and the client's address.
pub(crate) async fn verify_limited<T>(
    state: &AppState,
    email: &str,
    user: Option<UserId>,
    client: &ClientInfo,
    check: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let now = crate::clock::now();
    let device = crate::ua::parse(&client.user_agent);
    let location = locate(state, client.ip);
    let attempt = Attempt::new(email, &location, client, &device, None);
    let subject = Subject {
        email,
        ip: client.ip,
        known_device: None,
    };
    let user = with_account(state, user).await;
    let reservation = reserve(state, &subject, user, &attempt, now).await?;
    match check() {
        Ok(v) => {
            reservation.succeeded();
            Ok(v)
        }
        Err(err) => {
            reservation.failed();
            state.metrics.count_sign_in("failure");
            record_failure(state, attempt, user, "passkey_refused").await;
            Err(err)
        }
    }
}

/// Keeps the passkey's signature counter (and last use) up to date after a use.
pub(crate) async fn record_passkey_use(
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

/// Starts a WebAuthn authentication with the passkeys of `user` (a second step, a
/// "confirm it's you"); `None` when they have none.
pub async fn start_authentication(
    state: &AppState,
    user: UserId,
) -> Result<Option<(RequestChallengeResponse, PasskeyAuthentication)>> {
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
    let started = webauthn(state)?
        .start_passkey_authentication(&keys)
        .map_err(|e| Error::Internal(format!("WebAuthn: {e}")))?;
    Ok(Some(started))
}

/// A ceremony with which the signed-in person confirms it is them with one of their
/// passkeys; `None` when they have none.
pub async fn step_up_ceremony(state: &AppState, me: &Authed) -> Result<Option<Ceremony>> {
    let user = me.principal.user_id;
    let Some((rcr, auth)) = start_authentication(state, user).await? else {
        return Ok(None);
    };
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
    let Some(found) = challenges::find_for(state, token, STEP_UP).await? else {
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
