//! The token endpoint (RFC 6749 §3.2, OpenID Connect Core §3.1.3): client
//! authentication, the code exchange with PKCE, refresh with rotation and reuse
//! detection; and revocation (RFC 7009). Every refusal is an RFC 6749 error, and a
//! refused code or refresh token leaves `app.token_refused` in the security log.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::Connection;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::userinfo::{Person, claims};
use super::{Client, has_scope, keys};
use crate::db::{self, oidc_grants::NewGrant, oidc_tokens::TokenRow};
use crate::domain::attempts::limits::Subject;
use crate::domain::audit::events::{self, NewEvent};
use crate::domain::tokens::{constant_time_eq, hash_token, new_token};
use crate::error::Error;
use crate::model::{EventType, UserStatus};
use crate::state::AppState;

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub enum TokenError {
    InvalidRequest(String),
    InvalidClient(String),
    InvalidGrant(String),
    UnauthorizedClient(String),
    UnsupportedGrantType,
    /// Too many failed client authentications: wait this many seconds.
    RateLimited(u64),
    Server(Error),
}

impl From<Error> for TokenError {
    fn from(e: Error) -> Self {
        TokenError::Server(e)
    }
}

impl From<crate::db::DbError> for TokenError {
    fn from(e: crate::db::DbError) -> Self {
        TokenError::Server(e.into())
    }
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient(_) | TokenError::RateLimited(_) => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnauthorizedClient(_) => "unauthorized_client",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::Server(_) => "server_error",
        }
    }

    pub fn description(&self) -> String {
        match self {
            TokenError::InvalidRequest(m)
            | TokenError::InvalidClient(m)
            | TokenError::InvalidGrant(m)
            | TokenError::UnauthorizedClient(m) => m.clone(),
            TokenError::UnsupportedGrantType => {
                "grant_type must be authorization_code or refresh_token".into()
            }
            TokenError::RateLimited(s) => {
                format!("too many failed client authentications; try again in {s} seconds")
            }
            TokenError::Server(e) if e.is_unavailable() => {
                "the server cannot answer now; try again shortly".into()
            }
            TokenError::Server(_) => "the server failed to answer".into(),
        }
    }

    /// 401 for a failed client authentication, 429 when limited, 503/500 for the
    /// server's own trouble, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::InvalidClient(_) => 401,
            TokenError::RateLimited(_) => 429,
            TokenError::Server(e) if e.is_unavailable() => 503,
            TokenError::Server(_) => 500,
            _ => 400,
        }
    }
}

/// How a client presented itself: HTTP Basic (`client_secret_basic`, both parts
/// form-urlencoded as RFC 6749 §2.3.1 says) or form fields (`client_secret_post`).
#[derive(Default)]
pub struct Credentials {
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// The client a request authenticates as. Public clients send their id only;
/// confidential ones their secret, compared with its SHA-256 hash. Failures count
/// toward the sign-in limits of the client id and the address.
pub fn authenticate<'a>(
    state: &'a AppState,
    creds: &Credentials,
    ip: IpAddr,
) -> Result<Client<'a>, TokenError> {
    let (id, secret) = match (&creds.basic, &creds.client_id, &creds.client_secret) {
        (Some(_), _, Some(_)) => {
            return Err(TokenError::InvalidRequest(
                "use one client authentication method, not two".into(),
            ));
        }
        (Some((id, secret)), form_id, None) => {
            if form_id.as_ref().is_some_and(|f| f != id) {
                return Err(TokenError::InvalidRequest(
                    "two different client ids".into(),
                ));
            }
            (id.clone(), Some(secret.clone()))
        }
        (None, Some(id), secret) => (id.clone(), secret.clone()),
        (None, None, _) => {
            return Err(TokenError::InvalidClient(
                "client authentication is missing".into(),
            ));
        }
    };
    let now = crate::clock::now();
    let key = format!("oidc-client:{id}");
    let who = Subject {
        email: &key,
        ip,
        known_device: None,
    };
    if let Some(wait) = state.limiter.limited(&who, now) {
        return Err(TokenError::RateLimited(wait));
    }
    let client = super::client(state, &id);
    let ok = match (client, secret) {
        (Some(c), None) => c.oidc.public,
        (Some(c), Some(s)) if !c.oidc.public => c
            .oidc
            .secret_digest()
            .is_some_and(|want| constant_time_eq(&Sha256::digest(s.as_bytes()), &want)),
        _ => false,
    };
    match client {
        Some(c) if ok => Ok(c),
        _ => {
            tracing::info!(client_id = %id.chars().take(64).collect::<String>(), "client authentication failed");
            let limiter = state.limiter.clone();
            let owned = key.clone();
            tokio::spawn(async move {
                let who = Subject {
                    email: &owned,
                    ip,
                    known_device: None,
                };
                if let Ok(r) = limiter.reserve(&who, now).await {
                    r.failed();
                }
            });
            Err(TokenError::InvalidClient(
                "client authentication failed".into(),
            ))
        }
    }
}

