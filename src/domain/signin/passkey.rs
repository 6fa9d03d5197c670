//! Signing in with a passkey (SPEC §12): as the second step after the password, or
//! alone with a discoverable passkey.

use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PublicKeyCredential,
};

use crate::db;
use crate::db::challenges::ChallengeRow;
use crate::domain::attempts::challenges::Holder;
use crate::domain::factors::webauthn::{
    Ceremony, from_json, record_passkey_use, start_authentication, store_ceremony, to_json,
    user_handle, verify_limited, webauthn,
};
use crate::domain::signin::issue::{SessionContext, SignedIn, store_session};
use crate::domain::signin::second_step::{self, Purpose};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{AuthMethod, AuthMethods, ClientInfo, UserStatus};
use crate::state::AppState;

const LOGIN: &str = "passkey_login";

/// The options of a passkey second step for the sign-in of `token`, or `None` when the
/// person has no passkey. Each call starts a new ceremony for that sign-in.
pub async fn second_step_options(state: &AppState, token: &str) -> Result<Option<String>> {
    let Some(found) = second_step::find(state, token, Purpose::SecondFactor).await? else {
        return Ok(None);
    };
    let Some((rcr, auth)) = start_authentication(state, found.user.id).await? else {
        return Ok(None);
    };
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

/// Starts a passwordless sign-in: any discoverable passkey of this install may answer.
/// Anyone may start one, so the ceremonies pending from one address (IPv6: its /64) are
/// bounded, and so are all of them ([`MAX_PENDING_PER_HOLDER`](crate::domain::attempts::challenges::MAX_PENDING_PER_HOLDER)).
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
    store_session(
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
