//! What every request is held to and every answer carries, for pages and the API alike:
//! the request body limit, the security headers and `Cache-Control`, and the count by
//! route that `/metrics` reports. One layer does all three (each layer costs every
//! request a move of the request and a future of its own).

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::config::Config;
use crate::state::AppState;

/// Request bodies larger than this are refused with 413 before they are read.
const MAX_BODY: usize = 64 * 1024;

/// The body limit ([`MAX_BODY`]), then security headers on every answer a browser may
/// see (the strict CSP on everything but the API docs, whose bundled UI needs inline
/// script; not on a forward-auth "yes", which only the proxy reads), and the answer
/// counted. What the configuration decides (the pages' policy, HSTS) is settled once, at
/// start.
pub struct EveryRequest {
    page_csp: HeaderValue,
    https: bool,
    state: AppState,
}

impl EveryRequest {
    pub fn new(state: &AppState) -> Self {
        EveryRequest {
            page_csp: page_csp(&state.config),
            https: state.config.server.secure_cookies(),
            state: state.clone(),
        }
    }
}

/// The pages' policy. `form-action` lists, beside this origin, the origins a form's
/// answer may redirect to: browsers hold every redirect after a form's submission to
/// it, and a sign-in ends on an application's origin (the forward-auth application the
/// person returns to, an OpenID client's redirect or post-logout URI).
fn page_csp(config: &Config) -> HeaderValue {
    let mut origins: Vec<String> = Vec::new();
    for app in &config.applications {
        let mut urls = vec![app.url.as_str()];
        if let Some(c) = &app.oidc {
            urls.extend(c.redirect_uris.iter().map(String::as_str));
            urls.extend(c.post_logout_redirect_uris.iter().map(String::as_str));
        }
        for u in urls {
            let Ok(parsed) = url::Url::parse(u) else {
                continue;
            };
            let origin = parsed.origin();
            // Only http(s) origins; a CSP source cannot carry anything else safely.
            if origin.is_tuple() && !origins.contains(&origin.ascii_serialization()) {
                origins.push(origin.ascii_serialization());
            }
        }
    }
    let mut form_action = String::from("'self'");
    for o in &origins {
        form_action.push(' ');
        form_action.push_str(o);
    }
    let csp = format!(
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action {form_action}; base-uri 'none'; object-src 'none'"
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        )
    })
}

impl<E: Endpoint> Middleware<E> for EveryRequest {
    type Output = EveryRequestEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EveryRequestEndpoint {
            inner,
            page_csp: self.page_csp.clone(),
            https: self.https,
            state: self.state.clone(),
        }
    }
}

pub struct EveryRequestEndpoint<E> {
    inner: E,
    page_csp: HeaderValue,
    https: bool,
    state: AppState,
}

impl<E: Endpoint> Endpoint for EveryRequestEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let path = req.uri().path();
        let is_docs = path.starts_with("/api/docs");
        let verdict = crate::paths::VERDICTS.iter().copied().find(|v| *v == path);
        // What is answered ahead of the router is counted by its path, as the router
        // would have counted it.
        let first = verdict.or_else(|| {
            let read = req.method() == poem::http::Method::GET;
            let mut reads = crate::paths::READS_FIRST.iter().copied();
            reads.find(|r| read && *r == path)
        });
        // An extractor's refusal (an unreadable form, a wrong CSRF token) is an answer
        // too, and gets the same headers.
        let refused = match body_fits(&req) {
            Fits::Yes => None,
            Fits::No => Some(too_large()),
            // Boxed: reading takes a 4 KiB buffer, which would otherwise be part of every
            // request's future (and copied with it) for the few that stream a body.
            Fits::Unknown => Box::pin(read_limited(&mut req)).await,
        };
        let mut resp = match refused {
            Some(refused) => refused,
            None => match self.inner.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            },
        };
        // A forward-auth "yes" goes to the proxy, which forwards the original request and
        // shows the browser the application's answer instead: the browser's headers on it
        // would be sent for nothing, on the busiest answer of all. Every other verdict (a
        // 401, a redirect to sign in, a refusal page) may reach the browser, and gets them.
        if !(verdict.is_some() && resp.status().is_success()) {
            self.browser_headers(resp.headers_mut(), is_docs);
        }
        let h = resp.headers_mut();
        if !h.contains_key(header::CACHE_CONTROL) {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        super::metrics::count(&self.state, first, &resp);
        Ok(resp)
    }
}

impl<E> EveryRequestEndpoint<E> {
    /// The headers a browser heeds: no sniffing, no referrer, no framing, the content
    /// policy (the docs' own for the API docs), and HSTS on an HTTPS install.
    fn browser_headers(&self, h: &mut poem::http::HeaderMap, is_docs: bool) {
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        let csp = if is_docs {
            // Swagger UI is one page of inline script and style that fetches the OpenAPI
            // document and calls the API on this origin: that, and nothing else.
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'; object-src 'none'",
            )
        } else {
            self.page_csp.clone()
        };
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
        if self.https {
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
    }
}

/// Whether the request's body is within [`MAX_BODY`], as far as its headers tell.
enum Fits {
    Yes,
    No,
    /// A streamed body (no `Content-Length`): only reading it tells.
    Unknown,
}

/// Whether the body fits, by `Content-Length` when given: bodies over [`MAX_BODY`] are
/// refused with 413 before a handler reads them, and a streamed one is read at most that
/// far ([`read_limited`]).
fn body_fits(req: &Request) -> Fits {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > MAX_BODY as u64 => Fits::No,
        Some(_) => Fits::Yes,
        // HTTP/1 has a body only with one of these two headers: nothing to read.
        None if req.version() <= poem::http::Version::HTTP_11
            && !req.headers().contains_key(header::TRANSFER_ENCODING) =>
        {
            Fits::Yes
        }
        None => Fits::Unknown,
    }
}

/// Reads a streamed body up to [`MAX_BODY`] and puts it back; the 413 answer when it is
/// longer.
async fn read_limited(req: &mut Request) -> Option<Response> {
    let body = req.take_body();
    match body.into_bytes_limit(MAX_BODY).await {
        Ok(bytes) => {
            req.set_body(bytes);
            None
        }
        Err(_) => Some(too_large()),
    }
}

fn too_large() -> Response {
    let body = super::errors::ErrorBody::new(
        "payload_too_large",
        format!("The request body is larger than {} bytes.", MAX_BODY),
    );
    poem::web::Json(body)
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        .into_response()
}
