//! The no-JavaScript confirmation step of an action: the same form again, with
//! `confirm=yes`.

use maud::html;
use poem::{IntoResponse, Response};

use crate::domain::auth::Authed;
use crate::web::{html_response, layout};

/// The no-JavaScript confirmation step: the same form again with `confirm=yes`.
pub fn confirm_page(
    me: &Authed,
    csrf: &str,
    question: &str,
    detail: &str,
    action: &str,
    fields: &[(&str, String)],
    cancel: &str,
) -> Response {
    confirm_action(
        me,
        csrf,
        question,
        detail,
        action,
        fields,
        cancel,
        "Yes, end them",
    )
}

/// [`confirm_page`] with the confirming button's label.
#[allow(clippy::too_many_arguments)]
pub fn confirm_action(
    me: &Authed,
    csrf: &str,
    question: &str,
    detail: &str,
    action: &str,
    fields: &[(&str, String)],
    cancel: &str,
    button: &str,
) -> Response {
    let body = html! {
        main.narrow {
            h1 { (question) }
            p { (detail) }
            form.card method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirm" value="yes";
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                div.actions {
                    button.danger type="submit" { (button) }
                    a.button href=(cancel) { "Cancel" }
                }
            }
        }
    };
    html_response(layout("Confirm", Some((me, csrf)), body)).into_response()
}

