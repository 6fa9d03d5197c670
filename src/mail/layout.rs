//! The one template every email is drawn with (SPEC §22): a branded, single-column,
//! responsive HTML part (viewport meta, large full-width buttons, readable on a phone)
//! and its plain-text twin, both from the same [`Email`].

use lettre::Message;
use lettre::message::Mailbox;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::templates::message_to;

/// The attribution the DB-IP licence asks for wherever its locations are shown.
const ATTRIBUTION_TEXT: &str = "IP geolocation by DB-IP (https://db-ip.com)";

/// A link the email asks the reader to follow.
#[derive(Debug, Clone)]
pub struct Action {
    pub label: String,
    pub url: String,
}

impl Action {
    pub fn new(label: impl Into<String>, url: impl Into<String>) -> Self {
        Action {
            label: label.into(),
            url: url.into(),
        }
    }
}

/// What an email says, in the order it says it.
#[derive(Debug, Clone, Default)]
pub struct Email {
    /// The line a mail app shows beside the subject (hidden in the body).
    pub preheader: String,
    /// Whom it greets ("Hello Ann,").
    pub name: String,
    /// The paragraphs before the details.
    pub lead: Vec<String>,
    /// A question above the actions ("Was this you?").
    pub question: Option<String>,
    /// The one action the email is about, drawn as the large button.
    pub primary: Option<Action>,
    /// A quieter second choice, drawn as an outlined button.
    pub secondary: Option<Action>,
    /// The facts ("When", "Device", …), before the actions.
    pub rows: Vec<(String, String)>,
    /// The paragraphs after the details.
    pub after: Vec<String>,
    /// Emphasised after-paragraph (what to do if it was not the reader).
    pub warning: Option<String>,
    /// Small links at the foot ("Your sessions").
    pub footer: Vec<Action>,
    /// Locations from DB-IP are shown: say so.
    pub attribution: bool,
}

