//! The no-JavaScript confirmation step of an action: the same form again, with
//! `confirm=yes`. It is the action's one confirmation (SPEC §22): when the action also
//! needs "Confirm it's you", the password or code is asked on this same page, and when it
//! takes an administrator's reason, so is the reason.

use maud::html;
use poem::{IntoResponse, Response};

use crate::model::Authed;
use crate::web::{html_response, layout};

/// What the confirmation asks and where it posts.
pub struct Confirm<'a> {
    pub question: &'a str,
    pub detail: &'a str,
    pub action: &'a str,
    pub fields: &'a [(&'a str, String)],
    pub cancel: &'a str,
    pub button: &'a str,
    /// Ask for the optional reason shown to the person whose sessions end.
    pub reason: bool,
    /// Ask for the password (or a code) too: the session has not confirmed it is its
    /// person recently, and the action needs that.
    pub step_up: bool,
}

impl<'a> Confirm<'a> {
    /// "Yes, end them", without a reason or a password.
    pub fn new(
        question: &'a str,
        detail: &'a str,
        action: &'a str,
        fields: &'a [(&'a str, String)],
        cancel: &'a str,
    ) -> Self {
        Confirm {
            question,
            detail,
            action,
            fields,
            cancel,
            button: "Yes, end them",
            reason: false,
            step_up: false,
        }
    }
}

/// The optional reason an administrator gives, shown to the person whose sessions end.
pub const REASON_LABEL: &str = "Reason, shown to the person (optional)";

pub fn confirm_page(me: &Authed, csrf: &str, c: &Confirm<'_>) -> Response {
    let body = html! {
        main.narrow #main {
            h1 { (c.question) }
            p { (c.detail) }
            form.card method="post" action=(c.action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirm" value="yes";
                @for (name, value) in c.fields {
                    input type="hidden" name=(name) value=(value);
                }
                @if c.reason {
                    label { (REASON_LABEL) input type="text" name="reason" maxlength="200"; }
                }
                @if c.step_up {
                    p.muted { "To go on, enter your password again. A code from your authenticator app (or a recovery code) works too." }
                    label { "Password" input type="password" name="step_up_password" autocomplete="current-password"; }
                    label { "Or a code" input type="text" name="step_up_code" autocomplete="one-time-code" maxlength="16"; }
                }
                div.actions {
                    button.danger type="submit" { (c.button) }
                    a.button href=(c.cancel) { "Cancel" }
                }
            }
        }
    };
    html_response(layout("Confirm", Some((me, csrf)), body)).into_response()
}
