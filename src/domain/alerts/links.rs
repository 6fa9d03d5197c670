//! The single-use links of SPEC §11 (invitation, password reset, email change, and the
//! old address's "cancel this change" of SPEC §19) and the emails that carry them.
//!
//! A link's secret is derived (HMAC-SHA256 under the server's link key) from a random
//! value kept with its email in the outbox, so that an email retried after a restart
//! carries the same working link; the `links` table keeps only the secret's SHA-256,
//! and finds a presented link by it. A link works once, until it expires or is revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::db::links::{LinkRow, NewLink};
use crate::db::{self, DbError};
use crate::domain::tokens;
use crate::error::{Error, Result};
use crate::model::{User, UserId};

/// What a link is for (the `links.kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Invite,
    Reset,
    Email,
    /// Sent to the old address when an email change is asked for: cancels it.
    EmailCancel,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Invite => "invite",
            LinkKind::Reset => "reset",
            LinkKind::Email => "email",
            LinkKind::EmailCancel => "email_cancel",
        }
    }

    /// What the refusal calls it.
    fn noun(self) -> &'static str {
        match self {
            LinkKind::Invite => "invitation link",
            LinkKind::Reset => "password reset link",
            LinkKind::Email => "confirmation link",
            LinkKind::EmailCancel => "link to cancel the email change",
        }
    }

    /// Why a revoked link no longer works.
    fn revoked(self) -> &'static str {
        match self {
            LinkKind::Email => {
                "was cancelled (from the old address), or replaced by a newer one, and changes nothing"
            }
            _ => "was withdrawn, or replaced by a newer one",
        }
    }

    fn again(self) -> &'static str {
        match self {
            LinkKind::Invite => "Ask your administrator to send a new invitation.",
            LinkKind::Reset => "Ask for a new one on the \"Forgot your password?\" page.",
            LinkKind::Email => "Start the change again from your profile.",
            LinkKind::EmailCancel => {
                "If your email was changed and it was not you, tell your administrator at once."
            }
        }
    }
}

/// The `reasons` of the outbox rows of this section's emails. None of them counts
/// toward the hourly limit of sign-in alerts (`db::alerts::count_recent_mailed`).
pub const MAIL_INVITATION: &str = "invitation";
pub const MAIL_RESET_LINK: &str = "password_reset_link";
pub const MAIL_PASSWORD_RESET: &str = "password_reset";
pub const MAIL_EMAIL_CONFIRM: &str = "email_confirm";
pub const MAIL_EMAIL_CHANGED: &str = "email_changed";
/// To the old address when a change is asked for, with the link that cancels it.
pub const MAIL_EMAIL_CHANGE_REQUESTED: &str = "email_change_requested";

/// What one of these emails says, frozen when it is queued (the outbox row's details).
/// Never the link's secret: only the random value it is derived from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TeamMail {
    pub to_email: String,
    pub to_name: String,
    pub at: i64,
    /// The random value the link's secret is derived from (link emails only).
    #[serde(default)]
    pub link_seed: Option<String>,
    #[serde(default)]
    pub link_expires_at: i64,
    /// The account an invitation is to, and who sent it.
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub invited_by: String,
    /// The email change: the address before and after.
    #[serde(default)]
    pub old_email: String,
    #[serde(default)]
    pub new_email: String,
}

/// A link just made: its row and its secret (shown once, or emailed).
pub struct Issued {
    pub id: i64,
    pub token: String,
    pub seed: String,
    pub expires_at: i64,
}

type HmacSha256 = Hmac<Sha256>;

