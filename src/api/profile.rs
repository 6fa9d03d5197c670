//! One's own profile for scripts (SPEC §11): name, email change, password change. The
//! rules are in `domain::people::profile` and `domain::people::users`, shared with the Profile page.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiAuth;
use super::auth::ApiTags;
use super::errors::api_errors;
use crate::domain::people::profile;
use crate::domain::people::users::change_own_password;
use crate::state::AppState;

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PasswordChangeBody {
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
    /// At least `security.password_min_length` characters (default 10) and not easy to
    /// guess (zxcvbn score 3 or more).
    #[oai(validator(max_length = 4096))]
    pub new_password: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct EmailChangeBody {
    #[oai(validator(max_length = 320))]
    pub new_email: String,
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
}

#[derive(ApiResponse)]
pub enum PasswordChanged {
    /// The password was changed; every other session of yours has ended.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum EmailChangeStarted {
    /// A confirmation link was emailed to the new address; the email changes when it is
    /// opened (and the old address is told).
    #[oai(status = 202)]
    Accepted,
}

api_errors!(PasswordChangeError {
    BadRequest = 400: "`wrong_password`: the current password is not right; `weak_password`: the new one is refused (the message says why); or a malformed body.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
    TooManyRequests = 429: "Too many wrong passwords for this email or from this address.",
});

api_errors!(EmailChangeError {
    BadRequest = 400: "`invalid_email`, `same_email`, `wrong_password`, or a malformed body.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    Conflict = 409: "`email_taken`: a user with that email exists.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
    TooManyRequests = 429: "Too many wrong passwords for this email or from this address.",
});

pub struct ProfileApi;

#[OpenApi(tag = "ApiTags::Auth")]
impl ProfileApi {
    /// Change my password. Every other session of mine ends; this one stays.
    #[oai(
        path = "/me/password",
        method = "post",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
        body: Json<PasswordChangeBody>,
    ) -> Result<PasswordChanged, PasswordChangeError> {
        let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
        let b = body.0;
        change_own_password(
            &state,
            auth.authed(),
            &client,
            b.current_password,
            b.new_password,
            true,
        )
        .await?;
        Ok(PasswordChanged::NoContent)
    }

    /// Change my email: a confirmation link goes to the new address, and the change
    /// happens only when it is opened.
    #[oai(path = "/me/email", method = "post", operation_id = "changeEmail")]
    async fn change_email(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ApiAuth,
        body: Json<EmailChangeBody>,
    ) -> Result<EmailChangeStarted, EmailChangeError> {
        let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
        let b = body.0;
        profile::request_email_change(
            &state,
            auth.authed(),
            &client,
            &b.new_email,
            b.current_password,
        )
        .await?;
        Ok(EmailChangeStarted::Accepted)
    }
}
