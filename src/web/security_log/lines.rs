//! The security log as sentences (SPEC §22): one line per thing that happened, told to
//! the person ("You signed in from a new device in Berlin, Germany; we emailed you") or
//! to an admin ("bob@acme.test signed in …; we emailed them"). An alert's queued and
//! sent events fold into the line of the sign-in (or move) they are about; the raw type
//! names stay in the JSON of the API.

use std::collections::HashMap;

use serde_json::Value;

use crate::domain::alerts::classify::Reasons;
use crate::domain::audit::events::Event;
use crate::model::{Device, EndReason, EventType};

/// How much a line asks for attention: drawn as its colour, and said in words too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Notice,
    Warning,
}

impl Severity {
    pub fn class(self) -> &'static str {
        match self {
            Severity::Info => "sev-info",
            Severity::Notice => "sev-notice",
            Severity::Warning => "sev-warning",
        }
    }

    /// Words for those who do not see the colour; none for the everyday lines.
    pub fn word(self) -> Option<&'static str> {
        match self {
            Severity::Info => None,
            Severity::Notice => Some("Notice"),
            Severity::Warning => Some("Warning"),
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone)]
pub struct Line {
    pub at: i64,
    pub severity: Severity,
    pub sentence: String,
    /// Device · IP · place, the parts that are known.
    pub origin: String,
    /// The user the line is about (the team log links it to their events).
    pub user: Option<(i64, Option<String>)>,
}

/// Who reads the log: the person themself, or an admin reading about others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Person,
    Admin,
}

/// What became of an alert, from its events on the page.
#[derive(Debug, Default, Clone)]
struct AlertFate {
    reasons: Option<String>,
    status: Option<String>,
    sent: bool,
}

/// The lines of a page of events (newest first): alert events about a sign-in or a move
/// on the same page fold into its line; the others stand alone, one per alert.
pub fn lines(items: &[Event], reader: Reader) -> Vec<Line> {
    let mut fates: HashMap<i64, AlertFate> = HashMap::new();
    for e in items {
        if let Some(id) = alert_id(e) {
            let f = fates.entry(id).or_default();
            let d = details(e);
            match e.kind.as_str() {
                "alert.queued" | "alert.suppressed" => {
                    f.reasons = text(&d, "reasons");
                    f.status = text(&d, "status");
                }
                "alert.sent" => f.sent = true,
                _ => {}
            }
        }
    }
    // The alert about each session, when its sign-in or move is on the page.
    let mut by_session: HashMap<&str, i64> = HashMap::new();
    for e in items {
        if let (Some(id), Some(sid)) = (alert_id(e), e.session_id.as_deref())
            && matches!(e.kind.as_str(), "alert.queued" | "alert.suppressed")
        {
            by_session.insert(sid, id);
        }
    }
    let folds_into = |e: &Event, id: i64| -> bool {
        let Some(sid) = e.session_id.as_deref() else {
            return false;
        };
        let moved = fates
            .get(&id)
            .and_then(|f| f.reasons.as_deref())
            .is_some_and(|r| Reasons::parse(r).moved);
        let host = if moved {
            "session.moved"
        } else {
            "session.created"
        };
        items
            .iter()
            .any(|h| h.kind == host && h.session_id.as_deref() == Some(sid))
    };
    let mut shown_alerts: Vec<i64> = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for e in items {
        let kind = e.kind.as_str();
        let fate = match kind {
            "session.created" | "session.moved" => e
                .session_id
                .as_deref()
                .and_then(|sid| by_session.get(sid))
                .filter(|id| {
                    let moved = fates
                        .get(id)
                        .and_then(|f| f.reasons.as_deref())
                        .is_some_and(|r| Reasons::parse(r).moved);
                    moved == (kind == "session.moved")
                })
                .and_then(|id| fates.get(id)),
            "alert.queued" | "alert.sent" | "alert.suppressed" => {
                let Some(id) = alert_id(e) else { continue };
                if folds_into(e, id) || shown_alerts.contains(&id) {
                    continue;
                }
                shown_alerts.push(id);
                fates.get(&id)
            }
            _ => None,
        };
        out.push(line(e, reader, fate));
    }
    out
}