/// What the token endpoint answers.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub id_token: String,
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// RFC 7636: `BASE64URL(SHA256(verifier)) == challenge`; verifiers are 43–128
/// unreserved characters.
pub fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed
        && constant_time_eq(
            URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
                .as_bytes(),
            challenge.as_bytes(),
        )
}

/// Whether the grant gets a refresh token: asked for (`offline_access`), or always for
/// a confidential client.
fn wants_refresh(client: &Client<'_>, scopes: &str) -> bool {
    !client.oidc.public || has_scope(scopes, "offline_access")
}

/// What the id token says besides the person's claims.
struct IdContext<'a> {
    client_id: &'a str,
    sid: &'a str,
    auth_time: i64,
    nonce: Option<&'a str>,
    amr: Vec<&'static str>,
}

fn id_token(
    state: &AppState,
    client: &Client<'_>,
    who: &Person,
    scopes: &str,
    ctx: &IdContext<'_>,
) -> Result<String, Error> {
    let now = crate::clock::now();
    let mut c = claims(state, who, scopes);
    let ttl = state.config.oidc.access_token_ttl.as_secs() as i64;
    for (k, v) in [
        ("iss", json!(state.config.server.public_base())),
        ("aud", json!(ctx.client_id)),
        ("azp", json!(ctx.client_id)),
        ("iat", json!(now)),
        ("exp", json!(now + ttl)),
        ("auth_time", json!(ctx.auth_time)),
        ("sid", json!(ctx.sid)),
        ("amr", json!(ctx.amr)),
    ] {
        c.insert(k.into(), v);
    }
    if let Some(n) = ctx.nonce {
        c.insert("nonce".into(), json!(n));
    }
    keys::sign(
        state,
        client.oidc.id_token_signed_response_alg,
        "JWT",
        &Value::Object(c),
    )
}

/// A refusal that is also recorded (`app.token_refused`) in the same transaction.
fn refuse(
    tx: &Connection,
    client_id: &str,
    user: Option<(crate::model::UserId, crate::model::AccountId)>,
    sid: Option<&str>,
    why: &str,
) -> Result<(), crate::db::DbError> {
    let mut e = NewEvent::new(EventType::AppTokenRefused, crate::clock::now())
        .detail("client_id", client_id)
        .detail("reason", why);
    if let Some((u, a)) = user {
        e = e.user(u, a);
    }
    e.session_id = sid.map(str::to_string);
    events::record(tx, e)?;
    Ok(())
}

/// Issues the access token (and the refresh token, when the grant gets one) of a grant.
fn issue_tokens(
    tx: &Connection,
    grant: i64,
    ttl: i64,
    refresh: bool,
) -> Result<(String, Option<String>), crate::db::DbError> {
    let now = crate::clock::now();
    let access = new_token();
    db::oidc_tokens::insert(
        tx,
        &hash_token(&access),
        grant,
        "access",
        now,
        Some(now + ttl),
    )?;
    let refresh = refresh.then(new_token);
    if let Some(r) = &refresh {
        db::oidc_tokens::insert(tx, &hash_token(r), grant, "refresh", now, None)?;
    }
    Ok((access, refresh))
}

/// `grant_type=authorization_code`.
pub async fn exchange_code(
    state: &AppState,
    client: Client<'_>,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> Result<Issued, TokenError> {
    if code.is_empty() || code.len() > 128 {
        return Err(TokenError::InvalidRequest("code is missing".into()));
    }
    let hash = hash_token(code);
    let st = state.clone();
    let (client_id, app_name) = (client.oidc.client_id.clone(), client.app.name.clone());
    let (redirect_uri, verifier) = (redirect_uri.to_string(), verifier.map(str::to_string));
    let outcome = state
        .db
        .run(move |c| -> Result<Result<Issued, TokenError>, TokenError> {
            let tx = c.transaction().map_err(crate::db::DbError::from)?;
            let Some(client) = super::client(&st, &client_id) else {
                return Ok(Err(TokenError::InvalidClient("unknown client".into())));
            };
            let result = exchange_in(
                &st,
                &tx,
                client,
                &app_name,
                &hash,
                &redirect_uri,
                verifier.as_deref(),
            )?;
            tx.commit().map_err(crate::db::DbError::from)?;
            Ok(result)
        })
        .await?;
    st_metrics(state, "authorization_code", &outcome);
    outcome
}

