//! Privacy (SPEC §17): how long personal records are kept, shortening old IPs, a
//! person's data as one export, and erasing a user. docs/PRIVACY.md says the same in
//! words for the people whose data it is.

use std::net::IpAddr;

use rusqlite::{Connection, TransactionBehavior};
use tracing::instrument;

use crate::db::alerts::AlertRow;
use crate::db::devices::KnownDevice;
use crate::db::login_records::LoginRecord;
use crate::db::{self, DbError};
use crate::domain::audit::events::{self, NewEvent};
use crate::domain::permissions::{admin_scope, check_manage_user};
use crate::error::{Error, Result};
use crate::model::Principal;
use crate::model::{EventType, Role, Session, User, UserId, UserStatus};
use crate::state::AppState;

/// Rows per retention statement: small enough that a large backlog (the first sweep
/// after a retention is shortened) never holds the write lock for long.
pub const BATCH: i64 = 1000;

/// How long a link that stopped working (used, revoked, expired) is kept: long enough
/// to tell a person who opens it late that it was used, then forgotten.
const LINKS_KEPT: i64 = 7 * 24 * 3600;

/// What one retention pass removed or shortened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    pub sessions: usize,
    pub login_records: usize,
    pub alerts: usize,
    pub devices: usize,
    pub events: usize,
    pub webhook_deliveries: usize,
    pub ips_truncated: usize,
    /// Invitation, reset and email-change links that stopped working a week ago.
    pub links: usize,
}

/// How long a delivered webhook stays in the outbox (for `doorman webhooks list`).
const DELIVERED_KEPT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl RetentionReport {
    pub fn is_empty(&self) -> bool {
        *self == RetentionReport::default()
    }
}

/// Applies every retention of the configuration once, a batch per storage call.
#[instrument(skip_all, err(level = "debug"))]
pub async fn enforce_retention(state: &AppState) -> Result<RetentionReport> {
    let now = crate::clock::now();
    let cfg = &state.config;
    let ago =
        |d: std::time::Duration| now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let p = &cfg.privacy;
    let sessions = ago(cfg.sessions.retention);
    let mut report = RetentionReport {
        sessions: in_batches(state, move |c| {
            db::sessions::delete_ended_before(c, sessions, BATCH)
        })
        .await?,
        ..Default::default()
    };
    let cutoff = ago(p.login_records_retention);
    report.login_records = in_batches(state, move |c| {
        db::login_records::delete_before(c, cutoff, BATCH)
    })
    .await?;
    let cutoff = ago(p.alerts_retention);
    report.alerts = in_batches(state, move |c| db::alerts::delete_before(c, cutoff, BATCH)).await?;
    let cutoff = ago(p.devices_retention);
    report.devices = in_batches(state, move |c| {
        db::devices::delete_unseen_before(c, cutoff, BATCH)
    })
    .await?;
    let cutoff = now.saturating_sub(LINKS_KEPT);
    report.links = in_batches(state, move |c| {
        db::links::delete_ended_before(c, cutoff, BATCH)
    })
    .await?;
    let cutoff = ago(p.events_retention);
    report.events = in_batches(state, move |c| db::events::delete_before(c, cutoff, BATCH)).await?;
    let cutoff = ago(DELIVERED_KEPT);
    report.webhook_deliveries = in_batches(state, move |c| {
        db::webhooks::delete_delivered_before(c, cutoff, BATCH)
    })
    .await?;
    // Logout deliveries done (delivered or given up) go with delivered webhooks; they
    // are not counted apart in the report.
    report.webhook_deliveries += in_batches(state, move |c| {
        db::oidc_logouts::delete_done_before(c, cutoff, BATCH)
    })
    .await?;
    if let Some(after) = p.truncate_ips_after {
        let cutoff = ago(after);
        report.ips_truncated = in_batches(state, move |c| truncate_batch(c, cutoff)).await?;
    }
    Ok(report)
}

