//! One function per email, building subject, text and HTML from the same data.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use maud::html;

use crate::domain::alerts::{Details, Reasons};

pub struct NewSignIn<'a> {
    pub details: &'a Details,
    pub reasons: Reasons,
    pub held_back: i64,
    pub sessions_url: String,
    pub end_url: String,
    pub message_id: &'a str,
}

pub fn new_sign_in_subject(reasons: Reasons) -> String {
    format!("New sign-in to Doorman from {}", reasons.phrase())
}

/// "New sign-in to Doorman from a new device and a new country".
pub fn new_sign_in(from: &Mailbox, e: &NewSignIn<'_>) -> Result<Message, String> {
    let d = e.details;
    let name = header_safe(&d.to_name);
    let subject = new_sign_in_subject(e.reasons);
    let when = crate::clock::utc(d.at);
    let rows = [
        ("When", when.as_str()),
        ("Device", d.device.as_str()),
        ("Browser", d.browser.as_str()),
        ("Operating system", d.os.as_str()),
        ("IP address", d.ip.as_str()),
        ("Location", d.location.as_str()),
    ];
    let held = match e.held_back {
        0 => String::new(),
        1 => "1 more alert was held back in the last hour (at most 5 are sent per hour).".into(),
        n => format!(
            "{n} more alerts were held back in the last hour (at most 5 are sent per hour)."
        ),
    };
    let mut text = format!(
        "Hello {},\n\nYour Doorman account was just signed in to from {}.\n\n",
        name,
        e.reasons.phrase()
    );
    for (k, v) in rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!(
        "\nIf this was you, there is nothing to do.\n\nNot you? End this session:\n{}\n\n\
         See and end all your sessions:\n{}\n",
        e.end_url, e.sessions_url
    ));
    if !held.is_empty() {
        text.push_str(&format!("\n{held}\n"));
    }
    let page = html! {
        p { "Hello " (name) "," }
        p { "Your Doorman account was just signed in to from " strong { (e.reasons.phrase()) } "." }
        table cellpadding="4" {
            @for (k, v) in rows { tr { td { (k) } td { strong { (v) } } } }
        }
        p { "If this was you, there is nothing to do." }
        p { a href=(e.end_url) { "Not you? End this session" } }
        p { a href=(e.sessions_url) { "See and end all your sessions" } }
        @if !held.is_empty() { p { small { (held) } } }
    };
    message(from, d, &subject, e.message_id, text, page.into_string())
}

/// Line breaks cannot be put in a header (lettre panics on them): a name that got
/// control characters past validation is shown with spaces instead.
fn header_safe(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn message(
    from: &Mailbox,
    d: &Details,
    subject: &str,
    message_id: &str,
    text: String,
    html: String,
) -> Result<Message, String> {
    let to = Mailbox::new(
        Some(header_safe(&d.to_name)),
        d.to_email.parse().map_err(|e| format!("recipient: {e}"))?,
    );
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id.to_string()))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| e.to_string())
}

pub const PASSWORD_CHANGED_SUBJECT: &str = "Your Doorman password was changed";

/// The security notice sent whenever a password changes (it cannot be turned off).
pub fn password_changed(
    from: &Mailbox,
    d: &Details,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let name = header_safe(&d.to_name);
    let when = crate::clock::utc(d.at);
    let mut rows = vec![("When", when.as_str()), ("Device", d.device.as_str())];
    for (k, v) in [
        ("Browser", d.browser.as_str()),
        ("Operating system", d.os.as_str()),
        ("IP address", d.ip.as_str()),
        ("Location", d.location.as_str()),
    ] {
        if !v.is_empty() {
            rows.push((k, v));
        }
    }
    let mut text = format!(
        "Hello {name},\n\nThe password of your Doorman account was just changed, and your \
         other sessions were signed out.\n\n"
    );
    for (k, v) in &rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!(
        "\nIf this was you, there is nothing to do.\n\nIf it was not, someone knows your \
         password: tell your administrator at once.\n\nYour sessions:\n{sessions_url}\n"
    ));
    let page = html! {
        p { "Hello " (name) "," }
        p { "The password of your Doorman account was just changed, and your other sessions were signed out." }
        table cellpadding="4" {
            @for (k, v) in &rows { tr { td { (k) } td { strong { (v) } } } }
        }
        p { "If this was you, there is nothing to do." }
        p { strong { "If it was not, someone knows your password: tell your administrator at once." } }
        p { a href=(sessions_url) { "See and end all your sessions" } }
    };
    message(
        from,
        d,
        PASSWORD_CHANGED_SUBJECT,
        message_id,
        text,
        page.into_string(),
    )
}

/// The security notices of second factors (SPEC §12): what happened, from where, and
/// what to do if it was not the person. They cannot be turned off.
pub fn second_factor_added(
    from: &Mailbox,
    d: &Details,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    factor_notice(
        from,
        d,
        "A second factor was added to your Doorman account",
        "A second factor (an authenticator app or a passkey) was just added to your Doorman account.",
        sessions_url,
        message_id,
    )
}

pub fn second_factor_removed(
    from: &Mailbox,
    d: &Details,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    factor_notice(
        from,
        d,
        "A second factor was removed from your Doorman account",
        "A second factor (an authenticator app or a passkey) was just removed from your Doorman account.",
        sessions_url,
        message_id,
    )
}

pub fn recovery_code_used(
    from: &Mailbox,
    d: &Details,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    factor_notice(
        from,
        d,
        "A recovery code was used for your Doorman account",
        "One of your recovery codes was just used to sign in to your Doorman account. It cannot be used again.",
        sessions_url,
        message_id,
    )
}

pub fn second_factors_reset(
    from: &Mailbox,
    d: &Details,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    factor_notice(
        from,
        d,
        "Your Doorman second factors were reset",
        "An administrator removed every second factor and recovery code of your Doorman account, and signed out all your sessions. Sign in with your password and set up a new second factor.",
        sessions_url,
        message_id,
    )
}

fn factor_notice(
    from: &Mailbox,
    d: &Details,
    subject: &str,
    what: &str,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let name = header_safe(&d.to_name);
    let when = crate::clock::utc(d.at);
    let mut rows = vec![("When", when.as_str()), ("Device", d.device.as_str())];
    for (k, v) in [
        ("Browser", d.browser.as_str()),
        ("Operating system", d.os.as_str()),
        ("IP address", d.ip.as_str()),
        ("Location", d.location.as_str()),
    ] {
        if !v.is_empty() {
            rows.push((k, v));
        }
    }
    let mut text = format!("Hello {name},\n\n{what}\n\n");
    for (k, v) in &rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!(
        "\nIf this was you, there is nothing to do.\n\nIf it was not, tell your \
         administrator at once.\n\nYour sessions:\n{sessions_url}\n"
    ));
    let page = html! {
        p { "Hello " (name) "," }
        p { (what) }
        table cellpadding="4" {
            @for (k, v) in &rows { tr { td { (k) } td { strong { (v) } } } }
        }
        p { "If this was you, there is nothing to do." }
        p { strong { "If it was not, tell your administrator at once." } }
        p { a href=(sessions_url) { "See and end all your sessions" } }
    };
    message(from, d, subject, message_id, text, page.into_string())
}
