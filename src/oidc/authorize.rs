//! `/oidc/authorize` and the pages it may show before the application gets its code.

use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{AUTHORIZE, pages, see_other};
use crate::domain::oidc::authorize::{self as flow, Answers, Checked, Next, Params};
use crate::domain::signin::check::authenticate_from;
use crate::domain::tokens;
use crate::error::Error;
use crate::http::cookies;
use crate::http::errors::describe;
use crate::model::AuthMethod;
use crate::model::Authed;
use crate::paths;
use crate::state::AppState;

/// GET: the parameters in the query. A repeated parameter is malformed (RFC 6749 §3.1).
#[handler]
pub async fn start(
    req: &Request,
    state: Data<&AppState>,
    query: poem::Result<Query<Params>>,
) -> Response {
    match query {
        Ok(Query(params)) => run(req, &state, params, Answers::default()).await,
        Err(_) => malformed(&state),
    }
}

/// POST: the parameters as a form (OpenID Connect Core §3.1.2.1 allows both).
#[handler]
pub async fn start_form(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<Params>>,
) -> Response {
    match form {
        Ok(Form(params)) => run(req, &state, params, Answers::default()).await,
        Err(_) => malformed(&state),
    }
}

fn malformed(state: &AppState) -> Response {
    state.metrics.count_oidc_authorization("page_error");
    pages::error(
        StatusCode::BAD_REQUEST,
        "The application's sign-in request could not be read (a parameter is repeated or malformed).",
    )
}

/// The session of the request's cookie, if it is signed in (a session held at
/// enrolment is not, for an application).
async fn session(req: &Request, state: &AppState) -> Result<Option<(Authed, String)>, Error> {
    let Some(token) = cookies::get(req, cookies::SESSION_COOKIE).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let trusted = &state.config.server.trusted_proxies;
    match authenticate_from(state, &token, || {
        Some(crate::client_ip::ip_of(req, trusted))
    })
    .await
    {
        Ok(authed) => Ok(Some((authed, token))),
        Err(Error::Unauthenticated(_) | Error::EnrolmentRequired) => Ok(None),
        Err(err) => Err(err),
    }
}

fn server_trouble(err: &Error) -> Response {
    let (status, body) = describe(err);
    pages::error(status, &body.message)
}

/// The parameters to go on with once the person proved it was them: `prompt=login`
/// is answered, and must not ask again.
fn answered_login(params: &Params) -> Params {
    let mut p = params.clone();
    p.prompt = p.prompt.map(|v| {
        v.split(' ')
            .filter(|s| *s != "login")
            .collect::<Vec<_>>()
            .join(" ")
    });
    p
}

/// Where the sign-in page returns to: this request again, its `prompt=login`
/// answered by the sign-in itself.
fn return_address(params: &Params) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(answered_login(params).pairs())
        .finish();
    let back = format!("{AUTHORIZE}?{query}");
    let mut to = url::form_urlencoded::Serializer::new(String::new());
    to.append_pair("rd", &back);
    // `login_hint`: the address the sign-in form starts with.
    if let Some(hint) = params.login_hint.as_deref().filter(|h| !h.is_empty()) {
        to.append_pair("email", hint);
    }
    format!("{}?{}", paths::LOGIN, to.finish())
}

async fn run(req: &Request, state: &AppState, params: Params, answers: Answers) -> Response {
    let checked = match flow::check(state, &params) {
        Err(page) => {
            state.metrics.count_oidc_authorization("page_error");
            tracing::info!(reason = page.as_str(), "authorization request refused");
            return pages::error(StatusCode::BAD_REQUEST, page.message());
        }
        Ok(Err(to_client)) => return see_other(&to_client),
        Ok(Ok(c)) => c,
    };
    let me = match session(req, state).await {
        Ok(me) => me,
        Err(err) => return server_trouble(&err),
    };
    answer(state, &checked, &params, me.as_ref(), answers).await
}

async fn answer(
    state: &AppState,
    checked: &Checked<'_>,
    params: &Params,
    me: Option<&(Authed, String)>,
    answers: Answers,
) -> Response {
    let next = match flow::decide(state, checked, me.map(|(a, _)| a), answers).await {
        Ok(next) => next,
        Err(err) => return server_trouble(&err),
    };
    let app = checked.client.app.name.as_str();
    match (next, me) {
        (Next::Redirect(to), _) => see_other(&to),
        (Next::SignIn, _) | (_, None) => see_other(&return_address(params)),
        (Next::Denied(name), _) => {
            let name: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
            see_other(&format!("{}?app={name}", paths::DENIED))
        }
        (Next::Confirm(need), Some((authed, token))) => pages::confirm(
            app,
            params,
            &tokens::csrf_for_session(token),
            need,
            authed.session.auth_methods.contains(AuthMethod::Passkey),
            None,
            StatusCode::OK,
        ),
        (Next::Consent, Some((_, token))) => pages::consent(
            app,
            &checked.scopes,
            params,
            &tokens::csrf_for_session(token),
        ),
    }
}

