//! Who is asking: where a request comes from, the person behind a session, and the
//! session that carries them.

use std::net::IpAddr;

use super::{AccountId, Role, Session, User, UserId};

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
    pub session: Session,
    /// A second factor is required of the person (by the install, their account or
    /// themself) and the session was signed in without one: it may only add a factor
    /// or sign out (SPEC §19). Only the session check's `authenticate_held` hands out
    /// such a session.
    pub enrolment_pending: bool,
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