/// Runs `step` (which handles at most [`BATCH`] rows) until it handles fewer, each in
/// its own storage call so that other writers get the lock in between.
async fn in_batches<F>(state: &AppState, step: F) -> Result<usize>
where
    F: Fn(&mut Connection) -> std::result::Result<usize, DbError> + Clone + Send + 'static,
{
    let mut total = 0;
    loop {
        let step = step.clone();
        let n = state.db.run(move |c| step(c)).await?;
        total += n;
        if (n as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Shortens up to [`BATCH`] whole IPs of each table older than `cutoff`, in one
/// transaction; returns how many were changed (at least [`BATCH`] when a table may
/// have more).
fn truncate_batch(c: &mut Connection, cutoff: i64) -> std::result::Result<usize, DbError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut total = 0;
    type Find = fn(&Connection, i64, i64) -> std::result::Result<Vec<(i64, String)>, DbError>;
    type Update = fn(&Connection, i64, &str) -> std::result::Result<(), DbError>;
    let tables: [(Find, Update); 4] = [
        (db::sessions::find_whole_ips_before, db::sessions::update_ip),
        (
            db::login_records::find_whole_ips_before,
            db::login_records::update_ip,
        ),
        (db::alerts::find_whole_ips_before, db::alerts::update_ip),
        (db::events::find_whole_ips_before, db::events::update_ip),
    ];
    for (find, update) in tables {
        let rows = find(&tx, cutoff, BATCH)?;
        for (id, ip) in &rows {
            update(&tx, *id, &truncate_ip(ip))?;
        }
        total += rows.len();
    }
    tx.commit()?;
    Ok(total)
}

/// The network an address belongs to, as `a.b.c.0/24` (IPv4) or `x:y:z::/48` (IPv6);
/// what is not an address becomes empty (it cannot be shortened, so it is dropped).
fn truncate_ip(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => truncate_ip(&v4.to_string()),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                format!("{net}/48")
            }
        },
        Err(_) => String::new(),
    }
}

/// Everything Doorman holds about one person, for them to take away. Never the
/// password hash nor any token hash.
#[derive(Debug, Clone)]
pub struct Export {
    pub exported_at: i64,
    pub user: User,
    pub active_sessions: Vec<Session>,
    pub ended_sessions: Vec<Session>,
    pub devices: Vec<KnownDevice>,
    pub login_records: Vec<LoginRecord>,
    pub alerts: Vec<AlertRow>,
    pub second_factors: Vec<crate::domain::factors::manage::Factor>,
    pub events: Vec<crate::domain::audit::events::Event>,
}

/// The caller's own data.
#[instrument(skip_all, err(level = "debug"), fields(user_id = %me.user_id))]
pub async fn export_mine(state: &AppState, me: &Principal) -> Result<Export> {
    export_of(state, me.user_id).await?.ok_or(Error::NotFound)
}

/// A user's data, for an admin whose scope and rank cover them (else `NotFound`).
#[instrument(skip_all, err(level = "debug"), fields(by = %me.user_id, user_id = %id))]
pub async fn export_user(state: &AppState, me: &Principal, id: UserId) -> Result<Export> {
    admin_scope(me)?;
    let export = export_of(state, id).await?.ok_or(Error::NotFound)?;
    check_manage_user(me, &export.user)?;
    tracing::info!("user data exported by an admin");
    Ok(export)
}

async fn export_of(state: &AppState, id: UserId) -> Result<Option<Export>> {
    let now = crate::clock::now();
    Ok(state
        .db
        .run(move |c| -> std::result::Result<_, DbError> {
            // One read transaction, so the parts agree with each other.
            let tx = c.transaction()?;
            let Some(user) = db::users::find_by_id(&tx, id)? else {
                return Ok(None);
            };
            let (active_sessions, ended_sessions): (Vec<Session>, Vec<Session>) =
                db::sessions::list_all_for_user(&tx, id)?
                    .into_iter()
                    .partition(|s| s.is_active(now));
            let export = Export {
                exported_at: now,
                active_sessions,
                ended_sessions,
                devices: db::devices::list_for_user(&tx, id)?,
                login_records: db::login_records::list_for_user(&tx, id, None, i64::MAX)?,
                alerts: db::alerts::list_for_user(&tx, id)?,
                second_factors: db::second_factors::list_for_user(&tx, id)?
                    .iter()
                    .map(crate::domain::factors::manage::Factor::from)
                    .collect(),
                events: db::events::list_for_user(&tx, id)?,
                user,
            };
            tx.commit()?;
            Ok(Some(export))
        })
        .await?)
}

/// Erases a user: their row, sessions, devices, login records (and attempts made with
/// their email) and alerts, and the notices other people got about their "not me"
/// reports, in one transaction. Scope and rank as for any change to a
/// user; never oneself; never the last active owner.
#[instrument(skip_all, err(level = "debug"), fields(by = %me.user_id, user_id = %id))]
pub async fn delete_user(state: &AppState, me: &Principal, id: UserId) -> Result<()> {
    erase_user(state, me, id, false).await
}

