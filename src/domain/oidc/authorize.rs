//! The authorization request (OpenID Connect Core §3.1.2, RFC 7636, RFC 9207): checked
//! in two steps. An unknown client or redirect URI is shown on a Doorman page and never
//! redirected; every later problem goes back to the client as `error=…` with `state`
//! and `iss`. Then the decision: sign in, confirm it's you (`prompt=login`, `max_age`,
//! an application's `require_second_factor`), consent, no access, or a code.

use serde::Deserialize;

use super::{CODE_TTL, Client, known_scopes};
use crate::db::{self, oidc_grants::NewCode};
use crate::domain::access;
use crate::domain::tokens::{hash_token, new_token};
use crate::error::Result;
use crate::model::Authed;
use crate::state::AppState;

/// The parameters of `/oidc/authorize`, from its query or its form.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Params {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_type: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub response_mode: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

impl Params {
    /// The parameters again, as pairs (the hidden fields of a page that continues the
    /// request, or the query of the URL it returns to after sign-in).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("response_type", self.response_type.clone()),
            ("scope", self.scope.clone()),
        ];
        for (k, v) in [
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("prompt", &self.prompt),
            ("max_age", &self.max_age),
            ("login_hint", &self.login_hint),
            ("response_mode", &self.response_mode),
        ] {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        }
        out
    }
}

/// A request that cannot go back to its client: shown on a Doorman page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    MissingClient,
    UnknownClient,
    MissingRedirect,
    UnregisteredRedirect,
}

impl PageError {
    pub fn message(self) -> &'static str {
        match self {
            PageError::MissingClient => "The application did not say who it is (no client_id).",
            PageError::UnknownClient => "This application is not registered with Doorman.",
            PageError::MissingRedirect => {
                "The application did not say where to return (no redirect_uri)."
            }
            PageError::UnregisteredRedirect => {
                "The address this application asked to return to is not one registered for it, so Doorman does not send you there."
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PageError::MissingClient => "missing_client",
            PageError::UnknownClient => "unknown_client",
            PageError::MissingRedirect => "missing_redirect_uri",
            PageError::UnregisteredRedirect => "unregistered_redirect_uri",
        }
    }
}

/// `prompt` as asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A well-formed request of a known client.
#[derive(Clone)]
pub struct Checked<'a> {
    pub client: Client<'a>,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scopes: String,
    pub challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

/// The client's redirect URI with `params`, `state` and `iss` (RFC 9207) added to its
/// query.
pub fn back_to_client(
    state: &AppState,
    redirect_uri: &str,
    params: &[(&str, &str)],
    client_state: Option<&str>,
) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_string();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = client_state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", state.config.server.public_base());
    }
    url.to_string()
}

/// An OAuth error for the client, as a redirect to it.
pub fn error_to_client(
    state: &AppState,
    c: &Checked<'_>,
    error: &str,
    description: &str,
) -> String {
    state.metrics.count_oidc_authorization(match error {
        "login_required" => "login_required",
        "access_denied" => "access_denied",
        "consent_required" => "consent_required",
        "interaction_required" => "interaction_required",
        _ => "invalid_request",
    });
    back_to_client(
        state,
        &c.redirect_uri,
        &[("error", error), ("error_description", description)],
        c.state.as_deref(),
    )
}

