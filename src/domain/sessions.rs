//! Listing and ending sessions (SPEC §3, §6, §7): My Sessions and Users Sessions. The
//! pages and the API both call these, so the rules live here once.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tracing::instrument;

use rusqlite::TransactionBehavior;

use crate::db::session_search::{AdminFilter, Cursor};
use crate::db::sessions::Ended;
use crate::db::{self, DbError, Place};
use crate::domain::audit::events;
use crate::domain::permissions::{admin_scope, check_in_rank, hides_owners};
use crate::domain::signin::check;
use crate::error::{Error, Result};
use crate::model::Authed;
use crate::model::{AccountId, EndReason, Session, UserId};
use crate::state::AppState;

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 200;

/// Most sessions listed inline, on the async worker, after an inline session check: a
/// few hundred microseconds of reading at most. A user with more is listed on the
/// blocking pool.
const INLINE_ROWS: u32 = 100;

/// The active sessions of the caller of `token`, the current one first, then by last
/// activity. The session check and the listing share one connection, and for most users
/// run inline (see [`check::authenticate_then`]). Pages and the API both list
/// My Sessions here.
pub async fn list_mine_by_token(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<std::net::IpAddr>,
) -> Result<(Authed, Vec<Session>)> {
    let (me, mut list) = check::authenticate_then(state, token, from, |c, me, place| {
        let p = &me.principal;
        let limit = (place == Place::Inline).then_some(INLINE_ROWS + 1);
        let list = db::sessions::list_active_for_user(
            c,
            p.user_id,
            &p.email,
            &p.account_name,
            crate::clock::now(),
            limit,
        )?;
        Ok((place == Place::Blocking || list.len() <= INLINE_ROWS as usize).then_some(list))
    })
    .await?;
    current_first(&mut list, me.session.pk);
    Ok((me, list))
}

/// Where a listing is written, one session at a time, as the rows are read (the API's
/// JSON), instead of collected first.
pub trait SessionSink: Send + 'static {
    /// The next session by last activity. `current` marks the caller's own, which the
    /// listing shows first (as [`list_mine_by_token`] orders them): the sink moves it
    /// there.
    fn push(&mut self, s: &crate::model::SessionView<'_>, current: bool);
}

/// [`list_mine_by_token`], each session written into a sink made by `new` as it is read.
/// `new` may be called twice: a user with more sessions than are listed inline is listed
/// again on the blocking pool.
pub async fn write_mine_by_token<S: SessionSink>(
    state: &AppState,
    token: &str,
    from: impl FnOnce() -> Option<std::net::IpAddr>,
    new: impl Fn() -> S + Send + 'static,
) -> Result<(Authed, S)> {
    check::authenticate_then(state, token, from, move |c, me, place| {
        let current = me.session.pk;
        let limit = (place == Place::Inline).then_some(INLINE_ROWS + 1);
        let mut sink = new();
        let n = db::sessions::each_active_for_user(
            c,
            &me.principal,
            crate::clock::now(),
            limit,
            |s| sink.push(s, s.pk == current),
        )?;
        Ok((place == Place::Blocking || n <= INLINE_ROWS as usize).then_some(sink))
    })
    .await
}

/// The sessions of `list` that raised a sign-in alert (their row ids): the listings
/// mark them, so that the session an email was about is told apart (SPEC §22).
pub async fn alerted(state: &AppState, list: &[Session]) -> Result<HashSet<i64>> {
    let mut users: Vec<UserId> = list.iter().map(|s| s.user_id).collect();
    users.sort_by_key(|u| u.0);
    users.dedup();
    let pks: Vec<i64> = list.iter().map(|s| s.pk).collect();
    let found = state
        .db
        .read_or_block(move |c, _| {
            db::alerts::sessions_alerted(c, &users, &pks)
                .map(Some)
                .map_err(Error::from)
        })
        .await?;
    Ok(found.into_iter().collect())
}

fn current_first(list: &mut [Session], current: i64) {
    // Usually the current session is the most recently active, and nothing moves.
    if let Some(pos) = list.iter().position(|s| s.pk == current) {
        list[..=pos].rotate_right(1);
    }
}

fn current_conflict() -> Error {
    Error::conflict(
        "current_session",
        "This is the session you are using. To end it, sign out (POST /api/v1/logout).",
    )
}

