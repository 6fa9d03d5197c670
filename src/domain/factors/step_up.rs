//! "Confirm it's you" (SPEC §12): sensitive actions need the person's password, or a
//! code of their second factor, entered within the last `security.step_up_window` in
//! the session making the request. The sign-in itself counts; so does a proof sent with
//! the request. Each check of a password or a code shares the sign-in limits.

use tracing::instrument;

use crate::db;
use crate::domain::attempts::check_current_password;
use crate::domain::factors::codes::{Prover, check_code};
use crate::domain::factors::webauthn;
use crate::error::{Error, Result};
use crate::model::{Authed, ClientInfo};
use crate::state::AppState;

/// What a request offers as proof, if anything.
#[derive(Default)]
pub enum Proof {
    #[default]
    None,
    Password(String),
    /// A TOTP or recovery code.
    Code(String),
    /// A passkey's answer to the step-up ceremony of `token` (pages only).
    Passkey {
        token: String,
        credential: String,
    },
}

impl Proof {
    /// From a request's optional fields: the password when given, else the code.
    pub fn from_fields(password: Option<String>, code: Option<String>) -> Self {
        match (
            password.filter(|p| !p.is_empty()),
            code.filter(|c| !c.trim().is_empty()),
        ) {
            (Some(p), _) => Proof::Password(p),
            (None, Some(c)) => Proof::Code(c),
            (None, None) => Proof::None,
        }
    }
}

/// Whether the session's person proved it was them recently enough.
pub fn is_fresh(state: &AppState, me: &Authed) -> bool {
    let window = state.config.security.step_up_window.as_secs() as i64;
    crate::clock::now() - me.session.verified_at < window
}

/// Lets a sensitive action go ahead: at once when the session is fresh, else after
/// checking the proof the request carries (which then makes the session fresh);
/// `StepUpRequired` when there is none.
pub async fn require(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    proof: Proof,
) -> Result<()> {
    if is_fresh(state, me) {
        return Ok(());
    }
    if matches!(proof, Proof::None) {
        return Err(Error::StepUpRequired);
    }
    step_up(state, me, client, proof).await
}

/// Checks the proof and marks the session as confirmed now (`POST /api/v1/me/step-up`,
/// the pages' "Confirm it's you").
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn step_up(
    state: &AppState,
    me: &Authed,
    client: &ClientInfo,
    proof: Proof,
) -> Result<()> {
    match proof {
        Proof::None => {
            return Err(Error::invalid(
                "missing_proof",
                "Send your password or a code from your second factor.",
            ));
        }
        Proof::Password(p) => check_current_password(state, me, client, p).await?,
        Proof::Passkey { token, credential } => {
            webauthn::check_step_up(state, me, client, &token, &credential).await?
        }
        Proof::Code(code) => {
            let p = &me.principal;
            check_code(
                state,
                &Prover {
                    user: p.user_id,
                    email: &p.email,
                    name: &p.name,
                    known_device: None,
                    client,
                },
                &code,
            )
            .await?;
        }
    }
    mark_fresh(state, me).await
}

/// Records that the session's person just proved it was them (also after a passkey).
pub(crate) async fn mark_fresh(state: &AppState, me: &Authed) -> Result<()> {
    let pk = me.session.pk;
    state
        .db
        .run(move |c| db::sessions::update_verified_at(c, pk, crate::clock::now()))
        .await?;
    tracing::info!("step-up granted");
    Ok(())
}
