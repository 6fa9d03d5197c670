//! One function per email, building subject, text and HTML from the same data.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use maud::html;

use crate::domain::alerts::classify::Reasons;
use crate::domain::alerts::notices::Details;

pub struct NewSignIn<'a> {
    pub details: &'a Details,
    pub reasons: Reasons,
    pub held_back: i64,
    pub sessions_url: String,
    pub end_url: String,
    /// "Yes, it was me" and "No, secure my account" (SPEC §14).
    pub confirm_url: String,
    pub secure_url: String,
    pub message_id: &'a str,
}

/// The attribution the DB-IP licence asks for wherever its locations are shown.
const ATTRIBUTION_TEXT: &str = "IP geolocation by DB-IP (https://db-ip.com)";

fn attribution() -> maud::Markup {
    html! { p { small { a href="https://db-ip.com" { "IP geolocation by DB-IP" } } } }
}

fn new_sign_in_subject(reasons: Reasons) -> String {
    format!("New sign-in to Doorman from {}", reasons.phrase())
}

/// "New sign-in to Doorman from a new device and a new country".
pub fn new_sign_in(from: &Mailbox, e: &NewSignIn<'_>) -> Result<Message, String> {
    let d = e.details;
    let name = header_safe(&d.to_name);
    let subject = new_sign_in_subject(e.reasons);
    let when = crate::clock::utc(d.at);
    let mut rows = vec![
        ("When", when.as_str()),
        ("Device", d.device.as_str()),
        ("Browser", d.browser.as_str()),
        ("Operating system", d.os.as_str()),
        ("IP address", d.ip.as_str()),
        ("Location", d.location.as_str()),
    ];
    if let Some(j) = &d.journey {
        rows.push(("Impossible journey", j.as_str()));
    }
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
    for (k, v) in &rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!(
        "\nWas this you?\n  Yes, it was me: {}\n  No, secure my account: {}\n\n\
         Not you? End this session:\n{}\n\n\
         See and end all your sessions:\n{}\n",
        e.confirm_url, e.secure_url, e.end_url, e.sessions_url
    ));
    if !held.is_empty() {
        text.push_str(&format!("\n{held}\n"));
    }
    text.push_str(&format!("\n{ATTRIBUTION_TEXT}\n"));
    let page = html! {
        p { "Hello " (name) "," }
        p { "Your Doorman account was just signed in to from " strong { (e.reasons.phrase()) } "." }
        table cellpadding="4" {
            @for (k, v) in &rows { tr { td { (k) } td { strong { (v) } } } }
        }
        p { strong { "Was this you?" } " "
            a href=(e.confirm_url) { "Yes, it was me" } " · "
            a href=(e.secure_url) { "No, secure my account" } }
        p { a href=(e.end_url) { "Not you? End this session" } }
        p { a href=(e.sessions_url) { "See and end all your sessions" } }
        @if !held.is_empty() { p { small { (held) } } }
        (attribution())
    };
    message(from, d, &subject, e.message_id, text, page.into_string())
}

/// Line breaks cannot be put in a header (lettre panics on them): a name that got
/// control characters past validation is shown with spaces instead.
pub(super) fn header_safe(name: &str) -> String {
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
    message_to(
        from,
        &d.to_email,
        &d.to_name,
        subject,
        message_id,
        text,
        html,
    )
}

/// A message with a plain-text and an HTML part, to `to_name <to_email>`.
pub(super) fn message_to(
    from: &Mailbox,
    to_email: &str,
    to_name: &str,
    subject: &str,
    message_id: &str,
    text: String,
    html: String,
) -> Result<Message, String> {
    let to = Mailbox::new(
        Some(header_safe(to_name)),
        to_email.parse().map_err(|e| format!("recipient: {e}"))?,
    );
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id.to_string()))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| e.to_string())
}

pub const MOVED_SUBJECT: &str = "Your Doorman session moved to another country";

/// A live session is now used from another country than it signed in from.
pub fn session_moved(
    from: &Mailbox,
    d: &Details,
    sessions_url: &str,
    end_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let name = header_safe(&d.to_name);
    let now_at = d.moved_to.as_deref().unwrap_or("Unknown");
    let when = crate::clock::utc(d.at);
    let rows = [
        ("Now seen from", now_at),
        ("Signed in from", d.location.as_str()),
        ("Since", when.as_str()),
        ("Device", d.device.as_str()),
        ("Browser", d.browser.as_str()),
        ("Operating system", d.os.as_str()),
    ];
    let mut text = format!(
        "Hello {name},\n\nOne of your Doorman sessions is now used from another country \
         than the one it signed in from.\n\n"
    );
    for (k, v) in rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!(
        "\nIf you travelled or use a VPN, there is nothing to do.\n\nNot you? End this \
         session:\n{end_url}\n\nSee and end all your sessions:\n{sessions_url}\n\n\
         {ATTRIBUTION_TEXT}\n"
    ));
    let page = html! {
        p { "Hello " (name) "," }
        p { "One of your Doorman sessions is now used from another country than the one it signed in from." }
        table cellpadding="4" {
            @for (k, v) in rows { tr { td { (k) } td { strong { (v) } } } }
        }
        p { "If you travelled or use a VPN, there is nothing to do." }
        p { a href=(end_url) { "Not you? End this session" } }
        p { a href=(sessions_url) { "See and end all your sessions" } }
        (attribution())
    };
    message(from, d, MOVED_SUBJECT, message_id, text, page.into_string())
}

