//! Registering passkeys and security keys (SPEC §12): several, named, each asked to
//! be discoverable so that it can also sign in on its own. The WebAuthn parts shared
//! with the sign-in and step-up are in `webauthn`.

use serde_json::Value;
use tracing::instrument;
use webauthn_rs::prelude::{PasskeyRegistration, RegisterPublicKeyCredential};

use crate::db;
use crate::db::second_factors::NewFactor;
use crate::domain::alerts::notices::{self, Details};
use crate::domain::attempts::challenges::{self, Holder};
use crate::domain::factors::webauthn::{
    Ceremony, bad_answer, from_json, passkeys_of, store_ceremony, to_json, user_handle, webauthn,
};
use crate::domain::factors::{manage, step_up};
use crate::error::{Error, Result};
use crate::model::{Authed, ClientInfo};
use crate::state::AppState;

const REGISTER: &str = "passkey_register";

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
    let name = manage::check_factor_name(name, "Passkey")?;
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
    let Some(found) = challenges::find_for(state, token, REGISTER).await? else {
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
        Some(&crate::domain::alerts::notices::current_session(state, me).await?),
    );
    let mail_enabled = state.mailer.is_some();
    let (cid, name) = (ch.id, ch.target.clone());
    // A session held at enrolment that adds it now carries it (SPEC §19).
    let carried = me.enrolment_pending.then(|| {
        (
            me.session.pk,
            me.session
                .auth_methods
                .with(crate::model::AuthMethod::Passkey)
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
            manage::room_for_one_more(&tx, user)?;
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
            let codes = manage::codes_for_first_factor(&tx, user)?;
            if let Some((pk, methods)) = &carried {
                db::sessions::add_auth_method(&tx, *pk, methods)?;
            }
            crate::domain::audit::events::record_about(
                &tx,
                crate::model::EventType::UserSecondFactorAdded,
                user,
                now,
                |e| {
                    e.actor(Some(user))
                        .detail("kind", "passkey")
                        .detail("name", name.as_str())
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
