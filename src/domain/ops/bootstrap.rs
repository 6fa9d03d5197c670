//! First start: while no owner exists, either create one from `bootstrap.email` /
//! `bootstrap.password`, or make the one-time setup token of the `/setup?token=…` page
//! where the operator creates it. The token works once, and not at all once any owner
//! exists (however that owner was made).

use crate::domain::people::users::{self, CreateUser};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{Role, User};
use crate::state::AppState;

/// Called once at start. Returns the one-time setup token when the operator must create
/// the owner (on the setup page).
pub async fn first_start(state: &AppState) -> Option<String> {
    match users::owner_exists(state).await {
        Ok(false) => {}
        Ok(true) => return None,
        Err(err) => {
            tracing::error!(%err, "cannot count owners");
            return None;
        }
    }
    let b = &state.config.bootstrap;
    if !b.email.is_empty() {
        let req = CreateUser {
            account: b.account.clone(),
            email: b.email.clone(),
            name: "Owner".into(),
            role: Role::Owner,
            password: b.password.clone(),
        };
        match users::create(state, req).await {
            Ok(u) => {
                tracing::info!(user_id = %u.id, email = %u.email, "created owner from bootstrap settings")
            }
            Err(err) => tracing::error!(%err, "cannot create the bootstrap owner"),
        }
        return None;
    }
    let token = tokens::new_token();
    if let Ok(mut slot) = state.setup_token.lock() {
        *slot = Some(token.clone());
    }
    Some(token)
}

fn token_matches(state: &AppState, given: &str) -> bool {
    match state.setup_token.lock() {
        Ok(slot) => slot
            .as_deref()
            .is_some_and(|t| tokens::constant_time_eq(t.as_bytes(), given.as_bytes())),
        Err(_) => false,
    }
}

/// Whether the setup page is there for `token`: it is the token, and no owner exists.
pub async fn setup_open(state: &AppState, token: &str) -> bool {
    token_matches(state, token) && matches!(users::owner_exists(state).await, Ok(false))
}

/// Takes the setup token out of its slot when `given` is it: of concurrent requests
/// with the right token, exactly one gets it.
fn take_token(state: &AppState, given: &str) -> Option<String> {
    let mut slot = state.setup_token.lock().ok()?;
    let matches = slot
        .as_deref()
        .is_some_and(|t| tokens::constant_time_eq(t.as_bytes(), given.as_bytes()));
    if matches { slot.take() } else { None }
}

fn put_back(state: &AppState, token: String) {
    if let Ok(mut slot) = state.setup_token.lock() {
        *slot = Some(token);
    }
}

/// Creates the owner with the setup token. The token is spent by the first request that
/// presents it; given back only when the form was refused (bad input), so the operator
/// can correct it. `NotFound` for a wrong or spent token, or when an owner exists.
pub async fn create_owner(state: &AppState, token: &str, req: CreateUser) -> Result<User> {
    let Some(token) = take_token(state, token) else {
        return Err(Error::NotFound);
    };
    let req = CreateUser {
        role: Role::Owner,
        ..req
    };
    match users::create_first_owner(state, req).await {
        Ok(user) => Ok(user),
        Err(err @ (Error::Invalid { .. } | Error::Conflict { .. })) => {
            put_back(state, token);
            Err(err)
        }
        Err(err) => Err(err),
    }
}
