//! The emails of team management (SPEC §11), one function each, text and HTML from
//! the same data: the invitation, the password-reset link, the notice that a password
//! was reset, the email-change confirmation (to the new address) and the notices that
//! a change was asked for (with its cancel link) and made (to the old one). Each carries
//! at most its own single-use link.

use lettre::Message;
use lettre::message::Mailbox;
use maud::{Markup, html};

use super::templates::{header_safe, message_to};
use crate::domain::alerts::Details;
use crate::domain::alerts::links::TeamMail;

pub const INVITATION_SUBJECT: &str = "You are invited to Doorman";
pub const RESET_LINK_SUBJECT: &str = "Reset your Doorman password";
pub const PASSWORD_RESET_SUBJECT: &str = "Your Doorman password was reset";
pub const EMAIL_CONFIRM_SUBJECT: &str = "Confirm your new email address for Doorman";
pub const EMAIL_CHANGED_SUBJECT: &str = "The email of your Doorman account was changed";
pub const EMAIL_CHANGE_REQUESTED_SUBJECT: &str =
    "Someone asked to change the email of your Doorman account";

/// Paragraphs and one link, as text and as HTML.
struct Body<'a> {
    name: String,
    paragraphs: Vec<String>,
    link: Option<(&'a str, &'a str)>,
    after: Vec<String>,
}

impl Body<'_> {
    fn text(&self) -> String {
        let mut t = format!("Hello {},\n\n", self.name);
        for p in &self.paragraphs {
            t.push_str(p);
            t.push_str("\n\n");
        }
        if let Some((label, url)) = self.link {
            t.push_str(&format!("{label}:\n{url}\n\n"));
        }
        for p in &self.after {
            t.push_str(p);
            t.push_str("\n\n");
        }
        t
    }

    fn html(&self) -> Markup {
        html! {
            p { "Hello " (self.name) "," }
            @for p in &self.paragraphs { p { (p) } }
            @if let Some((label, url)) = self.link {
                p { a href=(url) { strong { (label) } } }
                p { small { "Or copy this address into your browser: " (url) } }
            }
            @for p in &self.after { p { (p) } }
        }
    }
}

fn send(
    from: &Mailbox,
    to_email: &str,
    to_name: &str,
    subject: &str,
    message_id: &str,
    body: &Body<'_>,
) -> Result<Message, String> {
    message_to(
        from,
        to_email,
        to_name,
        subject,
        message_id,
        body.text(),
        body.html().into_string(),
    )
}

fn name(m: &TeamMail) -> String {
    header_safe(&m.to_name)
}

/// The invitation: who invited them, to which account, until when the link works.
pub fn invitation(
    from: &Mailbox,
    m: &TeamMail,
    url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let body = Body {
        name: name(m),
        paragraphs: vec![format!(
            "{} invited you to the account {} on Doorman, the sign-in of your team's applications.",
            m.invited_by, m.account
        )],
        link: Some(("Accept the invitation and choose your password", url)),
        after: vec![
            format!(
                "The link works once, until {}.",
                crate::clock::utc(m.link_expires_at)
            ),
            "If you did not expect this invitation, ignore this email.".into(),
        ],
    };
    send(
        from,
        &m.to_email,
        &m.to_name,
        INVITATION_SUBJECT,
        message_id,
        &body,
    )
}

/// A password-reset link (asked for on the "Forgot your password?" page, or sent by an
/// administrator).
pub fn reset_link(
    from: &Mailbox,
    m: &TeamMail,
    url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let body = Body {
        name: name(m),
        paragraphs: vec!["Someone asked to reset the password of your Doorman account.".into()],
        link: Some(("Choose a new password", url)),
        after: vec![
            format!(
                "The link works once, until {}. Setting a new password signs you out everywhere.",
                crate::clock::utc(m.link_expires_at)
            ),
            "If it was not you, ignore this email: your password stays as it is.".into(),
        ],
    };
    send(
        from,
        &m.to_email,
        &m.to_name,
        RESET_LINK_SUBJECT,
        message_id,
        &body,
    )
}

/// The notice that the password was reset with a link (it cannot be turned off).
pub fn password_reset(
    from: &Mailbox,
    d: &Details,
    login_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let body = Body {
        name: header_safe(&d.to_name),
        paragraphs: vec![format!(
            "The password of your Doorman account was reset at {}. Every session was \
                 signed out, and your devices were forgotten: the next sign-in from each \
                 of them will be reported to you.",
            crate::clock::utc(d.at)
        )],
        link: Some(("Sign in", login_url)),
        after: vec![
            "If this was not you, someone can read your email: tell your administrator at once."
                .into(),
        ],
    };
    send(
        from,
        &d.to_email,
        &d.to_name,
        PASSWORD_RESET_SUBJECT,
        message_id,
        &body,
    )
}

/// The confirmation link, to the new address.
pub fn email_confirm(
    from: &Mailbox,
    m: &TeamMail,
    url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let body = Body {
        name: name(m),
        paragraphs: vec![format!(
            "You asked to change the email of your Doorman account from {} to this address, {}.",
            m.old_email, m.new_email
        )],
        link: Some(("Confirm the new address", url)),
        after: vec![
            format!(
                "Nothing changes until you confirm. The link works once, until {}.",
                crate::clock::utc(m.link_expires_at)
            ),
            "If you did not ask for this, ignore this email.".into(),
        ],
    };
    send(
        from,
        &m.to_email,
        &m.to_name,
        EMAIL_CONFIRM_SUBJECT,
        message_id,
        &body,
    )
}

/// The notice to the old address that a change was asked for, with the link that
/// cancels it (it cannot be turned off).
pub fn email_change_requested(
    from: &Mailbox,
    m: &TeamMail,
    cancel_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let body = Body {
        name: name(m),
        paragraphs: vec![format!(
            "At {} someone asked to change the email of your Doorman account from {} to {}. \
             Nothing changes until the new address confirms.",
            crate::clock::utc(m.at),
            m.old_email,
            m.new_email
        )],
        link: Some(("If this was not you, cancel the change", cancel_url)),
        after: vec![
            format!(
                "The link works once, until {}. If it was not you, someone may know your \
                 password: change it, and tell your administrator.",
                crate::clock::utc(m.link_expires_at)
            ),
            "If it was you, there is nothing to do.".into(),
        ],
    };
    send(
        from,
        &m.to_email,
        &m.to_name,
        EMAIL_CHANGE_REQUESTED_SUBJECT,
        message_id,
        &body,
    )
}

/// The notice to the old address that the email changed (it cannot be turned off).
pub fn email_changed(
    from: &Mailbox,
    m: &TeamMail,
    profile_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let body = Body {
        name: name(m),
        paragraphs: vec![format!(
            "The email of your Doorman account was changed from {} to {} at {}. Sign-in \
             alerts and notices now go to the new address.",
            m.old_email,
            m.new_email,
            crate::clock::utc(m.at)
        )],
        link: Some(("Your profile", profile_url)),
        after: vec!["If this was not you, tell your administrator at once.".into()],
    };
    send(
        from,
        &m.to_email,
        &m.to_name,
        EMAIL_CHANGED_SUBJECT,
        message_id,
        &body,
    )
}
