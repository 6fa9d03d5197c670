//! The domain's one error type. Which HTTP status and message each variant becomes is
//! decided in one place, `http::errors`, for pages and the API alike.

use crate::db::DbError;
use crate::model::EndReason;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing, or outside the caller's scope: the two are not told apart, so ids do
    /// not leak.
    #[error("not found")]
    NotFound,
    /// Unknown email, wrong password and disabled user all look the same to the caller.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("too many failed sign-in attempts")]
    RateLimited { retry_after_secs: u64 },
    /// No session, or one that has ended (with why, when known).
    #[error("not signed in")]
    Unauthenticated(Option<EndReason>),
    /// A second step's code (or passkey) was wrong, already used, or its sign-in took
    /// too long.
    #[error("invalid code")]
    InvalidCode,
    /// The action needs the person to confirm it is them ("Confirm it's you").
    #[error("step-up required")]
    StepUpRequired,
    /// A second factor is required of this person and they have none yet.
    #[error("second factor enrolment required")]
    EnrolmentRequired,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    Forbidden(String),
    /// Signed in, but the application's rules do not let this person in.
    #[error("no access to {application}")]
    AccessDenied { application: String },
    #[error("storage: {0}")]
    Storage(#[from] DbError),
    #[error("internal: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A SQLite failure inside a domain transaction is a storage error.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(DbError::Sqlite(e))
    }
}

impl Error {
    /// The storage cannot answer now (a full disk, a lock held too long): 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Storage(e) if e.is_unavailable())
    }

    /// A uniqueness constraint refused the write (an email or a name taken).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Storage(e) if e.is_unique_violation())
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }
}