/// Checks a request: `Err` for a page, `Ok(Err(url))` for an error sent back to the
/// client, `Ok(Ok(_))` to decide on.
pub fn check<'a>(
    state: &'a AppState,
    p: &Params,
) -> std::result::Result<std::result::Result<Checked<'a>, String>, PageError> {
    if p.client_id.is_empty() {
        return Err(PageError::MissingClient);
    }
    let client = super::client(state, &p.client_id).ok_or(PageError::UnknownClient)?;
    if p.redirect_uri.is_empty() {
        return Err(PageError::MissingRedirect);
    }
    if !client.oidc.redirect_uris.contains(&p.redirect_uri) {
        return Err(PageError::UnregisteredRedirect);
    }
    let mut c = Checked {
        client,
        redirect_uri: p.redirect_uri.clone(),
        state: p.state.clone().filter(|s| !s.is_empty()),
        nonce: p.nonce.clone().filter(|s| !s.is_empty()),
        scopes: known_scopes(&p.scope),
        challenge: p.code_challenge.clone().filter(|s| !s.is_empty()),
        prompt: Prompt::default(),
        max_age: None,
        login_hint: p.login_hint.clone().filter(|s| !s.is_empty()),
    };
    let fail =
        |c: &Checked<'_>, error: &str, text: &str| Ok(Err(error_to_client(state, c, error, text)));
    if p.response_type != "code" {
        return fail(
            &c,
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if p.request.is_some() {
        return fail(
            &c,
            "request_not_supported",
            "request objects are not supported",
        );
    }
    if p.request_uri.is_some() {
        return fail(
            &c,
            "request_uri_not_supported",
            "request_uri is not supported",
        );
    }
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return fail(
            &c,
            "invalid_request",
            "only response_mode=query is supported",
        );
    }
    if !super::has_scope(&c.scopes, "openid") {
        return fail(&c, "invalid_scope", "the scope must include openid");
    }
    match (p.code_challenge_method.as_deref(), &c.challenge) {
        (Some("plain"), _) => {
            return fail(
                &c,
                "invalid_request",
                "PKCE method plain is refused; use S256",
            );
        }
        (Some(m), _) if m != "S256" => {
            return fail(&c, "invalid_request", "code_challenge_method must be S256");
        }
        (_, Some(ch)) if !challenge_ok(ch) => {
            return fail(
                &c,
                "invalid_request",
                "code_challenge must be 43 base64url characters",
            );
        }
        (None, Some(_)) => {
            return fail(
                &c,
                "invalid_request",
                "code_challenge_method=S256 is required (plain is refused)",
            );
        }
        (_, None) if client.oidc.public => {
            return fail(
                &c,
                "invalid_request",
                "a public client must use PKCE (S256)",
            );
        }
        _ => {}
    }
    if c.nonce.as_ref().is_some_and(|n| n.len() > 512)
        || c.state.as_ref().is_some_and(|s| s.len() > 2048)
    {
        return fail(&c, "invalid_request", "state or nonce is too long");
    }
    if let Some(raw) = p.max_age.as_deref().filter(|m| !m.is_empty()) {
        match raw.parse::<i64>() {
            Ok(n) if n >= 0 => c.max_age = Some(n),
            _ => return fail(&c, "invalid_request", "max_age must be a number of seconds"),
        }
    }
    for v in p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match v {
            "none" => c.prompt.none = true,
            "login" => c.prompt.login = true,
            "consent" => c.prompt.consent = true,
            "select_account" => {}
            _ => {
                return fail(
                    &c,
                    "invalid_request",
                    "prompt may be none, login, consent or select_account",
                );
            }
        }
    }
    if c.prompt.none && (c.prompt.login || c.prompt.consent) {
        return fail(
            &c,
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }
    Ok(Ok(c))
}

fn challenge_ok(ch: &str) -> bool {
    ch.len() == 43
        && ch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What must happen before a code is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A fresh proof (`prompt=login`, or the sign-in is older than `max_age`).
    Fresh,
    /// The application requires a second factor the session did not use.
    SecondFactor,
}

/// The decision on a checked request.
#[derive(Debug)]
pub enum Next {
    /// Back to the client: a code, or an error.
    Redirect(String),
    /// Not signed in: the sign-in page, and back.
    SignIn,
    /// Signed in, but the application's rules do not include the person.
    Denied(String),
    Confirm(Need),
    Consent,
}

/// What the person has just answered on a page of this request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Answers {
    pub confirmed: bool,
    pub consented: bool,
}

/// Decides on a checked request for the session `authed` (if any).
pub async fn decide(
    state: &AppState,
    c: &Checked<'_>,
    authed: Option<&Authed>,
    answers: Answers,
) -> Result<Next> {
    let Some(me) = authed else {
        if c.prompt.none {
            return Ok(Next::Redirect(error_to_client(
                state,
                c,
                "login_required",
                "not signed in",
            )));
        }
        state.metrics.count_oidc_authorization("sign_in");
        return Ok(Next::SignIn);
    };
    let app = c.client.app;
    if !access::allows_person(app, me) {
        access::note_denial(state, me, &app.name, "rules");
        if c.prompt.none {
            return Ok(Next::Redirect(error_to_client(
                state,
                c,
                "access_denied",
                "not allowed",
            )));
        }
        state.metrics.count_oidc_authorization("denied");
        return Ok(Next::Denied(app.name.clone()));
    }
    let now = crate::clock::now();
    let too_old = c.max_age.is_some_and(|m| now - me.session.verified_at > m);
    let need = if app.require_second_factor && !access::second_factor(me) {
        Some(Need::SecondFactor)
    } else if (c.prompt.login && !answers.confirmed) || too_old {
        Some(Need::Fresh)
    } else {
        None
    };
    if let Some(need) = need {
        if c.prompt.none {
            let (error, text) = match need {
                Need::SecondFactor => (
                    "interaction_required",
                    "the application requires a second factor",
                ),
                Need::Fresh => ("login_required", "the sign-in is older than max_age"),
            };
            return Ok(Next::Redirect(error_to_client(state, c, error, text)));
        }
        state.metrics.count_oidc_authorization("confirm");
        return Ok(Next::Confirm(need));
    }
    if !answers.consented && needs_consent(state, c, me).await? {
        if c.prompt.none {
            return Ok(Next::Redirect(error_to_client(
                state,
                c,
                "consent_required",
                "consent is required",
            )));
        }
        state.metrics.count_oidc_authorization("consent");
        return Ok(Next::Consent);
    }
    let code = issue_code(state, c, me).await?;
    state.metrics.count_oidc_authorization("code");
    Ok(Next::Redirect(back_to_client(
        state,
        &c.redirect_uri,
        &[("code", &code)],
        c.state.as_deref(),
    )))
}

