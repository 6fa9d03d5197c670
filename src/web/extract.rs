//! Who is asking, once (STYLE habit 15): the extractors a page handler names in its
//! signature, as `ApiAuth` is for the API. When one fails, the handler never runs and
//! the browser gets the page that says why: the sign-in page for an ended session, the
//! error page for a form that cannot be read or did not come from Doorman, the 404 of
//! an admin page for anyone else.

use poem::web::Form;
use poem::{FromRequest, Request, RequestBody, Response};
use serde::de::DeserializeOwned;

use super::components::sign_in::{pre_csrf_ok, stale_form};
use super::{error_page, page_session};
use crate::domain::permissions::{AdminScope, admin_scope};
use crate::domain::tokens;
use crate::error::Error;
use crate::model::{Authed, ClientInfo};
use crate::state::AppState;

/// What a page handler answers: the page, or (through `?` on a domain call) the error
/// page with the status the API would give.
pub type PageResult = Result<Response, PageError>;

/// What a page answers instead of going on: a domain error (shown as the error page),
/// or a page of its own (the sign-in page, "Confirm it's you").
pub enum PageError {
    Domain(Error),
    Page(Response),
}

impl From<Error> for PageError {
    fn from(err: Error) -> Self {
        PageError::Domain(err)
    }
}

impl From<Response> for PageError {
    fn from(page: Response) -> Self {
        PageError::Page(page)
    }
}

impl From<PageError> for poem::Error {
    fn from(err: PageError) -> Self {
        match err {
            PageError::Domain(err) => answer(error_page(&err)),
            PageError::Page(page) => answer(page),
        }
    }
}

fn answer(resp: Response) -> poem::Error {
    poem::Error::from_response(resp)
}

fn state_of(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| answer(error_page(&Error::Internal("no state".into()))))
}

/// A signed-in page request: the session and the CSRF value of its forms.
pub struct PageSession {
    pub me: Authed,
    pub csrf: String,
}

impl<'a> FromRequest<'a> for PageSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = state_of(req)?;
        let (me, token) = page_session(req, state).await.map_err(answer)?;
        let csrf = tokens::csrf_for_session(&token);
        Ok(PageSession { me, csrf })
    }
}

/// A page of administrators and the owner: a [`PageSession`] whose person has an admin
/// scope (their account's, or every account's). Anyone else gets the same 404 as the
/// API gives them.
pub struct AdminPage {
    pub me: Authed,
    pub csrf: String,
    pub scope: AdminScope,
}

impl<'a> FromRequest<'a> for AdminPage {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let PageSession { me, csrf, .. } = PageSession::from_request(req, body).await?;
        let scope = admin_scope(&me.principal).map_err(|err| answer(error_page(&err)))?;
        Ok(AdminPage { me, csrf, scope })
    }
}

/// Where a page request comes from (its address, through the trusted proxies, and its
/// User-Agent), for the domain calls that record it.
pub struct Client(pub ClientInfo);

impl<'a> FromRequest<'a> for Client {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = state_of(req)?;
        Ok(Client(crate::client_ip::from_request(
            req,
            &state.config.server.trusted_proxies,
        )))
    }
}

/// A posted form, read; one that cannot be read gets the error page (400).
pub struct PageForm<T>(pub T);

impl<'a, T: DeserializeOwned + Send> FromRequest<'a> for PageForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Form(form) = Form::<T>::from_request(req, body).await.map_err(|_| {
            answer(error_page(&Error::invalid(
                "bad_form",
                "The form could not be read.",
            )))
        })?;
        Ok(PageForm(form))
    }
}

/// A form of a page shown before sign-in, read, with its double-submit CSRF value
/// checked against the browser's cookie; a stale one gets the error page (403).
pub struct PreSignInForm<T>(pub T);

impl<'a, T: DeserializeOwned + CsrfField + Send> FromRequest<'a> for PreSignInForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let PageForm(form) = PageForm::<T>::from_request(req, body).await?;
        if !pre_csrf_ok(req, form.csrf()) {
            return Err(answer(error_page(&stale_form())));
        }
        Ok(PreSignInForm(form))
    }
}

/// A form that carries the session's CSRF token in a `csrf` field.
pub trait CsrfField {
    fn csrf(&self) -> &str;
}

/// Implements [`CsrfField`] for forms whose token is their `csrf` field.
macro_rules! csrf_field {
    ($($form:ty),* $(,)?) => {
        $(impl $crate::web::extract::CsrfField for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}
pub(crate) use csrf_field;

/// An action's form, read, with its CSRF token checked against a live session: the
/// prologue of every page action. When any of it fails, the handler never runs and the
/// browser gets the page that says why (400 unreadable, 403 wrong token, or the
/// sign-in page when the session has ended).
pub struct CsrfForm<T> {
    pub me: Authed,
    pub form: T,
    /// The session's secret, for a handler that checks it again with more to read.
    pub token: String,
}

impl<'a, T: DeserializeOwned + CsrfField + Send> FromRequest<'a> for CsrfForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let PageForm(form) = PageForm::<T>::from_request(req, body).await?;
        let state = state_of(req)?;
        let (me, token) = page_session(req, state).await.map_err(answer)?;
        if !crate::http::csrf_matches(&token, form.csrf().as_bytes()) {
            return Err(answer(error_page(&Error::Forbidden(
                "This form has expired or did not come from Doorman. Reload the page and try again."
                    .into(),
            ))));
        }
        Ok(CsrfForm { me, form, token })
    }
}
