//! Who is asking: where a request comes from, the person behind a session, and the
//! session that carries them.

use std::net::IpAddr;

use super::{AccountId, AppUse, AuthMethods, EndReason, Role, SessionId, User, UserId};

/// Where a request comes from, as far as we believe it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: String,
}

/// Who is making an authenticated request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub account_id: AccountId,
    pub account_name: String,
    /// The person has proven the address (SPEC §19).
    pub email_verified: bool,
}

/// A request's valid session and its user.
#[derive(Debug, Clone)]
pub struct Authed {
    pub principal: Principal,
    pub session: CurrentSession,
    /// A second factor is required of the person (by the install, their account or
    /// themself) and the session was signed in without one: it may only add a factor
    /// or sign out (SPEC §19). Only the session check's `authenticate_held` hands out
    /// such a session.
    pub enrolment_pending: bool,
}

/// The session a request presented, as the session check reads it: what the decision,
/// the identity headers and the pages' marks of "this session" need, and nothing the
/// answer does not use (SPEC §3's check runs on every request). Who shows the session
/// (`/api/v1/me`, a notice's "from this device") reads its whole row by [`Self::pk`].
#[derive(Debug, Clone)]
pub struct CurrentSession {
    /// Row id: internal, never shown.
    pub pk: i64,
    pub id: SessionId,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub device_id: String,
    pub created_at: i64,
    pub last_active_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<EndReason>,
    /// How it was signed in.
    pub auth_methods: AuthMethods,
    /// When its person last proved it was them in it (the sign-in, or a step-up).
    pub verified_at: i64,
    /// The protected applications it has been used with: read only by the check of a
    /// request for one of them (forward auth), which records a use at most once per
    /// touch interval; `None` elsewhere.
    pub applications_used: Option<Vec<AppUse>>,
}

impl CurrentSession {
    pub fn is_active(&self, now: i64) -> bool {
        self.ended_at.is_none() && self.expires_at > now
    }
}

impl From<&User> for Principal {
    fn from(user: &User) -> Self {
        Principal {
            user_id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
            account_id: user.account_id,
            account_name: user.account_name.clone(),
            email_verified: user.email_verified,
        }
    }
}
