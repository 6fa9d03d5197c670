//! The one place where a domain error becomes an HTTP status, a machine code and the
//! message a caller sees. The logged detail of internal errors never reaches the caller.

use poem::http::StatusCode;
use poem_openapi::Object;

use crate::error::Error;

/// The body of every error answer.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            message: message.into(),
        }
    }
}

pub const ENDED_NOTICE: &str = "Your session has ended. Please sign in again.";

pub fn describe(err: &Error) -> (StatusCode, ErrorBody) {
    use StatusCode as S;
    match err {
        Error::NotFound => (S::NOT_FOUND, ErrorBody::new("not_found", "Not found.")),
        Error::InvalidCredentials => (
            S::UNAUTHORIZED,
            ErrorBody::new("invalid_credentials", "Invalid email or password."),
        ),
        Error::RateLimited { retry_after_secs } => (
            S::TOO_MANY_REQUESTS,
            ErrorBody::new(
                "rate_limited",
                format!(
                    "Too many failed sign-in attempts. Try again in {}.",
                    wait_text(*retry_after_secs)
                ),
            ),
        ),
        Error::Unauthenticated(None) => (
            S::UNAUTHORIZED,
            ErrorBody::new(
                "unauthenticated",
                "Sign in first, and send the token as `Authorization: Bearer <token>`.",
            ),
        ),
        Error::Unauthenticated(Some(reason)) => {
            let message = match reason.explanation() {
                Some(why) => format!("{ENDED_NOTICE} {why}"),
                None => ENDED_NOTICE.to_string(),
            };
            (S::UNAUTHORIZED, ErrorBody::new("session_ended", message))
        }
        Error::InvalidCode => (
            S::UNAUTHORIZED,
            ErrorBody::new(
                "invalid_code",
                "That code is not right, was used already, or the sign-in took too long.",
            ),
        ),
        Error::StepUpRequired => (
            S::FORBIDDEN,
            ErrorBody::new(
                "step_up_required",
                "Confirm it's you first: send your password (or a code from your second factor) \
                 to POST /api/v1/me/step-up, or `current_password` with this request.",
            ),
        ),
        Error::EnrolmentRequired => (
            S::FORBIDDEN,
            ErrorBody::new(
                "second_factor_enrolment_required",
                "A second factor is required for this account. Sign in on the web page once to set one up.",
            ),
        ),
        Error::Invalid { code, message } => (S::BAD_REQUEST, ErrorBody::new(*code, message)),
        Error::Conflict { code, message } => (S::CONFLICT, ErrorBody::new(*code, message)),
        Error::Forbidden(message) => (S::FORBIDDEN, ErrorBody::new("forbidden", message)),
        Error::AccessDenied { application } if application.is_empty() => (
            S::FORBIDDEN,
            ErrorBody::new(
                "access_denied",
                "The address asked about cannot be matched to an application safely, so it is refused.",
            ),
        ),
        Error::AccessDenied { application } => (
            S::FORBIDDEN,
            ErrorBody::new(
                "access_denied",
                format!("You don't have access to {application}."),
            ),
        ),
        Error::Storage(e) if e.is_unavailable() => {
            tracing::error!(error = %e, "storage unavailable");
            (
                S::SERVICE_UNAVAILABLE,
                ErrorBody::new(
                    "storage_unavailable",
                    "The database cannot take this change right now (disk full, read-only or busy). Try again later.",
                ),
            )
        }
        Error::Storage(e) => {
            tracing::error!(error = %e, "storage error");
            internal()
        }
        Error::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            internal()
        }
    }
}

/// "45 seconds", "1 minute", "15 minutes": how long to wait, as a person reads it.
fn wait_text(secs: u64) -> String {
    match secs {
        0..=1 => "a second".into(),
        2..=119 => format!("{secs} seconds"),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

fn internal() -> (StatusCode, ErrorBody) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorBody::new(
            "internal",
            "Something went wrong on our side; it has been logged.",
        ),
    )
}

/// A machine code for errors raised by the framework itself (unparsable JSON, a missing
/// parameter, a body too large, an unknown path).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "rate_limited",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_as_a_person_reads_them() {
        assert_eq!(wait_text(1), "a second");
        assert_eq!(wait_text(45), "45 seconds");
        assert_eq!(wait_text(120), "2 minutes");
        assert_eq!(wait_text(900), "15 minutes");
        assert_eq!(wait_text(901), "16 minutes");
    }
}