/// The parameters of a page's form, its CSRF token and what the person answered.
#[derive(Deserialize)]
pub struct PageForm {
    #[serde(flatten)]
    params: Params,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    answer: String,
    #[serde(default)]
    step_up_password: String,
    #[serde(default)]
    step_up_code: String,
    #[serde(default)]
    step_up_passkey: String,
    #[serde(default)]
    step_up_credential: String,
}

impl PageForm {
    fn proof(&self) -> crate::domain::factors::step_up::Proof {
        use crate::domain::factors::step_up::Proof;
        if !self.step_up_credential.is_empty() {
            return Proof::Passkey {
                token: self.step_up_passkey.clone(),
                credential: self.step_up_credential.clone(),
            };
        }
        Proof::from_fields(
            Some(self.step_up_password.clone()),
            Some(self.step_up_code.clone()),
        )
    }
}

/// A page's form: the session, its CSRF token, and the request checked again.
async fn page_form<'a>(
    req: &Request,
    state: &'a AppState,
    form: &PageForm,
) -> Result<(Checked<'a>, (Authed, String)), Response> {
    let checked = match flow::check(state, &form.params) {
        Err(page) => return Err(pages::error(StatusCode::BAD_REQUEST, page.message())),
        Ok(Err(to_client)) => return Err(see_other(&to_client)),
        Ok(Ok(c)) => c,
    };
    let me = match session(req, state).await {
        Ok(Some(me)) => me,
        Ok(None) => return Err(see_other(&return_address(&form.params))),
        Err(err) => return Err(server_trouble(&err)),
    };
    let want = tokens::csrf_for_session(&me.1);
    if !tokens::constant_time_eq(want.as_bytes(), form.csrf.as_bytes()) {
        return Err(pages::error(
            StatusCode::FORBIDDEN,
            "This form has expired. Go back to the application and sign in again.",
        ));
    }
    Ok((checked, me))
}

/// "Confirm it's you", answered.
#[handler]
pub async fn confirm(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<PageForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return malformed(&state);
    };
    let (checked, me) = match page_form(req, &state, &form).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let need = match flow::decide(&state, &checked, Some(&me.0), Answers::default()).await {
        Ok(Next::Confirm(need)) => need,
        Ok(_) => {
            return answer(
                &state,
                &checked,
                &form.params,
                Some(&me),
                Answers::default(),
            )
            .await;
        }
        Err(err) => return server_trouble(&err),
    };
    let client = crate::client_ip::from_request(req, &state.config.server.trusted_proxies);
    if let Err(err) = flow::confirm(&state, &me.0, &client, form.proof(), need).await {
        let (status, body) = describe(&err);
        let status = if status == StatusCode::FORBIDDEN {
            StatusCode::UNAUTHORIZED
        } else {
            status
        };
        return match err {
            Error::Invalid { .. }
            | Error::InvalidCode
            | Error::RateLimited { .. }
            | Error::InvalidCredentials => pages::confirm(
                &checked.client.app.name,
                &form.params,
                &form.csrf,
                need,
                me.0.session.auth_methods.contains(AuthMethod::Passkey),
                Some(&body.message),
                status,
            ),
            _ => server_trouble(&err),
        };
    }
    // Read again: the session is fresh now, and may count a second factor.
    let me = match session(req, &state).await {
        Ok(Some(me)) => me,
        Ok(None) => return see_other(&return_address(&form.params)),
        Err(err) => return server_trouble(&err),
    };
    let params = answered_login(&form.params);
    let answers = Answers {
        confirmed: true,
        consented: false,
    };
    answer(&state, &checked, &params, Some(&me), answers).await
}

/// "Allow" or "Cancel" on the consent page.
#[handler]
pub async fn consent(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<PageForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return malformed(&state);
    };
    let (checked, me) = match page_form(req, &state, &form).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    if form.answer != "allow" {
        return see_other(&flow::error_to_client(
            &state,
            &checked,
            "access_denied",
            "the person did not allow it",
        ));
    }
    if let Err(err) = flow::save_consent(&state, &checked, &me.0).await {
        return server_trouble(&err);
    }
    let answers = Answers {
        confirmed: false,
        consented: true,
    };
    answer(&state, &checked, &form.params, Some(&me), answers).await
}