/// Whether the person must be asked: the client asks for consent (or the request says
/// `prompt=consent`) and they have not agreed to these scopes before.
async fn needs_consent(state: &AppState, c: &Checked<'_>, me: &Authed) -> Result<bool> {
    if c.prompt.consent {
        return Ok(true);
    }
    if !c.client.oidc.consent {
        return Ok(false);
    }
    let (user, client_id) = (me.principal.user_id, c.client.oidc.client_id.clone());
    let given = state
        .db
        .run(move |conn| db::oidc_grants::find_consent(conn, user, &client_id))
        .await?;
    let given = given.unwrap_or_default();
    Ok(!c.scopes.split(' ').all(|s| super::has_scope(&given, s)))
}

/// Records that the person agreed to give the client these scopes.
pub async fn save_consent(state: &AppState, c: &Checked<'_>, me: &Authed) -> Result<()> {
    let (user, client_id, scopes) = (
        me.principal.user_id,
        c.client.oidc.client_id.clone(),
        c.scopes.clone(),
    );
    let now = crate::clock::now();
    state
        .db
        .run(move |conn| db::oidc_grants::save_consent(conn, user, &client_id, &scopes, now))
        .await?;
    Ok(())
}

/// A new code, stored as its hash, bound to the client, the redirect URI, the PKCE
/// challenge and the session.
async fn issue_code(state: &AppState, c: &Checked<'_>, me: &Authed) -> Result<String> {
    let code = new_token();
    let hash = hash_token(&code);
    let now = crate::clock::now();
    let (pk, client_id, redirect, challenge, nonce, scopes) = (
        me.session.pk,
        c.client.oidc.client_id.clone(),
        c.redirect_uri.clone(),
        c.challenge.clone(),
        c.nonce.clone(),
        c.scopes.clone(),
    );
    state
        .db
        .run(move |conn| {
            db::oidc_grants::insert_code(
                conn,
                &NewCode {
                    code_hash: &hash,
                    session_pk: pk,
                    client_id: &client_id,
                    redirect_uri: &redirect,
                    code_challenge: challenge.as_deref(),
                    nonce: nonce.as_deref(),
                    scopes: &scopes,
                    now,
                    expires_at: now + CODE_TTL,
                },
            )
        })
        .await?;
    Ok(code)
}

/// The second factor just proved in this session counts for it from now on (an
/// application that requires one let the person in after "Confirm it's you" with a
/// code or a passkey).
pub async fn add_second_factor(
    state: &AppState,
    me: &Authed,
    method: crate::model::AuthMethod,
) -> Result<()> {
    let methods = me.session.auth_methods.with(method).to_text();
    let pk = me.session.pk;
    state
        .db
        .run(move |c| db::sessions::add_auth_method(c, pk, &methods))
        .await?;
    Ok(())
}

/// "Confirm it's you" for an authorization (SPEC §12's step-up): a fresh proof makes
/// the session fresh; a missing second factor needs a code or a passkey, which then
/// counts as the session's second factor.
pub async fn confirm(
    state: &AppState,
    me: &Authed,
    client: &crate::model::ClientInfo,
    proof: crate::domain::factors::step_up::Proof,
    need: Need,
) -> Result<()> {
    use crate::domain::factors::step_up::{self, Proof};
    use crate::model::AuthMethod;
    match (need, proof) {
        (_, Proof::None) | (Need::SecondFactor, Proof::Password(_)) => {
            Err(crate::error::Error::invalid(
                "missing_proof",
                match need {
                    Need::SecondFactor => {
                        "Enter a code from your authenticator app (or a recovery code)."
                    }
                    Need::Fresh => "Enter your password, or a code from your second factor.",
                },
            ))
        }
        (Need::SecondFactor, Proof::Code(code)) => {
            let p = &me.principal;
            let prover = crate::domain::factors::codes::Prover {
                user: p.user_id,
                email: &p.email,
                name: &p.name,
                known_device: None,
                client,
            };
            let method = crate::domain::factors::codes::check_code(state, &prover, &code).await?;
            step_up::mark_fresh(state, me).await?;
            add_second_factor(state, me, method).await
        }
        (Need::SecondFactor, proof @ Proof::Passkey { .. }) => {
            step_up::step_up(state, me, client, proof).await?;
            add_second_factor(state, me, AuthMethod::Passkey).await
        }
        (Need::Fresh, proof) => step_up::step_up(state, me, client, proof).await,
    }
}
