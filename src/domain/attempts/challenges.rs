//! Challenges in progress (SPEC §12, §19): a sign-in's second step, an enrolment, a
//! passkey ceremony. Each is kept server side under the hash of its token, and
//! counted against its holder's budget of pending ones, so that anonymous requests
//! cannot grow the database.

use std::net::IpAddr;

use rusqlite::Connection;

use crate::db::challenges::{ChallengeRow, NewChallenge};
use crate::db::{self, DbError};
use crate::domain::tokens;
use crate::error::Result;
use crate::model::{User, UserId, UserStatus};
use crate::state::AppState;

/// Pending challenges of one kind kept per holder (SPEC §19: anonymous requests cannot
/// grow the database): a client address (an IPv6 address by its /64) before sign-in, a
/// person for a signed-in ceremony. Past it, the holder's oldest goes first. A small
/// team's office behind one address starts far fewer sign-ins within a challenge's few
/// minutes.
pub const MAX_PENDING_PER_HOLDER: i64 = 20;
/// Pending challenges of one kind kept in all; past it, the oldest go first. Each kind
/// has its own, so that a flood of anonymous passkey sign-ins never pushes out the
/// second steps of people who gave their password.
pub const MAX_PENDING: i64 = 10_000;

/// Whose budget of pending challenges a new one counts against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Holder {
    /// A sign-in in progress, from this client address.
    Address(IpAddr),
    /// A ceremony of a signed-in person.
    Person(UserId),
}

impl Holder {
    pub(crate) fn key(self) -> String {
        match self {
            Holder::Address(ip) => format!("ip:{}", crate::domain::attempts::limits::ip_key(ip)),
            Holder::Person(user) => format!("user:{user}"),
        }
    }
}

/// Stores a challenge, and drops the oldest of its kind beyond the limits, in one
/// transaction.
pub(crate) fn store(c: &mut Connection, new: &NewChallenge<'_>) -> Result<i64, DbError> {
    let tx = c.transaction()?;
    let id = db::challenges::insert(&tx, new)?;
    let dropped = db::challenges::delete_oldest_beyond(
        &tx,
        new.purpose,
        new.limit_key,
        MAX_PENDING_PER_HOLDER,
        MAX_PENDING,
    )?;
    tx.commit()?;
    if dropped > 0 {
        tracing::debug!(
            purpose = new.purpose,
            dropped,
            "too many pending challenges; the oldest dropped"
        );
    }
    Ok(id)
}

/// A live challenge and its (still active) user.
pub struct Found {
    pub challenge: ChallengeRow,
    pub user: User,
    pub methods: Vec<&'static str>,
}

/// The live challenge of `token` for `purpose`, or `None` (unknown, used, expired, or
/// its user disabled since).
pub(crate) async fn find_for(
    state: &AppState,
    token: &str,
    purpose: &'static str,
) -> Result<Option<Found>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let hash = tokens::hash_token(token);
    let now = crate::clock::now();
    Ok(state
        .db
        .run(move |c| -> Result<_, DbError> {
            let Some(ch) = db::challenges::find(c, &hash, purpose, now)? else {
                return Ok(None);
            };
            let Some(uid) = ch.user_id else {
                return Ok(Some((ch, None, Vec::new())));
            };
            let user = db::users::find_by_id(c, uid)?.filter(|u| u.status == UserStatus::Active);
            let methods = methods_of(c, uid)?;
            Ok(Some((ch, user, methods)))
        })
        .await?
        .and_then(|(challenge, user, methods)| {
            Some(Found {
                challenge,
                user: user?,
                methods,
            })
        }))
}

pub(crate) fn methods_of(c: &Connection, user: UserId) -> Result<Vec<&'static str>, DbError> {
    let factors = db::second_factors::list_for_user(c, user)?;
    let has = |kind: &str| factors.iter().any(|f| f.active && f.kind == kind);
    let mut methods = Vec::with_capacity(3);
    if has("totp") {
        methods.push("totp");
    }
    if has("passkey") {
        methods.push("passkey");
    }
    methods.push("recovery_code");
    Ok(methods)
}