/// Ends one of the caller's own sessions by its public id.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn end_mine(state: &AppState, me: &Authed, id: &str) -> Result<()> {
    let (user, current, id) = (me.principal.user_id, me.session.pk, id.to_string());
    let outcome = state
        .db
        .run(move |c| -> Result<_> {
            let now = crate::clock::now();
            match db::sessions::find_by_public_id(c, &id)? {
                Some(s) if s.user_id == user && s.is_active(now) => {
                    if s.pk == current {
                        return Err(current_conflict());
                    }
                    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let ended =
                        db::sessions::end(&tx, s.pk, now, Some(user), EndReason::Terminated)?;
                    events::record_ended(&tx, ended.as_slice(), now)?;
                    tx.commit()?;
                    Ok(())
                }
                _ => Err(Error::NotFound),
            }
        })
        .await;
    if outcome.is_ok() {
        tracing::info!("session terminated by its user");
    }
    outcome
}

/// Ends all of the caller's sessions except the current one.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn end_my_others(state: &AppState, me: &Authed) -> Result<usize> {
    let (user, current) = (me.principal.user_id, me.session.pk);
    let n = state
        .db
        .run(move |c| {
            in_tx(c, |tx, now| {
                db::sessions::end_all_for_user(
                    tx,
                    user,
                    Some(current),
                    now,
                    Some(user),
                    EndReason::EndedOtherSessions,
                )
            })
        })
        .await?;
    tracing::info!(ended = n, "ended other sessions");
    Ok(n)
}

/// What an admin asks for: the filters of SPEC §7 as received.
#[derive(Debug, Clone, Default)]
pub struct AdminQuery {
    pub q: Option<String>,
    pub user_id: Option<i64>,
    pub account_id: Option<i64>,
    pub application: Option<String>,
}

impl AdminQuery {
    /// Whether any filter narrows the set; empty texts do not.
    pub fn has_filter(&self) -> bool {
        let given = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        given(&self.q)
            || self.user_id.is_some()
            || self.account_id.is_some()
            || given(&self.application)
    }

    /// Resolves the query against the caller's scope; out-of-scope account → NotFound.
    fn to_filter(&self, me: &Authed) -> Result<AdminFilter> {
        let scope = admin_scope(&me.principal)?;
        let account = scope.account_filter(self.account_id.map(AccountId))?;
        let q = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.len() > 254) {
            return Err(Error::invalid(
                "invalid_query",
                "The search text is too long.",
            ));
        }
        Ok(AdminFilter {
            account,
            user: self.user_id.map(UserId),
            application: self.application.clone().filter(|a| !a.trim().is_empty()),
            email_contains: q.map(str::to_string),
            hide_owners: hides_owners(&me.principal),
        })
    }
}

pub struct Page {
    pub items: Vec<Session>,
    pub next_cursor: Option<String>,
}

pub fn encode_cursor(c: Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", c.last_active_at, c.pk))
}

pub fn decode_cursor(raw: &str) -> Result<Cursor> {
    let bad = || {
        Error::invalid(
            "invalid_cursor",
            "The cursor is not one this server gave out.",
        )
    };
    if raw.len() > 64 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (a, b) = text.split_once('.').ok_or_else(bad)?;
    Ok(Cursor {
        last_active_at: a.parse().map_err(|_| bad())?,
        pk: b.parse().map_err(|_| bad())?,
    })
}