/// [`delete_user`]; with `invited_only`, only a user who has not accepted their
/// invitation yet (revoking an invitation removes the invited user), else 409.
pub(crate) async fn erase_user(
    state: &AppState,
    me: &Principal,
    id: UserId,
    invited_only: bool,
) -> Result<()> {
    admin_scope(me)?;
    let me = me.clone();
    let removed = state
        .db
        .run(move |c| -> Result<_> {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(target) = db::users::find_by_id(&tx, id)? else {
                return Err(Error::NotFound);
            };
            let other_active_owners =
                crate::domain::people::owners::other_active_owners(&tx, &target)?;
            check_delete(&me, &target, other_active_owners)?;
            if invited_only && target.status != UserStatus::Invited {
                return Err(Error::conflict(
                    "not_invited",
                    "This person has already accepted their invitation.",
                ));
            }
            db::links::delete_for_user(&tx, id)?;
            // Before the sessions go: a report is found by its session too.
            db::alerts::delete_reports_about(&tx, id, &target.email)?;
            let alerts = db::alerts::delete_for_user(&tx, id)?;
            let sessions = db::sessions::delete_for_user(&tx, id)?;
            let devices = db::devices::delete_for_user(&tx, id)?;
            db::second_factors::delete_all_for_user(&tx, id)?;
            let records = db::login_records::delete_for_user(&tx, id, &target.email)?;
            if !db::users::delete(&tx, id)? {
                return Err(DbError::Refused("user vanished during deletion".into()).into());
            }
            db::events::update_tombstone(&tx, id)?;
            db::events::update_tombstone_attempts(&tx, &target.email)?;
            events::record(
                &tx,
                NewEvent::new(EventType::UserDeleted, crate::clock::now())
                    .user(id, target.account_id)
                    .actor(Some(me.user_id))
                    .detail("deleted_user_id", id.0),
            )?;
            tx.commit()?;
            Ok((alerts, sessions, devices, records))
        })
        .await?;
    let (alerts, sessions, devices, login_records) = removed;
    tracing::info!(
        alerts,
        sessions,
        devices,
        login_records,
        "user deleted by an admin"
    );
    Ok(())
}

/// The rules of a deletion apart from storage (`other_active_owners` counts the active
/// owners other than `target`).
fn check_delete(me: &Principal, target: &User, other_active_owners: i64) -> Result<()> {
    check_manage_user(me, target)?;
    if target.id == me.user_id {
        return Err(Error::conflict(
            "self_delete",
            "You cannot delete yourself; ask another administrator.",
        ));
    }
    let active_owner = target.role == Role::Owner && target.status == UserStatus::Active;
    if active_owner && other_active_owners < 1 {
        return Err(crate::domain::people::owners::last_owner());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(id: i64, role: Role) -> Principal {
        Principal {
            user_id: UserId(id),
            email: format!("{id}@x"),
            name: "p".into(),
            role,
            account_id: crate::model::AccountId(1),
            account_name: "A".into(),
            email_verified: true,
        }
    }

    fn user(id: i64, role: Role) -> User {
        User {
            id: UserId(id),
            account_id: crate::model::AccountId(1),
            account_name: "A".into(),
            email_verified: true,
            email: format!("{id}@x"),
            name: "u".into(),
            role,
            status: UserStatus::Active,
            created_at: 0,
        }
    }

    fn code(r: Result<()>) -> Option<&'static str> {
        match r {
            Err(Error::Conflict { code, .. }) => Some(code),
            Err(Error::NotFound) => Some("not_found"),
            _ => None,
        }
    }

    #[test]
    fn who_may_delete_whom() {
        let owner = principal(1, Role::Owner);
        let admin = principal(3, Role::Admin);
        assert_eq!(
            code(check_delete(&owner, &user(1, Role::Owner), 0)),
            Some("self_delete")
        );
        assert_eq!(
            code(check_delete(&admin, &user(3, Role::Admin), 0)),
            Some("self_delete")
        );
        assert_eq!(
            code(check_delete(&owner, &user(2, Role::Owner), 0)),
            Some("last_owner")
        );
        assert!(check_delete(&owner, &user(2, Role::Owner), 1).is_ok());
        assert_eq!(
            code(check_delete(&admin, &user(2, Role::Owner), 1)),
            Some("not_found")
        );
        assert!(check_delete(&admin, &user(4, Role::User), 0).is_ok());
        assert_eq!(
            code(check_delete(
                &principal(5, Role::User),
                &user(4, Role::User),
                0
            )),
            Some("not_found")
        );
    }

    #[test]
    fn ips_keep_only_their_network() {
        assert_eq!(truncate_ip("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(
            truncate_ip("2001:db8:abcd:12:1:2:3:4"),
            "2001:db8:abcd::/48"
        );
        assert_eq!(truncate_ip("::ffff:198.51.100.9"), "198.51.100.0/24");
        assert_eq!(truncate_ip("::1"), "::/48");
        assert_eq!(truncate_ip("not an ip"), "");
    }
}