impl Email {
    pub fn row(mut self, label: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.rows.push((label.to_string(), value));
        }
        self
    }

    /// The plain-text part: the same content, links written out.
    pub fn text(&self) -> String {
        let mut t = format!("Hello {},\n\n", self.name);
        for p in &self.lead {
            t.push_str(&format!("{p}\n\n"));
        }
        for (k, v) in &self.rows {
            t.push_str(&format!("{k}: {v}\n"));
        }
        if !self.rows.is_empty() {
            t.push('\n');
        }
        if let Some(q) = &self.question {
            t.push_str(&format!("{q}\n\n"));
        }
        for a in [&self.primary, &self.secondary].into_iter().flatten() {
            t.push_str(&format!("{}:\n{}\n\n", a.label, a.url));
        }
        for p in self.after.iter().chain(&self.warning) {
            t.push_str(&format!("{p}\n\n"));
        }
        for a in &self.footer {
            t.push_str(&format!("{}:\n{}\n\n", a.label, a.url));
        }
        if self.attribution {
            t.push_str(&format!("{ATTRIBUTION_TEXT}\n"));
        }
        t
    }

    /// The HTML part: one column at most 560 px wide, inline styles (mail apps drop
    /// most stylesheets), buttons at least 48 px tall spanning the column.
    pub fn html(&self, subject: &str) -> String {
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light";
                    title { (subject) }
                    style { (PreEscaped(STYLE)) }
                }
                body style=(BODY) {
                    div style="display:none;max-height:0;overflow:hidden;opacity:0" { (self.preheader) }
                    table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f6f7f9" {
                        tr { td align="center" style="padding:16px 8px" {
                            table.sheet role="presentation" width="100%" cellpadding="0" cellspacing="0" style=(SHEET) {
                                tr { td style="padding:18px 24px;border-bottom:1px solid #dde1e8" {
                                    span style="font-size:18px;font-weight:700;color:#1d2330" {
                                        span style="color:#2457c5" { "\u{25C6} " } "Doorman"
                                    }
                                } }
                                tr { td.body style="padding:24px" { (self.content()) } }
                            }
                            (self.foot())
                        } }
                    }
                }
            }
        };
        page.into_string()
    }

    fn content(&self) -> Markup {
        html! {
            p style=(P) { "Hello " (self.name) "," }
            @for p in &self.lead { p style=(P) { (p) } }
            @if !self.rows.is_empty() {
                table role="presentation" width="100%" cellpadding="0" cellspacing="0" style=(ROWS) {
                    @for (k, v) in &self.rows {
                        tr {
                            td style="padding:8px 12px 8px 0;color:#5b6475;font-size:14px;vertical-align:top;width:38%" { (k) }
                            td style="padding:8px 0;font-size:15px;font-weight:600;vertical-align:top;word-break:break-word" { (v) }
                        }
                    }
                }
            }
            @if let Some(q) = &self.question {
                p style="margin:20px 0 10px;font-size:17px;font-weight:700" { (q) }
            }
            @if let Some(a) = &self.primary { (button(a, true)) }
            @if let Some(a) = &self.secondary { (button(a, false)) }
            @for p in &self.after { p style=(P) { (p) } }
            @if let Some(w) = &self.warning { p style=(WARN) { (w) } }
        }
    }

    fn foot(&self) -> Markup {
        html! {
            table.sheet role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px" {
                tr { td style="padding:16px 24px;font-size:13px;line-height:1.5;color:#5b6475;text-align:center" {
                    @for a in &self.footer {
                        p style="margin:0 0 8px" { a href=(a.url) style="color:#2457c5" { (a.label) } }
                    }
                    p style="margin:0 0 8px" { "Doorman, the sign-in of your team's applications." }
                    @if self.attribution {
                        p style="margin:0" { a href="https://db-ip.com" { "IP geolocation by DB-IP" } }
                    }
                } }
            }
        }
    }

    /// The message: both parts, to `to_name <to_email>`.
    pub fn message(
        &self,
        from: &Mailbox,
        (to_email, to_name): (&str, &str),
        subject: &str,
        message_id: &str,
    ) -> Result<Message, String> {
        message_to(
            from,
            to_email,
            to_name,
            subject,
            message_id,
            self.text(),
            self.html(subject),
        )
    }
}

fn button(a: &Action, primary: bool) -> Markup {
    let style = if primary { PRIMARY } else { SECONDARY };
    html! {
        table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="margin:0 0 12px" {
            tr { td {
                a.button href=(a.url) style=(style) { (a.label) }
            } }
        }
    }
}

const BODY: &str = "margin:0;padding:0;background:#f6f7f9;color:#1d2330;\
    font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;\
    -webkit-text-size-adjust:100%";
const SHEET: &str =
    "max-width:560px;background:#ffffff;border:1px solid #dde1e8;border-radius:10px";
const P: &str = "margin:0 0 14px;font-size:16px;line-height:1.5";
const WARN: &str = "margin:0 0 14px;font-size:16px;line-height:1.5;font-weight:600;\
    padding:12px 14px;background:#fef3f2;border-left:4px solid #b42318;border-radius:4px";
const ROWS: &str = "margin:18px 0;border-top:1px solid #dde1e8;border-bottom:1px solid #dde1e8";
const PRIMARY: &str = "display:block;padding:14px 18px;background:#2457c5;border:2px solid #2457c5;\
    border-radius:8px;color:#ffffff;font-size:16px;font-weight:700;line-height:1.3;\
    text-align:center;text-decoration:none";
const SECONDARY: &str = "display:block;padding:12px 18px;background:#ffffff;border:2px solid #c7d0de;\
    border-radius:8px;color:#1d2330;font-size:16px;font-weight:600;line-height:1.3;\
    text-align:center;text-decoration:none";
/// For the mail apps that read a stylesheet: a little more room on a wide screen.
const STYLE: &str = "@media (min-width:600px){.body{padding:28px 32px !important}}\
    a.button:hover{opacity:.92}";
