//! One function per email, building subject, text and HTML from the same data (an
//! [`Email`] drawn by the one template of [`super::layout`]).

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::layout::{Action, Email};
use crate::domain::alerts::classify::Reasons;
use crate::domain::alerts::notices::Details;

pub struct NewSignIn<'a> {
    pub details: &'a Details,
    pub reasons: Reasons,
    pub held_back: i64,
    pub sessions_url: String,
    /// "This wasn't me — secure my account" (the one primary action) and "Yes, it was
    /// me" (SPEC §14, §22).
    pub confirm_url: String,
    pub secure_url: String,
    pub message_id: &'a str,
}

pub fn new_sign_in_subject(reasons: Reasons) -> String {
    format!("New sign-in to Doorman from {}", reasons.phrase())
}

/// "When" in UTC, and in the reader's time zone when known.
pub(super) fn when(d: &Details, t: i64) -> String {
    crate::clock::utc_and_local(t, d.time_zone.as_deref())
}

/// The device rows of a request: the operating system as people name it ("iOS 17.1").
fn device_rows(e: Email, d: &Details) -> Email {
    e.row("Device", d.device.as_str())
        .row("Browser", d.browser.as_str())
        .row("Operating system", crate::ua::os_text_for_people(&d.os))
}

/// The footer link to the person's sessions.
fn sessions_link(url: &str) -> Action {
    Action::new("See and end your sessions", url)
}

/// "New sign-in to Doorman from a new device and a new country".
pub fn new_sign_in(from: &Mailbox, e: &NewSignIn<'_>) -> Result<Message, String> {
    let d = e.details;
    let subject = new_sign_in_subject(e.reasons);
    let mut mail = Email {
        preheader: format!("{} · {}", d.location, d.device),
        name: header_safe(&d.to_name),
        lead: vec![format!(
            "Your Doorman account was just signed in to from {}.",
            e.reasons.phrase()
        )],
        question: Some("Was this you?".into()),
        primary: Some(Action::new(
            "This wasn't me \u{2014} secure my account",
            &e.secure_url,
        )),
        secondary: Some(Action::new("Yes, it was me", &e.confirm_url)),
        footer: vec![sessions_link(&e.sessions_url)],
        attribution: true,
        ..Email::default()
    }
    .row("When", when(d, d.at));
    mail = device_rows(mail, d)
        .row("IP address", d.ip.as_str())
        .row("Location", d.location.as_str());
    if let Some(j) = &d.journey {
        mail = mail.row("Impossible journey", j.as_str());
    }
    mail.after.push(
        "Securing your account ends every session, forgets your devices and emails you a \
         link to choose a new password."
            .into(),
    );
    match e.held_back {
        0 => {}
        1 => mail.after.push(
            "1 more alert was held back in the last hour (at most 5 are sent per hour).".into(),
        ),
        n => mail.after.push(format!(
            "{n} more alerts were held back in the last hour (at most 5 are sent per hour)."
        )),
    }
    mail.message(from, (&d.to_email, &d.to_name), &subject, e.message_id)
}

/// Line breaks cannot be put in a header (lettre panics on them): a name that got
/// control characters past validation is shown with spaces instead.
pub(super) fn header_safe(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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
    let mail = Email {
        preheader: format!(
            "Now seen from {}",
            d.moved_to.as_deref().unwrap_or("Unknown")
        ),
        name: header_safe(&d.to_name),
        lead: vec![
            "One of your Doorman sessions is now used from another country than the one it \
             signed in from."
                .into(),
        ],
        question: Some("Was this you?".into()),
        primary: Some(Action::new(
            "This wasn't me \u{2014} end this session",
            end_url,
        )),
        after: vec!["If you travelled or use a VPN, there is nothing to do.".into()],
        footer: vec![sessions_link(sessions_url)],
        attribution: true,
        ..Email::default()
    }
    .row("Now seen from", d.moved_to.as_deref().unwrap_or("Unknown"))
    .row("Signed in from", d.location.as_str())
    .row("Since", when(d, d.at));
    device_rows(mail, d).message(from, (&d.to_email, &d.to_name), MOVED_SUBJECT, message_id)
}