fn st_metrics<T>(state: &AppState, grant: &'static str, r: &Result<T, TokenError>) {
    let outcome = match r {
        Ok(_) => "issued",
        Err(e) => e.code(),
    };
    state.metrics.count_oidc_token(grant, outcome);
}

/// The code exchange inside its transaction. The outer `Err` is the server's own
/// trouble (nothing is committed); the inner one a refusal, committed with its event
/// and, for a code used twice, the end of what it gave.
fn exchange_in(
    state: &AppState,
    tx: &Connection,
    client: Client<'_>,
    app_name: &str,
    hash: &[u8],
    redirect_uri: &str,
    verifier: Option<&str>,
) -> Result<Result<Issued, TokenError>, TokenError> {
    let now = crate::clock::now();
    let client_id = client.oidc.client_id.as_str();
    let bad = |why: &str| TokenError::InvalidGrant(why.to_string());
    let Some(code) = db::oidc_grants::find_code(tx, hash)? else {
        refuse(tx, client_id, None, None, "unknown_code")?;
        return Ok(Err(bad("the code is unknown, expired or already used")));
    };
    let session = db::sessions::find_by_pk(tx, code.session_pk)?;
    let who = session.as_ref().map(|s| (s.user_id, s.account_id));
    let sid = session.as_ref().map(|s| s.id.0.clone());
    if code.client_id != client_id {
        refuse(tx, client_id, who, sid.as_deref(), "code_of_another_client")?;
        return Ok(Err(bad("the code was not issued to this client")));
    }
    if code.used_at.is_some() {
        if let Some(grant) = code.grant_id {
            db::oidc_grants::end_grant(tx, grant, now, "code_reused")?;
        }
        refuse(tx, client_id, who, sid.as_deref(), "code_reused")?;
        return Ok(Err(bad("the code is unknown, expired or already used")));
    }
    db::oidc_grants::use_code(tx, hash, now)?;
    let refusal = if code.expires_at <= now {
        Some((
            "code_expired",
            "the code is unknown, expired or already used",
        ))
    } else if code.redirect_uri != redirect_uri {
        Some((
            "redirect_uri_mismatch",
            "redirect_uri differs from the authorization request's",
        ))
    } else {
        match (&code.code_challenge, verifier) {
            (Some(ch), Some(v)) if pkce_ok(v, ch) => None,
            (Some(_), _) => Some((
                "pkce_mismatch",
                "code_verifier does not match the code_challenge",
            )),
            (None, Some(_)) => Some((
                "pkce_unexpected",
                "code_verifier sent without a code_challenge",
            )),
            (None, None) => None,
        }
    };
    if let Some((reason, text)) = refusal {
        refuse(tx, client_id, who, sid.as_deref(), reason)?;
        return Ok(Err(bad(text)));
    }
    let person = match &session {
        Some(s) if s.is_active(now) => db::oidc_grants::find_person(tx, s.user_id)?
            .filter(|p| p.status == UserStatus::Active)
            .map(|p| (s, p)),
        _ => None,
    };
    let Some((session, p)) = person else {
        refuse(tx, client_id, who, sid.as_deref(), "session_ended")?;
        return Ok(Err(bad("the sign-in this code came from has ended")));
    };
    let grant = db::oidc_grants::insert_grant(
        tx,
        &NewGrant {
            session_pk: session.pk,
            user_id: session.user_id,
            client_id,
            application: app_name,
            sid: &session.id.0,
            scopes: &code.scopes,
            now,
        },
    )?;
    let Some(grant) = grant else {
        refuse(tx, client_id, who, sid.as_deref(), "session_ended")?;
        return Ok(Err(bad("the sign-in this code came from has ended")));
    };
    db::oidc_grants::set_code_grant(tx, hash, grant)?;
    let ttl = state.config.oidc.access_token_ttl.as_secs() as i64;
    let (access, refresh) = issue_tokens(tx, grant, ttl, wants_refresh(&client, &code.scopes))?;
    let person = Person {
        user_id: session.user_id,
        email: p.email,
        name: p.name,
        email_verified: p.email_verified,
        role: p.role,
        account_name: p.account_name,
    };
    let ctx = IdContext {
        client_id,
        sid: &session.id.0,
        auth_time: session.verified_at,
        nonce: code.nonce.as_deref(),
        amr: super::amr(session.auth_methods),
    };
    let id_token = id_token(state, &client, &person, &code.scopes, &ctx)?;
    events::record(
        tx,
        NewEvent::new(EventType::AppSignedIn, now)
            .session(session)
            .actor(Some(session.user_id))
            .detail("client_id", client_id)
            .detail("application", app_name),
    )?;
    Ok(Ok(Issued {
        access_token: access,
        expires_in: ttl,
        id_token,
        refresh_token: refresh,
        scope: code.scopes,
    }))
}

