//! The check every authenticated request makes (SPEC §3): the session of the presented
//! token must exist, not have ended, not have expired, and belong to an active user.
//! No answer is kept: storage may recall the session's row instead of reading it again,
//! but only while nothing at all has been committed since it was read
//! ([`db::Pooled`]), so an ended session is refused on its very next request. Last
//! activity is written at most once per `sessions.touch_interval`.

use std::net::IpAddr;

use rusqlite::Connection;

use crate::db::{self, Place, Pooled};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{Authed, Principal, SessionView};
use crate::model::{EndReason, UserStatus};
use crate::state::AppState;

/// Checks a presented token (see the module comment).
pub async fn authenticate(state: &AppState, token: &str) -> Result<Authed> {
    authenticate_from(state, token, || None).await
}

/// [`authenticate`] for a request from `from()`, the client's address: asked only when
/// the session's activity was written, when a session used from another country than it
/// signed in from is noticed (SPEC §14, see [`moves`](crate::domain::alerts::moves)).
pub async fn authenticate_from(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<IpAddr>,
) -> Result<Authed> {
    check_alone(state, token, from, Held::Refused, Read::Check).await
}

/// [`authenticate_from`] that also hands out a session held at enrolment
/// ([`Authed::enrolment_pending`]): for the pages and endpoints that add a second factor.
/// Everywhere else such a session is refused with [`Error::EnrolmentRequired`].
pub async fn authenticate_held(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<IpAddr>,
) -> Result<Authed> {
    check_alone(state, token, from, Held::Allowed, Read::Check).await
}

/// Whether a session held at enrolment is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Allowed,
    Refused,
}

/// Authenticates, then runs `then` with the caller on the same connection, in one
/// [`Db::read_or_block`](crate::db::Db::read_or_block) read: usually inline, on the
/// blocking pool when the session's activity is due to be written or `then` answers
/// `None` (too much to do inline). `then` must answer for [`Place::Blocking`].
pub async fn authenticate_then<T, F>(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<IpAddr>,
    then: F,
) -> Result<(Authed, T)>
where
    T: Send + 'static,
    F: Fn(&Pooled, &Authed, Place) -> Result<Option<T>> + Send + 'static,
{
    check(state, token, from, Held::Refused, Read::Then, then).await
}

/// [`authenticate_from`] for a forward-auth request for a protected application: with
/// the applications the session was used with (`CurrentSession::applications_used`).
pub async fn authenticate_for_app(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<IpAddr>,
) -> Result<Authed> {
    check_alone(state, token, from, Held::Refused, Read::Uses).await
}

/// What the check reads of the session besides what deciding needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Nothing more.
    Check,
    /// Nothing more, and statements of the caller's follow on the same connection: run
    /// inline, the check and they share one read transaction ([`db::OneRead`]).
    Then,
    /// The applications it was used with.
    Uses,
}

/// [`check`] with nothing run after it on the connection.
async fn check_alone(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<IpAddr>,
    held: Held,
    read: Read,
) -> Result<Authed> {
    check(state, token, from, held, read, |_, _, _| Ok(Some(())))
        .await
        .map(|(authed, ())| authed)
}

async fn check<T, F>(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<IpAddr>,
    held: Held,
    read: Read,
    then: F,
) -> Result<(Authed, T)>
where
    T: Send + 'static,
    F: Fn(&Pooled, &Authed, Place) -> Result<Option<T>> + Send + 'static,
{
    let (hash, policy) = hash_and_policy(state, token)?;
    let (authed, out, touched) = state
        .db
        .read_or_block::<_, Error, _>(move |c, place| {
            let c: &Pooled = c;
            // Inline, nothing is written (a due write of activity goes to the blocking
            // pool), so one snapshot serves the check and the caller's reads alike.
            let _one = (read == Read::Then && place == Place::Inline)
                .then(|| db::OneRead::begin(c))
                .transpose()?;
            let Some((authed, touched)) = check_token(c, &hash, policy, place, read, held)? else {
                return Ok(None);
            };
            Ok(then(c, &authed, place)?.map(|out| (authed, out, touched)))
        })
        .await?;
    note_moves(state, &authed, touched, from);
    Ok((authed, out))
}

/// [`authenticate_from`] that also hands `show` the session as a listing shows it, read
/// in the same lookup when the check runs inline (`/api/v1/me`). When its activity is
/// due to be written, the check writes it on the blocking pool and the session is read
/// after, on the same connection.
pub async fn authenticate_shown<T: Send + 'static>(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<IpAddr>,
    show: impl Fn(&Authed, &SessionView<'_>) -> T + Send + 'static,
) -> Result<(Authed, T)> {
    let (hash, policy) = hash_and_policy(state, token)?;
    let (authed, out, touched) = state
        .db
        .read_or_block(move |c, place| match place {
            Place::Inline => db::sessions::with_token_shown(c, &hash, |m, row| {
                let Some((authed, touched)) = judge(c, m, policy, place, Held::Refused)? else {
                    return Ok(None);
                };
                let out = show(&authed, &row.view(&authed.principal)?);
                Ok(Some((authed, out, touched)))
            })?
            .unwrap_or(Err(Error::Unauthenticated(None))),
            Place::Blocking => {
                let Some((authed, touched)) =
                    check_token(c, &hash, policy, place, Read::Check, Held::Refused)?
                else {
                    return Ok(None);
                };
                let shown =
                    db::sessions::with_shown(c, authed.session.pk, &authed.principal, |s| {
                        show(&authed, s)
                    })?;
                // The check has just read the row; gone since, it is refused.
                let out = shown.ok_or(Error::Unauthenticated(None))?;
                Ok(Some((authed, out, touched)))
            }
        })
        .await?;
    note_moves(state, &authed, touched, from);
    Ok((authed, out))
}