/// Told to an account's admins: one of their people reported a sign-in as not theirs.
pub fn not_me_report(from: &Mailbox, d: &Details, message_id: &str) -> Result<Message, String> {
    let who = d.about.as_deref().unwrap_or("someone");
    let subject = format!("{} reported a sign-in that was not them", header_safe(who));
    let mail = Email {
        preheader: format!("{who}: sessions ended, password reset asked for"),
        name: header_safe(&d.to_name),
        lead: vec![format!(
            "{who} reported this sign-in to Doorman as not theirs. All of their sessions \
             were ended, their devices forgotten, and they were asked to set a new password."
        )],
        warning: Some(
            "Someone else may know their password: check the account's other sessions.".into(),
        ),
        attribution: true,
        ..Email::default()
    }
    .row("Person", who)
    .row("Sign-in at", when(d, d.at));
    device_rows(mail, d)
        .row("IP address", d.ip.as_str())
        .row("Location", d.location.as_str())
        .message(from, (&d.to_email, &d.to_name), &subject, message_id)
}

/// A security notice about a request: what happened, the request's details, what to do
/// if it was not the person, and the way to their sessions.
fn notice(d: &Details, what: &str, warning: &str, sessions_url: &str) -> Email {
    let mail = Email {
        preheader: what.to_string(),
        name: header_safe(&d.to_name),
        lead: vec![what.to_string()],
        after: vec!["If this was you, there is nothing to do.".into()],
        warning: Some(warning.to_string()),
        footer: vec![sessions_link(sessions_url)],
        attribution: !d.location.is_empty(),
        ..Email::default()
    }
    .row("When", when(d, d.at));
    device_rows(mail, d)
        .row("IP address", d.ip.as_str())
        .row("Location", d.location.as_str())
}

pub const PASSWORD_CHANGED_SUBJECT: &str = "Your Doorman password was changed";

/// The security notice sent whenever a password changes (it cannot be turned off).
pub fn password_changed(
    from: &Mailbox,
    d: &Details,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    notice(
        d,
        "The password of your Doorman account was just changed, and your other sessions \
         were signed out.",
        "If it was not, someone knows your password: tell your administrator at once.",
        sessions_url,
    )
    .message(
        from,
        (&d.to_email, &d.to_name),
        PASSWORD_CHANGED_SUBJECT,
        message_id,
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
    let mut mail = notice(
        d,
        "Someone entered your Doorman password correctly, then failed the second step (the \
         code of your authenticator app, or a recovery code) 3 times in a row. Your second \
         factor stopped them, but they know your password. The last attempt:",
        "If it was not you, change your password now, and tell your administrator.",
        sessions_url,
    );
    mail.primary = Some(Action::new("Change your password", profile_url));
    mail.message(
        from,
        (&d.to_email, &d.to_name),
        PASSWORD_KNOWN_SUBJECT,
        message_id,
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

/// An administrator's reset: done by someone else, so no "if this was you" and no device
/// rows (the request was the administrator's, not the person's).
pub fn second_factors_reset(
    from: &Mailbox,
    d: &Details,
    sessions_url: &str,
    message_id: &str,
) -> Result<Message, String> {
    let what = "An administrator removed every second factor and recovery code of your \
                Doorman account, and signed out all your sessions. Sign in with your \
                password and set up a new second factor.";
    Email {
        preheader: what.to_string(),
        name: header_safe(&d.to_name),
        lead: vec![what.to_string()],
        warning: Some(
            "If you did not expect this, ask your administrator why before you sign in again."
                .into(),
        ),
        footer: vec![sessions_link(sessions_url)],
        ..Email::default()
    }
    .row("When", when(d, d.at))
    .row("By", "An administrator")
    .message(
        from,
        (&d.to_email, &d.to_name),
        "Your Doorman second factors were reset",
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
    notice(
        d,
        what,
        "If it was not, tell your administrator at once.",
        sessions_url,
    )
    .message(from, (&d.to_email, &d.to_name), subject, message_id)
}
