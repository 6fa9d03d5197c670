//! Sign-in, sign-out and "who am I" for scripts.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::errors::api_errors;
use super::json::Written;
use super::model::{Me, MeUser, SessionJson, write_me};
use super::{ApiAuth, ApiToken};
use crate::domain::signin::flow::{self as auth_domain, SignInOutcome, SignInRequest};
use crate::domain::signin::issue::SignedIn;
use crate::domain::signin::second_step;
use crate::error::Error;
use crate::state::AppState;

#[derive(Tags)]
pub enum ApiTags {
    /// Signing in and out.
    Auth,
    /// Your own sessions.
    Sessions,
    /// Sessions and users of the accounts you administer.
    Admin,
    /// Your second factors and "confirm it's you".
    SecondFactors,
}

/// Credentials. The password is never logged.
#[derive(Object)]
pub struct LoginBody {
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(max_length = 1024))]
    pub password: String,
    /// The `device_id` a previous sign-in of this same person returned; omit it on a new
    /// device. Any other id (another person's, or one made up) is replaced by a new one.
    #[oai(validator(max_length = 64))]
    pub device_id: Option<String>,
    /// A configured application's name; the session's application is `api` without it.
    #[oai(validator(max_length = 64))]
    pub application: Option<String>,
}

#[derive(Debug, Object)]
pub struct LoginResult {
    /// The session's secret: send it as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// Keep it secret, like a password, and send it back at this person's next sign-in,
    /// so this device is recognised. Doorman never shows it again (only a hash of it).
    pub device_id: String,
    pub session: SessionJson,
}

/// The password was right and the person has a second factor: no session yet.
#[derive(Debug, Object)]
pub struct SecondFactorRequired {
    /// Always true.
    pub second_factor_required: bool,
    /// Send it with a code to `POST /api/v1/login/second-factor` within 5 minutes.
    pub challenge: String,
    /// What the second step accepts here: `totp`, `recovery_code` (passkeys need a
    /// browser).
    pub methods: Vec<String>,
    /// Keep it secret, like a password, and send it back at this person's next sign-in,
    /// so this device is recognised.
    pub device_id: String,
}

// The 200 answer is rare and small; boxing the common one would cost an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum LoginOk {
    /// Signed in: a new session was created.
    #[oai(status = 201)]
    Created(Json<LoginResult>),
    /// The password was right; a second step is needed (`POST /login/second-factor`).
    #[oai(status = 200)]
    SecondFactor(Json<SecondFactorRequired>),
}

api_errors!(LoginError {
    BadRequest = 400: "Malformed request or unknown application.",
    Unauthorized = 401: "Invalid email or password (the same answer for an unknown email).",
    Forbidden = 403: "`second_factor_enrolment_required`: a second factor is required and this person has none yet; they set one up by signing in on the web page.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
    TooManyRequests = 429: "Too many failed attempts for this email or from this address.",
});

/// The second step of a sign-in.
#[derive(Object)]
pub struct SecondFactorBody {
    /// The `challenge` of the `POST /login` answer.
    #[oai(validator(max_length = 128))]
    pub challenge: String,
    /// A 6-digit code of the authenticator app, or a recovery code (`xxxx-xxxx`).
    #[oai(validator(max_length = 64))]
    pub code: String,
}

#[derive(ApiResponse)]
pub enum SecondFactorOk {
    /// Signed in: a new session was created.
    #[oai(status = 201)]
    Created(Json<LoginResult>),
}

api_errors!(SecondFactorError {
    BadRequest = 400: "Malformed request (a field too long).",
    Unauthorized = 401: "`invalid_code`: the code is wrong or used already, or the challenge expired (5 minutes).",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
    TooManyRequests = 429: "Too many failed attempts for this email or from this address.",
});

#[derive(ApiResponse)]
pub enum LogoutOk {
    /// The current session has ended.
    #[oai(status = 204)]
    Ended,
}

api_errors!(AuthError {
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
});

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ProfileChangeBody {
    /// Display name, 1 to 128 characters.
    #[oai(validator(max_length = 512))]
    pub name: String,
}

api_errors!(ProfileChangeError {
    BadRequest = 400: "Invalid name or a malformed body.",
    Unauthorized = 401: "No valid session.",
    Forbidden = 403: "Cookie authentication without the X-CSRF-Token header.",
    UnsupportedMediaType = 415: "The body is not JSON: send `Content-Type: application/json`.",
});

fn signed_in(signed: SignedIn) -> LoginResult {
    LoginResult {
        session: SessionJson::new(&signed.session, Some(signed.session.pk)),
        token: signed.token,
        device_id: signed.device_id,
    }
}

pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign in with email and password.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LoginBody>,
    ) -> Result<LoginOk, LoginError> {
        let body = body.0;
        let application = match body.application {
            None => "api".to_string(),
            Some(name) => match state.config.application_named(&name) {
                Some(app) => app.name.clone(),
                None => {
                    return Err(Error::invalid(
                        "unknown_application",
                        "No application with that name is configured.",
                    )
                    .into());
                }
            },
        };
        let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
        let outcome = auth_domain::sign_in(
            &state,
            SignInRequest {
                email: body.email,
                password: body.password,
                device_id: body.device_id,
                application,
                target: String::new(),
            },
            client,
        )
        .await?;
        match outcome {
            SignInOutcome::SignedIn(signed) => Ok(LoginOk::Created(Json(signed_in(*signed)))),
            SignInOutcome::SecondStep(p) => Ok(LoginOk::SecondFactor(Json(SecondFactorRequired {
                second_factor_required: true,
                challenge: p.challenge,
                methods: p
                    .methods
                    .into_iter()
                    .filter(|m| *m != "passkey")
                    .map(str::to_string)
                    .collect(),
                device_id: p.device_id,
            }))),
            SignInOutcome::MustEnrol(_) => Err(Error::EnrolmentRequired.into()),
        }
    }

    /// The second step of a sign-in: the challenge and a code of the person's
    /// authenticator app or one of their recovery codes.
    #[oai(
        path = "/login/second-factor",
        method = "post",
        operation_id = "loginSecondFactor"
    )]
    async fn second_factor(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<SecondFactorBody>,
    ) -> Result<SecondFactorOk, SecondFactorError> {
        let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
        let signed = second_step::complete(&state, &body.challenge, &body.code, client).await?;
        Ok(SecondFactorOk::Created(Json(signed_in(signed))))
    }

    /// End the current session.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, state: Data<&AppState>, auth: ApiAuth) -> Result<LogoutOk, AuthError> {
        auth_domain::sign_out(&state, auth.authed()).await?;
        Ok(LogoutOk::Ended)
    }

    /// The signed-in user and the current session.
    #[oai(path = "/me", method = "get", operation_id = "me")]
    pub(super) async fn me(
        &self,
        state: Data<&AppState>,
        auth: ApiToken,
    ) -> Result<Written<Me>, AuthError> {
        let (_, json) = crate::domain::signin::check::authenticate_shown(
            &state,
            &auth.0,
            || auth.1,
            |me, session| write_me(&MeUser::from(&me.principal), session),
        )
        .await?;
        Ok(Written::new(json))
    }

    /// Change my display name.
    #[oai(path = "/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        state: Data<&AppState>,
        auth: ApiAuth,
        body: Json<ProfileChangeBody>,
    ) -> Result<Json<MeUser>, ProfileChangeError> {
        let user =
            crate::domain::people::profile::rename(&state, auth.authed(), &body.0.name).await?;
        Ok(Json(MeUser::from(&crate::model::Principal::from(&user))))
    }
}
