//! `/oidc/token`, `/oidc/userinfo` and `/oidc/revoke`: JSON, errors as RFC 6749 §5.2
//! (RFC 6750 §3 for userinfo).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;
use serde_json::json;

use super::no_store_json;
use crate::domain::oidc::token::{self as flow, Credentials, Issued, TokenError};
use crate::domain::oidc::{keys, userinfo as claims};
use crate::state::AppState;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    token: Option<String>,
    token_type_hint: Option<String>,
}

/// `Authorization: Basic …` as RFC 6749 §2.3.1 has it: both parts form-urlencoded.
fn basic(req: &Request) -> Result<Option<(String, String)>, TokenError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || TokenError::InvalidClient("the Authorization header cannot be read".into());
    let text = value.to_str().map_err(|_| bad())?;
    let Some(b64) = text
        .strip_prefix("Basic ")
        .or_else(|| text.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let raw = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((decode(id), decode(secret))))
}

fn credentials(req: &Request, form: &TokenForm) -> Result<Credentials, TokenError> {
    Ok(Credentials {
        basic: basic(req)?,
        client_id: form.client_id.clone().filter(|s| !s.is_empty()),
        client_secret: form.client_secret.clone().filter(|s| !s.is_empty()),
    })
}

fn error_response(err: &TokenError, basic_used: bool) -> Response {
    if let TokenError::Server(e) = err {
        tracing::warn!(%e, "token endpoint failed");
    }
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = no_store_json(
        status,
        &json!({"error": err.code(), "error_description": err.description()}),
    );
    if status == StatusCode::UNAUTHORIZED && basic_used {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"doorman\""),
        );
    }
    if let TokenError::RateLimited(wait) = err
        && let Ok(v) = HeaderValue::from_str(&wait.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn issued(i: Issued) -> Response {
    let mut body = json!({
        "access_token": i.access_token,
        "token_type": "Bearer",
        "expires_in": i.expires_in,
        "id_token": i.id_token,
        "scope": i.scope,
    });
    if let Some(r) = i.refresh_token {
        body["refresh_token"] = json!(r);
    }
    no_store_json(StatusCode::OK, &body)
}

fn unreadable(state: &AppState) -> Response {
    state.metrics.count_oidc_token("unknown", "invalid_request");
    error_response(
        &TokenError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded, each parameter once".into(),
        ),
        false,
    )
}

#[handler]
pub async fn token(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<TokenForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return unreadable(&state);
    };
    let basic_used = req.headers().contains_key(header::AUTHORIZATION);
    let ip = crate::client_ip::ip_of(req, &state.config.server.trusted_proxies);
    let client = match credentials(req, &form).and_then(|c| flow::authenticate(&state, &c, ip)) {
        Ok(c) => c,
        Err(err) => {
            state.metrics.count_oidc_token("unknown", err.code());
            return error_response(&err, basic_used);
        }
    };
    if let Err(err) = keys::refresh(&state).await {
        tracing::warn!(%err, "could not read the signing keys again");
    }
    let _ = &form.scope;
    let result = match form.grant_type.as_deref() {
        Some("authorization_code") => {
            flow::exchange_code(
                &state,
                client,
                form.code.as_deref().unwrap_or(""),
                form.redirect_uri.as_deref().unwrap_or(""),
                form.code_verifier.as_deref(),
            )
            .await
        }
        Some("refresh_token") => {
            flow::refresh(&state, client, form.refresh_token.as_deref().unwrap_or("")).await
        }
        Some(_) => {
            state
                .metrics
                .count_oidc_token("unknown", "unsupported_grant_type");
            Err(TokenError::UnsupportedGrantType)
        }
        None => Err(TokenError::InvalidRequest("grant_type is missing".into())),
    };
    match result {
        Ok(i) => issued(i),
        Err(err) => error_response(&err, basic_used),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UserinfoForm {
    access_token: Option<String>,
}

/// `/oidc/userinfo`: the bearer token from the header, or (POST) the form.
#[handler]
pub async fn userinfo(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<UserinfoForm>>,
) -> Response {
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let form_token = form.ok().and_then(|f| f.0.access_token);
    let presented = header_token.or(form_token).unwrap_or_default();
    let refused = |error: &str, text: &str| {
        let mut resp = no_store_json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": error, "error_description": text}),
        );
        let challenge = format!("Bearer error=\"{error}\", error_description=\"{text}\"");
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    };
    if presented.is_empty() {
        state
            .metrics
            .count_oidc_token("userinfo", "invalid_request");
        return refused("invalid_request", "no access token");
    }
    match claims::userinfo(&state, &presented).await {
        Ok(Ok(claims)) => {
            state.metrics.count_oidc_token("userinfo", "issued");
            no_store_json(StatusCode::OK, &serde_json::Value::Object(claims))
        }
        Ok(Err(why)) => {
            state.metrics.count_oidc_token("userinfo", "invalid_token");
            tracing::debug!(reason = why.as_str(), "userinfo refused");
            refused("invalid_token", "the access token is not valid")
        }
        Err(err) => error_response(&TokenError::Server(err), false),
    }
}

/// `/oidc/revoke` (RFC 7009): 200 for a revoked or unknown token.
#[handler]
pub async fn revoke(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<TokenForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return unreadable(&state);
    };
    let basic_used = req.headers().contains_key(header::AUTHORIZATION);
    let ip = crate::client_ip::ip_of(req, &state.config.server.trusted_proxies);
    let client = match credentials(req, &form).and_then(|c| flow::authenticate(&state, &c, ip)) {
        Ok(c) => c,
        Err(err) => return error_response(&err, basic_used),
    };
    let _ = &form.token_type_hint;
    match flow::revoke(&state, client, form.token.as_deref().unwrap_or("")).await {
        Ok(()) => {
            state.metrics.count_oidc_token("revoke", "issued");
            no_store_json(StatusCode::OK, &json!({}))
        }
        Err(err) => error_response(&err, basic_used),
    }
}