/// The hash a token is looked up by, and the install's session policy; a token no
/// session can have is refused before any lookup.
fn hash_and_policy(state: &AppState, token: &str) -> Result<([u8; 32], Policy)> {
    if token.is_empty() || token.len() > 128 {
        return Err(Error::Unauthenticated(None));
    }
    let s = &state.config.sessions;
    let policy = Policy {
        touch: s.touch_interval.as_secs() as i64,
        idle: s.idle_timeout.as_secs() as i64,
        max: s.max_lifetime.as_secs() as i64,
        factor_required: state.config.security.require_second_factor,
    };
    Ok((tokens::hash_token(token), policy))
}

/// After a check that wrote the session's activity: whether it is used from another
/// country than it signed in from (SPEC §14).
fn note_moves(
    state: &AppState,
    authed: &Authed,
    touched: bool,
    from: impl FnOnce() -> Option<IpAddr>,
) {
    if touched && let Some(ip) = from() {
        crate::domain::alerts::moves::note_activity(state, authed.session.pk, ip);
    }
}

/// Session lifetimes, in seconds, and whether the install requires a second factor.
#[derive(Debug, Clone, Copy)]
struct Policy {
    touch: i64,
    idle: i64,
    max: i64,
    factor_required: bool,
}

/// The check itself: the caller of the token and whether its activity was written now,
/// or why it is refused (a session held at enrolment too, unless `held` allows it).
/// `None` when its activity is due to be written and the check runs [`Place::Inline`].
fn check_token(
    c: &Pooled,
    hash: &[u8; 32],
    policy: Policy,
    place: Place,
    read: Read,
    held: Held,
) -> Result<Option<(Authed, bool)>> {
    let Some(m) = db::sessions::find_by_token_hash(c, hash, read == Read::Uses)? else {
        return Err(Error::Unauthenticated(None));
    };
    judge(c, m, policy, place, held)
}

/// [`check_token`] once the session of the token is found.
fn judge(
    c: &Connection,
    mut m: db::sessions::TokenMatch,
    policy: Policy,
    place: Place,
    held: Held,
) -> Result<Option<(Authed, bool)>> {
    let now = crate::clock::now();
    let sess = &mut m.session;
    let mut touched = false;
    if sess.is_active(now)
        && m.status == UserStatus::Active
        && now - sess.last_active_at >= policy.touch
    {
        if place == Place::Inline {
            return Ok(None);
        }
        let expires = (now + policy.idle).min(sess.created_at + policy.max);
        if db::sessions::touch_unless_busy(c, sess.pk, now, expires)? {
            sess.last_active_at = now;
            sess.expires_at = expires;
            touched = true;
        }
    }
    let sess = m.session;
    if let Some(reason) = sess.end_reason.filter(|_| sess.ended_at.is_some()) {
        return Err(Error::Unauthenticated(Some(reason)));
    }
    if sess.expires_at <= now {
        let reason = if sess.expires_at >= sess.created_at + policy.max {
            EndReason::MaxLifetime
        } else {
            EndReason::IdleTimeout
        };
        return Err(Error::Unauthenticated(Some(reason)));
    }
    if m.status != UserStatus::Active {
        return Err(Error::Unauthenticated(Some(EndReason::UserDisabled)));
    }
    let enrolment_pending =
        (policy.factor_required || m.factor_required) && !sess.auth_methods.has_second_factor();
    if enrolment_pending && held == Held::Refused {
        return Err(Error::EnrolmentRequired);
    }
    Ok(Some((
        Authed {
            principal: Principal {
                user_id: sess.user_id,
                email: m.user_email,
                name: m.user_name,
                role: m.role,
                account_id: sess.account_id,
                account_name: m.account_name,
                email_verified: m.email_verified,
            },
            enrolment_pending,
            session: sess,
        },
        touched,
    )))
}

/// Who ended the session of `token` and why, when an administrator gave a reason: the
/// session's public id and "It was ended by an administrator (admin@acme.test):
/// <reason>." (Without a reason the notice stays SPEC §3's "It was ended by an
/// administrator.") Read only for a session refused as ended by an administrator, never
/// on the check's path.
pub async fn admin_end_explanation(state: &AppState, token: &str) -> Option<(String, String)> {
    let hash = tokens::hash_token(token);
    let found = state
        .db
        .run(move |c| db::sessions::find_end_note(c, &hash))
        .await
        .ok()??;
    let (session, by, note) = found;
    let note = note?;
    Some((
        session,
        format!(
            "It was ended by an administrator ({by}): {}.",
            note.trim_end_matches(['.', ' '])
        ),
    ))
}

/// How long the sign-in page's address may show an administrator's note (SPEC §19).
pub const NOTICE_TTL: i64 = 3600;

/// The signature of the administrator's note `text` about the ended session `session`
/// (its public id), carried in the sign-in page's address until `expires_at`: nobody can
/// craft an address that makes Doorman's page say what they want, nor move a note to
/// another session's address, nor show it after the hour.
pub fn seal_notice(key: &[u8], session: &str, expires_at: i64, text: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let Ok(mut m) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    m.update(b"doorman-ended-notice\0");
    // Lengths first, so that no two (session, text) pairs sign the same bytes.
    for part in [session.as_bytes(), text.as_bytes()] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m.update(&expires_at.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// Whether `sig` is [`seal_notice`]'s for these, and the address has not expired.
pub fn notice_is_sealed(
    key: &[u8],
    session: &str,
    expires_at: i64,
    text: &str,
    sig: &str,
    now: i64,
) -> bool {
    let expected = seal_notice(key, session, expires_at, text);
    expires_at > now
        && !expected.is_empty()
        && tokens::constant_time_eq(sig.as_bytes(), expected.as_bytes())
}