/// Active sessions in the caller's admin scope, newest activity first, keyset-paged.
pub async fn admin_list(
    state: &AppState,
    me: &Authed,
    query: &AdminQuery,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page> {
    let filter = query.to_filter(me)?;
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}."),
        ));
    }
    let cursor = cursor
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    let mut items = state
        .db
        .run(move |c| {
            db::session_search::list_admin(c, &filter, cursor, limit + 1, crate::clock::now())
        })
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|s| {
            encode_cursor(Cursor {
                last_active_at: s.last_active_at,
                pk: s.pk,
            })
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// How many active sessions match, and how many of them "End all listed sessions"
/// would end (all but the caller's current one).
pub async fn admin_count(state: &AppState, me: &Authed, query: &AdminQuery) -> Result<Counts> {
    let filter = query.to_filter(me)?;
    let current = me.session.pk;
    let (matching, endable) = state
        .db
        .run(move |c| db::session_search::count_admin(c, &filter, crate::clock::now(), current))
        .await?;
    Ok(Counts { matching, endable })
}

pub struct Counts {
    pub matching: i64,
    pub endable: i64,
}

/// The longest reason an administrator may give for ending sessions.
const MAX_END_NOTE: usize = 200;

/// An administrator's reason for ending sessions, as shown to the person: trimmed, on one
/// line, at most [`MAX_END_NOTE`] characters; none when empty.
pub fn end_note(raw: Option<&str>) -> Result<Option<String>> {
    let text: String = raw
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.chars().count() > MAX_END_NOTE {
        return Err(Error::invalid(
            "reason_too_long",
            "The reason may be at most 200 characters.",
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// Ends one session in the caller's admin scope, with the reason shown to its person.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn admin_end(state: &AppState, me: &Authed, id: &str, note: Option<&str>) -> Result<()> {
    admin_scope(&me.principal)?;
    let note = end_note(note)?;
    let (by, current, id) = (me.principal.user_id, me.session.pk, id.to_string());
    let principal = me.principal.clone();
    let outcome = state
        .db
        .run(move |c| -> Result<_> {
            let now = crate::clock::now();
            let Some(s) = db::sessions::find_by_public_id(c, &id)? else {
                return Err(Error::NotFound);
            };
            let Some(owner) = db::users::find_by_id(c, s.user_id)? else {
                return Err(Error::NotFound);
            };
            if !s.is_active(now) || check_in_rank(&principal, s.account_id, owner.role).is_err() {
                return Err(Error::NotFound);
            }
            if s.pk == current {
                return Err(current_conflict());
            }
            let reason = if s.user_id == by {
                EndReason::Terminated
            } else {
                EndReason::TerminatedByAdmin
            };
            let note = note
                .as_deref()
                .filter(|_| reason == EndReason::TerminatedByAdmin);
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let ended = db::sessions::end_with_note(&tx, s.pk, now, Some(by), reason, note)?;
            events::record_ended(&tx, ended.as_slice(), now)?;
            tx.commit()?;
            Ok(())
        })
        .await;
    if outcome.is_ok() {
        tracing::info!("session terminated by an administrator");
    }
    outcome
}

/// Ends every active session matching the filters (at least one), in scope, except the
/// caller's current one.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn admin_end_matching(
    state: &AppState,
    me: &Authed,
    query: &AdminQuery,
    note: Option<&str>,
) -> Result<usize> {
    let note = end_note(note)?;
    if !query.has_filter() {
        return Err(Error::invalid(
            "filter_required",
            "Give at least one filter (q, user_id, account_id or application); ending every session needs a filter.",
        ));
    }
    let filter = query.to_filter(me)?;
    let (by, current) = (me.principal.user_id, me.session.pk);
    let n = state
        .db
        .run(move |c| {
            in_tx(c, |tx, now| {
                db::session_search::end_admin(
                    tx,
                    &filter,
                    current,
                    now,
                    by,
                    EndReason::TerminatedByAdmin,
                    note.as_deref(),
                )
            })
        })
        .await?;
    tracing::info!(ended = n, "ended listed sessions");
    Ok(n)
}

/// Ends every session of one user in scope (except the caller's current one).
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.principal.user_id))]
pub async fn admin_end_user(
    state: &AppState,
    me: &Authed,
    user: UserId,
    note: Option<&str>,
) -> Result<usize> {
    let note = end_note(note)?;
    let target = state
        .db
        .run(move |c| db::users::find_by_id(c, user))
        .await?
        .ok_or(Error::NotFound)?;
    check_in_rank(&me.principal, target.account_id, target.role)?;
    let (by, current) = (me.principal.user_id, me.session.pk);
    let reason = if user == by {
        EndReason::Terminated
    } else {
        EndReason::TerminatedByAdmin
    };
    let n = state
        .db
        .run(move |c| {
            let note = note
                .as_deref()
                .filter(|_| reason == EndReason::TerminatedByAdmin);
            in_tx(c, |tx, now| {
                db::sessions::end_all_for_user_with_note(
                    tx,
                    user,
                    Some(current),
                    now,
                    Some(by),
                    reason,
                    note,
                )
            })
        })
        .await?;
    tracing::info!(ended = n, target = %user, "ended a user's sessions");
    Ok(n)
}

/// Ends sessions with `end` and records their `session.ended` events, in one
/// transaction; how many ended.
fn in_tx(
    c: &mut rusqlite::Connection,
    end: impl FnOnce(&rusqlite::Connection, i64) -> std::result::Result<Vec<Ended>, DbError>,
) -> std::result::Result<usize, DbError> {
    let now = crate::clock::now();
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ended = end(&tx, now)?;
    events::record_ended(&tx, &ended, now)?;
    tx.commit()?;
    Ok(ended.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = Cursor {
            last_active_at: 1_700_000_000,
            pk: 42,
        };
        assert_eq!(decode_cursor(&encode_cursor(c)).unwrap(), c);
        for bad in ["", "!!", "bm90LWEtY3Vyc29y", &"A".repeat(100)] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