/// Told to an account's admins: one of their people reported a sign-in as not theirs.
pub fn not_me_report(from: &Mailbox, d: &Details, message_id: &str) -> Result<Message, String> {
    let name = header_safe(&d.to_name);
    let who = d.about.as_deref().unwrap_or("someone");
    let subject = format!("{} reported a sign-in that was not them", header_safe(who));
    let when = crate::clock::utc(d.at);
    let rows = [
        ("Person", who),
        ("Sign-in at", when.as_str()),
        ("Device", d.device.as_str()),
        ("Browser", d.browser.as_str()),
        ("Operating system", d.os.as_str()),
        ("IP address", d.ip.as_str()),
        ("Location", d.location.as_str()),
    ];
    let mut text = format!(
        "Hello {name},\n\n{who} reported this sign-in to Doorman as not theirs. All of \
         their sessions were ended, their devices forgotten, and they were asked to set a \
         new password.\n\n"
    );
    for (k, v) in rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!(
        "\nSomeone else may know their password: check the account's other sessions.\n\n\
         {ATTRIBUTION_TEXT}\n"
    ));
    let page = html! {
        p { "Hello " (name) "," }
        p { strong { (who) } " reported this sign-in to Doorman as not theirs. All of their sessions were ended, their devices forgotten, and they were asked to set a new password." }
        table cellpadding="4" {
            @for (k, v) in rows { tr { td { (k) } td { strong { (v) } } } }
        }
        p { "Someone else may know their password: check the account's other sessions." }
        (attribution())
    };
    message(from, d, &subject, message_id, text, page.into_string())
}

/// The rows a notice shows about the request it is about: when and the device always,
/// the rest when known.
fn detail_rows<'a>(d: &'a Details, when: &'a str) -> Vec<(&'static str, &'a str)> {
    let mut rows = vec![("When", when), ("Device", d.device.as_str())];
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
    rows
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
    let rows = detail_rows(d, &when);
    let mut text = format!(
        "Hello {name},\n\nThe password of your Doorman account was just changed, and your \
         other sessions were signed out.\n\n"
    );
    for (k, v) in &rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!(
        "\nIf this was you, there is nothing to do.\n\nIf it was not, someone knows your \
         password: tell your administrator at once.\n\nYour sessions:\n{sessions_url}\n\n\
         {ATTRIBUTION_TEXT}\n"
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
        (attribution())
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

pub const PASSWORD_KNOWN_SUBJECT: &str = "Someone knows your Doorman password";

/// The notice that the person's password was entered correctly and then the second step
/// failed several times in a row (SPEC §19): the second factor held, the password is
/// known. `d` is the last failed attempt.
pub fn password_known(
    from: &Mailbox,
    d: &Details,
    profile_url: &str,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let name = header_safe(&d.to_name);
    let when = crate::clock::utc(d.at);
    let rows = detail_rows(d, &when);
    let what = "Someone entered your Doorman password correctly, then failed the second step \
                (the code of your authenticator app, or a recovery code) 3 times in a row. \
                Your second factor stopped them, but they know your password.";
    let mut text = format!("Hello {name},\n\n{what}\n\nThe last attempt:\n");
    for (k, v) in &rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!(
        "\nIf this was you, there is nothing to do.\n\nIf it was not, change your password \
         now, and tell your administrator:\n{profile_url}\n\nYour sessions:\n{sessions_url}\n\n\
         {ATTRIBUTION_TEXT}\n"
    ));
    let page = html! {
        p { "Hello " (name) "," }
        p { (what) }
        p { "The last attempt:" }
        table cellpadding="4" {
            @for (k, v) in &rows { tr { td { (k) } td { strong { (v) } } } }
        }
        p { "If this was you, there is nothing to do." }
        p { strong { "If it was not, change your password now, and tell your administrator." } }
        p { a href=(profile_url) { "Change your password" } }
        p { a href=(sessions_url) { "See and end all your sessions" } }
        (attribution())
    };
    message(
        from,
        d,
        PASSWORD_KNOWN_SUBJECT,
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
    let rows = detail_rows(d, &when);
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
