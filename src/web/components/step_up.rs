//! "Confirm it's you" (SPEC §12) on the pages: the fields a guarded form adds, the check,
//! and the page that asks.

use maud::html;
use poem::{IntoResponse, Response};

use crate::error::Error;
use crate::model::{Authed, ClientInfo};
use crate::paths;
use crate::state::AppState;
use crate::web::{error_page, html_response, layout};

/// The two fields a "Confirm it's you" form adds to the form of the action it guards.
#[derive(serde::Deserialize, Default, Clone)]
pub struct StepUpFields {
    #[serde(default)]
    pub step_up_password: String,
    #[serde(default)]
    pub step_up_code: String,
    /// A passkey's answer, and the ceremony it answers.
    #[serde(default)]
    pub step_up_passkey: String,
    #[serde(default)]
    pub step_up_credential: String,
}

impl StepUpFields {
    pub fn proof(&self) -> crate::domain::factors::step_up::Proof {
        if !self.step_up_credential.is_empty() {
            return crate::domain::factors::step_up::Proof::Passkey {
                token: self.step_up_passkey.clone(),
                credential: self.step_up_credential.clone(),
            };
        }
        crate::domain::factors::step_up::Proof::from_fields(
            Some(self.step_up_password.clone()),
            Some(self.step_up_code.clone()),
        )
    }
}

/// What a guarded action is, for the "Confirm it's you" page: what it does ("end all
/// other sessions"), where its form posts, its fields (with `confirm=yes` when it had
/// its confirmation already) and where Cancel goes.
pub struct Guarded<'a> {
    pub what: &'a str,
    pub action: &'a str,
    pub fields: &'a [(&'a str, String)],
    pub cancel: &'a str,
}

/// "Confirm it's you" before a sensitive action (SPEC §12), the same check for every
/// page that has one: the action goes ahead (`Ok`) when the session confirmed recently
/// or the form carries a right password or code; otherwise the answer is the page that
/// asks, inline, and then posts the same action again with everything it had.
pub async fn confirm_its_you(
    state: &AppState,
    client: &ClientInfo,
    me: &Authed,
    csrf: &str,
    step_up: &StepUpFields,
    guarded: &Guarded<'_>,
) -> Result<(), Response> {
    match crate::domain::factors::step_up::require(state, me, client, step_up.proof()).await {
        Ok(()) => Ok(()),
        Err(err) => {
            Err(step_up_refusal(me, csrf, guarded, &err).unwrap_or_else(|| error_page(&err)))
        }
    }
}

/// The answer to a guarded action the domain refused for want of a (right) proof: the
/// "Confirm it's you" page, with what went wrong when a proof was given. `None` for
/// any other error.
pub fn step_up_refusal(
    me: &Authed,
    csrf: &str,
    guarded: &Guarded<'_>,
    err: &Error,
) -> Option<Response> {
    match err {
        Error::StepUpRequired => Some(step_up_page(me, csrf, guarded, None, 200)),
        Error::Invalid {
            code: "wrong_password" | "missing_proof",
            ..
        }
        | Error::InvalidCode
        | Error::RateLimited { .. } => {
            let (status, body) = crate::http::errors::describe(err);
            Some(step_up_page(
                me,
                csrf,
                guarded,
                Some(&body.message),
                status.as_u16(),
            ))
        }
        _ => None,
    }
}

fn step_up_page(
    me: &Authed,
    csrf: &str,
    g: &Guarded<'_>,
    error: Option<&str>,
    status: u16,
) -> Response {
    let body = html! {
        main.narrow #main {
            h1 { "Confirm it's you" }
            p { "To " (g.what) ", enter your password again. A code from your authenticator app (or a recovery code) works too." }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            @if me.session.auth_methods.contains(crate::model::AuthMethod::Passkey) {
                section.card.passkey-step-up data-passkey {
                    button.primary type="button" data-ceremony="get" data-begin=(format!("{}/step-up/passkey", paths::SECOND_FACTORS)) { "Confirm with a passkey" }
                    p.muted.passkey-status role="status" {}
                    form method="post" action=(g.action) {
                        input type="hidden" name="csrf" value=(csrf);
                        @for (name, value) in g.fields {
                            input type="hidden" name=(name) value=(value);
                        }
                        input type="hidden" name="step_up_passkey" data-ceremony-token value="";
                        input type="hidden" name="step_up_credential" data-credential value="";
                    }
                }
                script src="/assets/passkeys.js" defer {}
            }
            form.card method="post" action=(g.action) {
                input type="hidden" name="csrf" value=(csrf);
                @for (name, value) in g.fields {
                    input type="hidden" name=(name) value=(value);
                }
                label { "Password" input type="password" name="step_up_password" autocomplete="current-password" autofocus; }
                label { "Or a code" input type="text" name="step_up_code" autocomplete="one-time-code" inputmode="text" maxlength="16"; }
                div.actions {
                    button.primary type="submit" { "Confirm and continue" }
                    a.button href=(g.cancel) { "Cancel" }
                }
            }
        }
    };
    let status = poem::http::StatusCode::from_u16(status).unwrap_or(poem::http::StatusCode::OK);
    html_response(layout("Confirm it's you", Some((me, csrf)), body))
        .with_status(status)
        .into_response()
}
