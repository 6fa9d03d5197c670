//! The pages the OpenID endpoints show, in Doorman's frame (the same stylesheet as the
//! other pages; this skin does not import the pages' module, so the frame is its own).

use maud::{DOCTYPE, Markup, html};
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};

use crate::domain::oidc::authorize::{Need, Params};

pub fn page(title: &str, status: StatusCode, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Doorman" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header.top { a.brand href="/" { "Doorman" } }
                (body)
                script src="/assets/app.js" defer {}
            }
        }
    };
    let mut resp = poem::web::Html(markup.into_string())
        .with_status(status)
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A request that cannot go back to the application (an unknown client or redirect
/// URI, a broken form): said here, never redirected.
pub fn error(status: StatusCode, message: &str) -> Response {
    page(
        "Sign-in problem",
        status,
        html! {
            main.narrow {
                h1 { "This sign-in cannot go on" }
                p.notice.error role="alert" { (message) }
                p.muted { "Go back to the application and try again. If it keeps happening, tell whoever runs it." }
                p { a href="/" { "Back to Doorman" } }
            }
        },
    )
}

fn hidden(params: &Params, csrf: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        @for (name, value) in params.pairs() {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// "Confirm it's you" before an application gets the sign-in (`prompt=login`,
/// `max_age`, or an application that requires a second factor).
pub fn confirm(
    app: &str,
    params: &Params,
    csrf: &str,
    need: Need,
    passkey: bool,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let action = format!("{}/confirm", super::AUTHORIZE);
    page(
        "Confirm it's you",
        status,
        html! {
            main.narrow {
                h1 { "Confirm it's you" }
                @match need {
                    Need::SecondFactor => p { strong { (app) } " asks for a second factor. Enter a code from your authenticator app (or a recovery code)." },
                    Need::Fresh => p { strong { (app) } " asks you to sign in again. Enter your password; a code from your authenticator app works too." },
                }
                @if let Some(e) = error { p.notice.error role="alert" { (e) } }
                @if passkey {
                    section.card.passkey-step-up data-passkey {
                        button.primary type="button" data-ceremony="get" data-begin="/settings/security/second-factors/step-up/passkey" { "Confirm with a passkey" }
                        p.muted.passkey-status role="status" {}
                        form method="post" action=(action) {
                            (hidden(params, csrf))
                            input type="hidden" name="step_up_passkey" data-ceremony-token value="";
                            input type="hidden" name="step_up_credential" data-credential value="";
                        }
                    }
                    script src="/assets/passkeys.js" defer {}
                }
                form.card method="post" action=(action) {
                    (hidden(params, csrf))
                    @if need == Need::Fresh {
                        label { "Password" input type="password" name="step_up_password" autocomplete="current-password" autofocus; }
                    }
                    label { "Code" input type="text" name="step_up_code" autocomplete="one-time-code" inputmode="text" maxlength="16"; }
                    div.actions {
                        button.primary type="submit" { "Confirm and continue" }
                    }
                }
            }
        },
    )
}

/// "Grafana wants your name and email".
pub fn consent(app: &str, scopes: &str, params: &Params, csrf: &str) -> Response {
    let action = format!("{}/consent", super::AUTHORIZE);
    let mut what: Vec<&str> = Vec::new();
    for (scope, words) in [
        ("profile", "your name"),
        ("email", "your email address"),
        ("groups", "your role and account"),
        (
            "offline_access",
            "to stay signed in while your Doorman session lasts",
        ),
    ] {
        if crate::domain::oidc::has_scope(scopes, scope) {
            what.push(words);
        }
    }
    page(
        "Allow access",
        StatusCode::OK,
        html! {
            main.narrow {
                h1 { (app) " wants to sign you in" }
                @if what.is_empty() {
                    p { (app) " will know it is you." }
                } @else {
                    p { (app) " wants " (what.join(", ")) "." }
                }
                form.card method="post" action=(action) {
                    (hidden(params, csrf))
                    div.actions {
                        button.primary type="submit" name="answer" value="allow" { "Allow" }
                        button type="submit" name="answer" value="deny" { "Cancel" }
                    }
                }
            }
        },
    )
}

/// "Sign out of Doorman and every app?"
pub fn end_session_confirm(csrf: &str, fields: &[(&str, String)]) -> Response {
    page(
        "Sign out",
        StatusCode::OK,
        html! {
            main.narrow {
                h1 { "Sign out of Doorman and every app?" }
                p { "This ends your Doorman session on this device, and the apps you signed in to with it." }
                form.card method="post" action=(super::END_SESSION) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="confirm" value="yes";
                    @for (name, value) in fields {
                        input type="hidden" name=(name) value=(value);
                    }
                    div.actions {
                        button.primary type="submit" { "Sign out" }
                        a.button href="/" { "Stay signed in" }
                    }
                }
            }
        },
    )
}

pub fn signed_out() -> Response {
    page(
        "Signed out",
        StatusCode::OK,
        html! {
            main.narrow {
                h1 { "You have signed out" }
                p { a href="/login" { "Sign in again" } }
            }
        },
    )
}