/// The secret of the link made from `seed`: 43 URL-safe characters.
pub fn token_for(key: &[u8], seed: &str) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        // HMAC takes keys of any length; this cannot happen.
        return tokens::new_token();
    };
    mac.update(b"doorman-link\0");
    mac.update(seed.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Makes a link in the caller's transaction. `replace` revokes the user's open links
/// of the same kind first (only the newest reset link works; a resent invitation
/// replaces the old one).
#[allow(clippy::too_many_arguments)]
pub fn issue(
    c: &Connection,
    key: &[u8],
    kind: LinkKind,
    user: UserId,
    new_email: Option<&str>,
    now: i64,
    ttl_secs: i64,
) -> Result<Issued, DbError> {
    db::links::revoke_open(c, user, kind.as_str(), now)?;
    let seed = tokens::new_token();
    let token = token_for(key, &seed);
    let expires_at = now.saturating_add(ttl_secs);
    let id = db::links::insert(
        c,
        &NewLink {
            kind: kind.as_str(),
            user_id: user,
            token_hash: &tokens::hash_token(&token),
            new_email,
            now,
            expires_at,
        },
    )?;
    Ok(Issued {
        id,
        token,
        seed,
        expires_at,
    })
}

/// Whether `token` could be a link this server made (43 URL-safe base64 characters);
/// anything else is refused before the database is asked.
pub fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The open link of `kind` that `token` is, or the refusal that says why it does not
/// work (unknown, used, revoked or expired), without changing anything.
pub fn open_link(c: &Connection, token: &str, kind: LinkKind, now: i64) -> Result<LinkRow> {
    let unknown = || {
        Error::invalid(
            "invalid_link",
            format!(
                "This {} is not valid. Check that you copied all of it. {}",
                kind.noun(),
                kind.again()
            ),
        )
    };
    if !well_formed(token) {
        return Err(unknown());
    }
    let Some(link) = db::links::find_by_token_hash(c, &tokens::hash_token(token))? else {
        return Err(unknown());
    };
    if link.kind != kind.as_str() {
        return Err(unknown());
    }
    let (code, what) = if link.used_at.is_some() {
        ("link_used", "has already been used")
    } else if link.revoked_at.is_some() {
        ("link_revoked", kind.revoked())
    } else if link.expires_at <= now {
        ("link_expired", "has expired")
    } else {
        return Ok(link);
    };
    Err(Error::invalid(
        code,
        format!("This {} {what}. {}", kind.noun(), kind.again()),
    ))
}

/// Uses the open link of `kind` that `token` is, in the caller's transaction: of two
/// uses at the same moment, exactly one gets the link; the other gets the refusal.
pub fn use_link(c: &Connection, token: &str, kind: LinkKind, now: i64) -> Result<LinkRow> {
    let link = open_link(c, token, kind, now)?;
    if !db::links::update_used(c, link.id, now)? {
        return Err(Error::invalid(
            "link_used",
            format!(
                "This {} has already been used. {}",
                kind.noun(),
                kind.again()
            ),
        ));
    }
    Ok(link)
}

/// Queues one of this section's emails in the caller's transaction, through the same
/// outbox as sign-in alerts (retried, kept across restarts).
pub fn enqueue(
    c: &Connection,
    kind: &'static str,
    user: UserId,
    mail: &TeamMail,
    mail_enabled: bool,
) -> Result<&'static str, DbError> {
    crate::domain::alerts::enqueue_message(c, kind, user, mail, mail.at, mail_enabled)
}

/// Makes `user`'s password-reset link (the older ones stop working: only the newest
/// works) and queues its email, in the caller's transaction.
pub(crate) fn reset_link_in(
    tx: &Connection,
    key: &[u8],
    user: &User,
    now: i64,
    ttl: i64,
    mail_enabled: bool,
) -> Result<(), DbError> {
    let link = issue(tx, key, LinkKind::Reset, user.id, None, now, ttl)?;
    let mail = TeamMail {
        to_email: user.email.clone(),
        to_name: user.name.clone(),
        at: now,
        link_seed: Some(link.seed),
        link_expires_at: link.expires_at,
        ..TeamMail::default()
    };
    enqueue(tx, MAIL_RESET_LINK, user.id, &mail, mail_enabled)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_seed_and_the_key() {
        let a = token_for(b"key one", "seed");
        assert_eq!(a, token_for(b"key one", "seed"));
        assert_ne!(a, token_for(b"key two", "seed"));
        assert_ne!(a, token_for(b"key one", "other seed"));
        assert!(well_formed(&a));
        assert!(!well_formed("short"));
        assert!(!well_formed(&"!".repeat(43)));
        assert!(!well_formed(&"a".repeat(44)));
    }
}