fn line(e: &Event, reader: Reader, fate: Option<&AlertFate>) -> Line {
    let (sentence, severity) = sentence(e, reader, fate);
    Line {
        at: e.at,
        severity,
        sentence,
        origin: origin(e),
        user: e.user.as_ref().map(|(id, email)| (id.0, email.clone())),
    }
}

fn details(e: &Event) -> serde_json::Map<String, Value> {
    match serde_json::from_str::<Value>(&e.details) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

fn text(d: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match d.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(d: &serde_json::Map<String, Value>, key: &str) -> i64 {
    d.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn alert_id(e: &Event) -> Option<i64> {
    e.kind
        .starts_with("alert.")
        .then(|| details(e).get("alert_id").and_then(Value::as_i64))
        .flatten()
}

/// "Chrome 120 · macOS 10.15 · Desktop" without the parts nobody knows; None when
/// nothing is known (an event without a request, such as a timeout).
pub fn device_text(d: &Device) -> Option<String> {
    let known = |s: &str| !s.is_empty() && s != "Unknown" && s != "UNKNOWN";
    if !known(&d.browser) && !known(&d.os) && !known(&d.category) {
        return None;
    }
    let mut parts = Vec::new();
    if known(&d.browser) {
        let major = d.browser_version.split('.').next().unwrap_or("");
        parts.push(
            format!("{} {}", d.browser, if known(major) { major } else { "" })
                .trim_end()
                .to_string(),
        );
    }
    if known(&d.os) {
        let v: Vec<&str> = d.os_version.split(['.', '_']).take(2).collect();
        parts.push(crate::ua::os_for_people(&d.os, &v.join(".")));
    }
    if known(&d.category) {
        parts.push(d.category.clone());
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

fn origin(e: &Event) -> String {
    let mut parts = Vec::new();
    if let Some(d) = device_text(&e.device) {
        parts.push(d);
    }
    if !e.ip.is_empty() {
        parts.push(e.ip.clone());
    }
    let place = e.location.label();
    if !e.ip.is_empty() && place != "Unknown" {
        parts.push(place);
    }
    parts.join(" · ")
}

/// The words for the people in a sentence, as the reader knows them.
struct Words {
    /// The person the event is about: "You" / "bob@acme.test".
    subject: String,
    /// "your" / "bob@acme.test's".
    their: String,
    /// "you" / "them".
    them: &'static str,
    /// Who did it, when that was someone else than the person ("ada@acme.test").
    other_actor: Option<String>,
    /// Who did it: "You" / "ada@acme.test" / "Someone".
    actor: String,
}

fn words(e: &Event, reader: Reader) -> Words {
    let email_of = |(id, email): &(crate::model::UserId, Option<String>)| {
        email
            .clone()
            .unwrap_or_else(|| format!("a deleted user (#{id})"))
    };
    let (subject, their, them) = match (reader, &e.user) {
        (Reader::Person, _) => ("You".to_string(), "your".to_string(), "you"),
        (Reader::Admin, Some(u)) => {
            let who = email_of(u);
            (who.clone(), format!("{who}'s"), "them")
        }
        (Reader::Admin, None) => ("Someone".to_string(), "their".to_string(), "them"),
    };
    let same = matches!((&e.actor, &e.user), (Some((a, _)), Some((u, _))) if a == u);
    let other_actor = match &e.actor {
        Some(a) if !same => Some(email_of(a)),
        _ => None,
    };
    let actor = match (&e.actor, &other_actor) {
        (_, Some(o)) => o.clone(),
        (Some(_), None) => subject.clone(),
        (None, None) => "An operator".to_string(),
    };
    Words {
        subject,
        their,
        them,
        other_actor,
        actor,
    }
}

/// "in Berlin, Germany" (with a trusted network's name), or nothing when unknown.
fn place(e: &Event) -> String {
    let label = e.location.label();
    if label == "Unknown" {
        String::new()
    } else {
        format!(" in {label}")
    }
}

/// "; we emailed you" and the like, with the reasons of the alert.
fn alert_clause(fate: &AlertFate, them: &str) -> String {
    if fate.sent {
        return format!("; we emailed {them}");
    }
    match fate.status.as_deref() {
        Some("suppressed") => "; the alert email was held back (at most 5 are sent an hour)".into(),
        Some("skipped") => "; no alert email was sent (email is off)".into(),
        _ => format!("; an alert email to {them} is on its way"),
    }
}

/// What a sign-in alert's reasons say, after "from": "a new device and a new country".
fn reasons_phrase(fate: Option<&AlertFate>) -> Option<String> {
    let r = Reasons::parse(fate?.reasons.as_deref()?);
    let new_things = Reasons {
        travel: false,
        moved: false,
        ..r
    };
    let mut phrase = new_things.phrase();
    if r.travel {
        if phrase.is_empty() {
            phrase = "an impossible journey away".into();
        } else {
            phrase.push_str(", an impossible journey away,");
        }
    }
    (!phrase.is_empty()).then_some(phrase)
}

fn sentence(e: &Event, reader: Reader, fate: Option<&AlertFate>) -> (String, Severity) {
    let w = words(e, reader);
    let d = details(e);
    let Some(kind) = EventType::parse(&e.kind) else {
        return ("Something happened.".into(), Severity::Info);
    };
    use EventType as T;
    use Severity::{Info, Notice, Warning};
    let s = &w.subject;
    match kind {
        T::SessionCreated => {
            let app = match text(&d, "application").as_deref() {
                None | Some("web") => String::new(),
                Some("api") => " to the API".into(),
                Some(a) => format!(" to {a}"),
            };
            let from = match reasons_phrase(fate) {
                Some(r) => format!(" from {r}"),
                None => String::new(),
            };
            let told = fate.map(|f| alert_clause(f, w.them)).unwrap_or_default();
            let sev = if fate.is_some() { Notice } else { Info };
            (format!("{s} signed in{app}{from}{}{told}.", place(e)), sev)
        }
        T::SessionEnded => ended(e, &w, &d),
        T::SessionMoved => {
            let to = text(&d, "to").unwrap_or_else(|| "another country".into());
            let from = text(&d, "from").unwrap_or_else(|| "elsewhere".into());
            let told = fate.map(|f| alert_clause(f, w.them)).unwrap_or_default();
            (
                format!(
                    "{} session signed in from {from} is now used from {to}{told}.",
                    capital(&w.their)
                ),
                Warning,
            )
        }
        T::LoginFailed => {
            let why = match text(&d, "reason").as_deref() {
                Some("wrong_password") => "a wrong password".to_string(),
                Some("unknown_email") => "an email nobody has".to_string(),
                Some("user_disabled") => "the account is disabled".to_string(),
                Some("rate_limited") => "too many attempts".to_string(),
                Some("wrong_code") => "a wrong code".to_string(),
                Some("passkey_refused") => "a passkey that was refused".to_string(),
                Some("wrong_current_password") => {
                    "a wrong current password, on a password change".to_string()
                }
                Some(other) => other.replace('_', " "),
                None => "an unknown reason".to_string(),
            };
            let whom = match (reader, &e.user) {
                (Reader::Person, _) => "to your account".to_string(),
                (Reader::Admin, Some(_)) => format!("as {s}"),
                (Reader::Admin, None) => match text(&d, "email") {
                    Some(email) => format!("as {email} (no such user)"),
                    None => "with an unknown email".into(),
                },
            };
            (
                format!("A sign-in {whom}{} was refused: {why}.", place(e)),
                Warning,
            )
        }
        T::AlertQueued | T::AlertSent | T::AlertSuppressed => {
            let reasons = reasons_phrase(fate)
                .map(|r| format!(" from {r}"))
                .unwrap_or_default();
            let told = fate.map(|f| alert_clause(f, w.them)).unwrap_or_default();
            let told = told.trim_start_matches("; ");
            let moved = fate
                .and_then(|f| f.reasons.as_deref())
                .is_some_and(|r| Reasons::parse(r).moved);
            let about = if moved {
                format!("{} session moving to another country", w.their)
            } else {
                format!("a sign-in{reasons}{}", place(e))
            };
            (format!("A sign-in alert about {about}: {told}."), Notice)
        }
        T::AlertConfirmed => (
            format!(
                "{s} confirmed that a sign-in alert was {}.",
                them_self(reader)
            ),
            Info,
        ),
        T::AlertReported => (
            format!(
                "{s} reported a sign-in as not {}: {} ended, {} devices forgotten and a \
                 password-reset link sent.",
                them_self(reader),
                count(number(&d, "sessions_ended"), "session"),
                w.their
            ),
            Warning,
        ),
        T::UserInvited | T::UserCreated if e.actor.is_none() => {
            let what = match (reader, kind) {
                (Reader::Person, T::UserInvited) => "You were invited".to_string(),
                (Reader::Person, _) => "Your account was created".to_string(),
                (Reader::Admin, T::UserInvited) => format!("{s} was invited"),
                (Reader::Admin, _) => format!("{s} was created"),
            };
            (format!("{what}{}.", role(&d, reader)), Info)
        }
        T::UserInvited => (
            format!(
                "{} invited {}{}.",
                w.actor,
                object(reader, s),
                role(&d, reader)
            ),
            Info,
        ),
        T::UserCreated => (
            format!(
                "{} created {}{}.",
                w.actor,
                if reader == Reader::Person {
                    "your account".to_string()
                } else {
                    format!("the user {s}")
                },
                role(&d, reader)
            ),
            Info,
        ),
        T::UserInvitationAccepted => (format!("{s} accepted the invitation."), Info),
        T::UserDisabled => (
            format!("{} disabled {} account.", w.actor, w.their),
            Warning,
        ),
        T::UserEnabled => (format!("{} enabled {} account.", w.actor, w.their), Info),
        T::UserDeleted => {
            let id = number(&d, "deleted_user_id");
            (
                format!(
                    "{} deleted the user #{id} and everything about them.",
                    w.actor
                ),
                Warning,
            )
        }
        T::UserRoleChanged => (
            format!(
                "{} changed {} role from {} to {}.",
                w.actor,
                w.their,
                text(&d, "from").unwrap_or_default(),
                text(&d, "to").unwrap_or_default()
            ),
            Notice,
        ),
        T::UserPasswordChanged => (
            format!(
                "{} changed {} password{}.",
                w.actor,
                w.their,
                ended_count(number(&d, "sessions_ended"), "other ")
            ),
            Notice,
        ),
        T::UserPasswordReset => (
            format!(
                "{} password was reset with an emailed link{}.",
                capital(&w.their),
                ended_count(number(&d, "sessions_ended"), "")
            ),
            Notice,
        ),
        T::UserEmailChanged => (
            format!("{} changed {} email address.", w.actor, w.their),
            Notice,
        ),
        T::UserSecondFactorAdded => (
            format!("{} added {} as a second factor.", w.actor, factor(&d)),
            Info,
        ),
        T::UserSecondFactorRemoved => (
            format!("{} removed {} (a second factor).", w.actor, factor(&d)),
            Notice,
        ),
        T::UserSecondFactorsReset => (
            format!(
                "{} reset {} second factors: {} removed{}.",
                w.actor,
                w.their,
                count(number(&d, "factors_removed"), "factor"),
                ended_count(number(&d, "sessions_ended"), "")
            ),
            Warning,
        ),
        T::AccessDenied => {
            let app = text(&d, "application").unwrap_or_else(|| "an application".into());
            let why = text(&d, "reason")
                .map(|r| format!(": {}", r.replace('_', " ")))
                .unwrap_or_default();
            (
                format!("{app} refused {}{why}.", object(reader, s)),
                Warning,
            )
        }
        T::AppSignedIn => {
            let app = text(&d, "application").unwrap_or_else(|| "an app".into());
            (format!("{s} signed in to {app}."), Severity::Info)
        }
        T::AppSignedOut => {
            let app = text(&d, "application").unwrap_or_else(|| "an app".into());
            (
                format!("{app} was told that {s} signed out."),
                Severity::Info,
            )
        }
        T::AppLogoutFailed => {
            let app = text(&d, "application").unwrap_or_else(|| "An app".into());
            (
                format!("{app} could not be told that {s} signed out; Doorman keeps trying."),
                Severity::Warning,
            )
        }
        T::AppTokenRefused => {
            let app = text(&d, "application")
                .or_else(|| text(&d, "client_id"))
                .unwrap_or_else(|| "An app".into());
            let why = text(&d, "reason")
                .map(|r| format!(": {}", r.replace('_', " ")))
                .unwrap_or_default();
            (
                format!("Doorman refused a token of {app}{why}."),
                Severity::Warning,
            )
        }
        T::PolicyChanged => {
            let on = d.get("on").and_then(Value::as_bool).unwrap_or(false);
            let whom = match text(&d, "scope").as_deref() {
                Some("user") => object(reader, s),
                _ => "everyone in the account".to_string(),
            };
            let verb = match (whom == "you", on) {
                (true, true) => "now need",
                (true, false) => "no longer need",
                (false, true) => "now requires",
                (false, false) => "no longer requires",
            };
            (
                format!(
                    "{} changed the policy: {whom} {verb} a second factor.",
                    w.actor
                ),
                Notice,
            )
        }
    }
}

fn ended(e: &Event, w: &Words, d: &serde_json::Map<String, Value>) -> (String, Severity) {
    let reason = text(d, "reason").and_then(|r| EndReason::parse(&r));
    let s = &w.subject;
    let their = &w.their;
    let line = match reason {
        Some(EndReason::Logout) => (format!("{s} signed out."), Severity::Info),
        Some(EndReason::Terminated) => match &w.other_actor {
            Some(a) => (
                format!("{a} ended a session of {}.", object_of(w)),
                Severity::Notice,
            ),
            None => (
                format!("{s} ended one of {their} sessions."),
                Severity::Info,
            ),
        },
        Some(EndReason::EndedOtherSessions) => (
            format!("{s} ended one of {their} other sessions."),
            Severity::Info,
        ),
        Some(EndReason::TerminatedByAdmin) => {
            let who = w
                .other_actor
                .as_ref()
                .map(|a| format!("An administrator ({a})"))
                .unwrap_or_else(|| "An administrator".into());
            (
                format!("{who} ended a session of {}.", object_of(w)),
                Severity::Notice,
            )
        }
        Some(EndReason::IdleTimeout) => (
            format!("{} session ended after a time without use.", capital(their)),
            Severity::Info,
        ),
        Some(EndReason::MaxLifetime) => (
            format!(
                "{} session reached its longest lifetime and ended.",
                capital(their)
            ),
            Severity::Info,
        ),
        Some(EndReason::UserDisabled) => (
            format!(
                "{} session ended: the account was disabled.",
                capital(their)
            ),
            Severity::Notice,
        ),
        Some(EndReason::PasswordChanged) => (
            format!(
                "{} session ended: the password was changed.",
                capital(their)
            ),
            Severity::Info,
        ),
        Some(EndReason::PasswordReset) => (
            format!("{} session ended: the password was reset.", capital(their)),
            Severity::Info,
        ),
        None => (format!("{} session ended.", capital(their)), Severity::Info),
    };
    let (sentence, sev) = with_place(e, line);
    match text(d, "note") {
        Some(n) => (
            format!("{sentence} Reason given: \u{201c}{n}\u{201d}."),
            sev,
        ),
        None => (sentence, sev),
    }
}

/// Adds where the session was to a line about ending it.
fn with_place(e: &Event, (sentence, sev): (String, Severity)) -> (String, Severity) {
    let label = e.location.label();
    if label == "Unknown" {
        return (sentence, sev);
    }
    match sentence.strip_suffix('.') {
        Some(s) => (format!("{s} (the session from {label})."), sev),
        None => (sentence, sev),
    }
}

/// "you" / "bob@acme.test" as the object of a verb.
fn object(reader: Reader, subject: &str) -> String {
    match reader {
        Reader::Person => "you".into(),
        Reader::Admin => subject.to_string(),
    }
}

fn object_of(w: &Words) -> String {
    if w.subject == "You" {
        "yours".into()
    } else {
        w.subject.clone()
    }
}

fn them_self(reader: Reader) -> &'static str {
    match reader {
        Reader::Person => "you",
        Reader::Admin => "them",
    }
}

fn role(d: &serde_json::Map<String, Value>, reader: Reader) -> String {
    match (text(d, "role"), reader) {
        (Some(r), Reader::Person) => format!(" (your role: {r})"),
        (Some(r), Reader::Admin) => format!(" as {r}"),
        (None, _) => String::new(),
    }
}

fn factor(d: &serde_json::Map<String, Value>) -> String {
    match (text(d, "kind").as_deref(), text(d, "name")) {
        (Some("passkey"), Some(name)) => format!("the passkey \u{201c}{name}\u{201d}"),
        (Some("passkey"), None) => "a passkey".into(),
        (Some("totp"), _) => "an authenticator app".into(),
        _ => "a second factor".into(),
    }
}

fn count(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// ", and 2 other sessions were ended" (nothing when none were).
fn ended_count(n: i64, other: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!("; 1 {other}session was ended"),
        n => format!("; {n} {other}sessions were ended"),
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Location, UserId};

    fn event(kind: &str, details: &str) -> Event {
        Event {
            id: 1,
            at: 1_700_000_000,
            kind: kind.into(),
            actor: Some((UserId(7), Some("bob@acme.test".into()))),
            user: Some((UserId(7), Some("bob@acme.test".into()))),
            account: None,
            session_id: Some("s1".into()),
            ip: "203.0.113.9".into(),
            location: Location {
                city: Some("Berlin".into()),
                country: Some("Germany".into()),
                ..Location::default()
            },
            device: Device::default(),
            details: details.into(),
        }
    }

    #[test]
    fn an_alert_folds_into_its_sign_in() {
        let items = vec![
            event("alert.sent", r#"{"alert_id":3}"#),
            event(
                "alert.queued",
                r#"{"alert_id":3,"reasons":"new_device","status":"pending"}"#,
            ),
            event("session.created", r#"{"application":"web"}"#),
        ];
        let mine = lines(&items, Reader::Person);
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(
            mine[0].sentence,
            "You signed in from a new device in Berlin, Germany; we emailed you."
        );
        let team = lines(&items, Reader::Admin);
        assert_eq!(
            team[0].sentence,
            "bob@acme.test signed in from a new device in Berlin, Germany; we emailed them."
        );
    }

    #[test]
    fn an_alert_alone_is_one_line() {
        let items = vec![
            event("alert.sent", r#"{"alert_id":3}"#),
            event(
                "alert.queued",
                r#"{"alert_id":3,"reasons":"new_device,travel","status":"pending"}"#,
            ),
        ];
        let l = lines(&items, Reader::Person);
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].sentence.contains("we emailed you"),
            "{}",
            l[0].sentence
        );
        assert!(!l[0].sentence.contains("travel"), "{}", l[0].sentence);
    }

    #[test]
    fn no_themself_and_no_empty_device() {
        let mut e = event("session.ended", r#"{"reason":"logout","by":7}"#);
        let l = lines(std::slice::from_ref(&e), Reader::Admin);
        assert_eq!(
            l[0].sentence,
            "bob@acme.test signed out (the session from Berlin, Germany)."
        );
        assert_eq!(l[0].origin, "203.0.113.9 · Berlin, Germany");
        e.ip.clear();
        e.location = Location::default();
        assert_eq!(lines(&[e], Reader::Person)[0].origin, "");
    }
}