/// `grant_type=refresh_token`: the token is rotated; one used twice ends its grant.
pub async fn refresh(
    state: &AppState,
    client: Client<'_>,
    token: &str,
) -> Result<Issued, TokenError> {
    if token.is_empty() || token.len() > 128 {
        return Err(TokenError::InvalidRequest(
            "refresh_token is missing".into(),
        ));
    }
    let hash = hash_token(token);
    let st = state.clone();
    let client_id = client.oidc.client_id.clone();
    let outcome = state
        .db
        .run(move |c| -> Result<Result<Issued, TokenError>, TokenError> {
            let tx = c.transaction().map_err(crate::db::DbError::from)?;
            let Some(client) = super::client(&st, &client_id) else {
                return Ok(Err(TokenError::InvalidClient("unknown client".into())));
            };
            let result = refresh_in(&st, &tx, client, &hash)?;
            tx.commit().map_err(crate::db::DbError::from)?;
            Ok(result)
        })
        .await?;
    st_metrics(state, "refresh_token", &outcome);
    outcome
}

fn refresh_in(
    state: &AppState,
    tx: &Connection,
    client: Client<'_>,
    hash: &[u8],
) -> Result<Result<Issued, TokenError>, TokenError> {
    let now = crate::clock::now();
    let client_id = client.oidc.client_id.as_str();
    let bad = |why: &str| Ok(Err(TokenError::InvalidGrant(why.to_string())));
    let row: Option<TokenRow> = db::oidc_tokens::find(tx, hash, now)?;
    let Some(t) = row.filter(|t| t.kind == "refresh") else {
        refuse(tx, client_id, None, None, "unknown_refresh_token")?;
        return bad("the refresh token is unknown or no longer valid");
    };
    let who = Some((t.user_id, t.account_id));
    if t.client_id != client_id {
        refuse(tx, client_id, who, Some(&t.sid), "token_of_another_client")?;
        return bad("the refresh token was not issued to this client");
    }
    if t.used_at.is_some() || !db::oidc_tokens::use_once(tx, hash, now)? {
        db::oidc_grants::end_grant(tx, t.grant_id, now, "refresh_reused")?;
        refuse(tx, client_id, who, Some(&t.sid), "refresh_reused")?;
        return bad("the refresh token was already used; the grant is revoked");
    }
    if t.grant_ended || t.session_live_until.is_none() {
        refuse(tx, client_id, who, Some(&t.sid), "session_ended")?;
        return bad("the sign-in this token came from has ended");
    }
    if t.status != UserStatus::Active {
        refuse(tx, client_id, who, Some(&t.sid), "user_disabled")?;
        return bad("the person can no longer sign in");
    }
    db::oidc_grants::touch_grant(tx, t.grant_id, now)?;
    let ttl = state.config.oidc.access_token_ttl.as_secs() as i64;
    let (access, refresh) = issue_tokens(tx, t.grant_id, ttl, true)?;
    let ctx = IdContext {
        client_id,
        sid: &t.sid,
        auth_time: t.auth_time,
        nonce: None,
        amr: super::amr(t.auth_methods),
    };
    let id_token = id_token(state, &client, &Person::from(&t), &t.scopes, &ctx)?;
    Ok(Ok(Issued {
        access_token: access,
        expires_in: ttl,
        id_token,
        refresh_token: refresh,
        scope: t.scopes,
    }))
}

/// RFC 7009: a refresh token ends its grant (and every token of it); an access token
/// ends alone. A token the server does not know is answered as revoked.
pub async fn revoke(state: &AppState, client: Client<'_>, token: &str) -> Result<(), TokenError> {
    if token.is_empty() {
        return Err(TokenError::InvalidRequest("token is missing".into()));
    }
    if token.len() > 128 {
        return Ok(());
    }
    let hash = hash_token(token);
    let client_id = client.oidc.client_id.clone();
    state
        .db
        .run(move |c| -> Result<Result<(), TokenError>, TokenError> {
            let tx = c.transaction().map_err(crate::db::DbError::from)?;
            let now = crate::clock::now();
            let Some(t) = db::oidc_tokens::find(&tx, &hash, now)? else {
                return Ok(Ok(()));
            };
            if t.client_id != client_id {
                return Ok(Err(TokenError::UnauthorizedClient(
                    "the token was not issued to this client".into(),
                )));
            }
            if t.kind == "refresh" {
                db::oidc_grants::end_grant(&tx, t.grant_id, now, "revoked")?;
            } else {
                db::oidc_tokens::delete(&tx, &hash)?;
            }
            tx.commit().map_err(crate::db::DbError::from)?;
            Ok(Ok(()))
        })
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_of_the_rfc_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_ok(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_ok(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cX"
        ));
        assert!(!pkce_ok(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }
}
