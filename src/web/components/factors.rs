//! The pieces of setting up a second factor: the QR code, the authenticator's key and
//! its activation form, the recovery codes shown once, and an admin's reset button.

use maud::{Markup, PreEscaped, html};

use crate::paths;

/// A QR code of `text` as inline SVG, drawn here (no third-party service sees the key).
pub fn qr_svg(text: &str) -> Markup {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // The renderer's own XML declaration cannot stand inside HTML.
            let svg = match svg.find("<svg") {
                Some(i) => svg[i..].to_string(),
                None => svg,
            };
            html! { div.qr role="img" aria-label="QR code of the authenticator key" { (PreEscaped(svg)) } }
        }
        Err(_) => html! { p.muted { "The key is too long for a QR code: type it in." } },
    }
}

/// The key of a new authenticator, as a QR code and as text, and the form that
/// activates it with its first code.
pub fn totp_setup(
    key: &crate::domain::factors::manage::TotpEnrolment,
    action: &str,
    csrf: &str,
    error: Option<&str>,
) -> Markup {
    let grouped: String = key
        .secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        section.card.totp-setup aria-label="Set up an authenticator app" {
            ol {
                li { "Open your authenticator app (Google Authenticator, 1Password, Aegis, …) and scan this code, or, on this phone, open the key in the app:" }
            }
            (qr_svg(&key.otpauth_uri))
            p.totp-open { a.button.primary href=(key.otpauth_uri) { "Open in authenticator app" } }
            p { "Or type this key in: " code.key data-secret=(key.secret) { (grouped) } " "
                button.copy type="button" data-copy=(key.secret) hidden { "Copy key" } }
            script src="/assets/enhance.js" defer {}
            ol start="2" {
                li { "Enter the 6-digit code the app shows:" }
            }
            @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="id" value=(key.id);
                label { "Code" input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" required autofocus; }
                button.primary type="submit" { "Activate" }
            }
        }
    }
}

/// Recovery codes, shown once.
pub fn recovery_codes_card(codes: &[String]) -> Markup {
    html! {
        section.card.recovery-codes aria-label="Recovery codes" {
            h2 { "Your recovery codes" }
            p { "Keep these somewhere safe (a password manager, or on paper). Each one signs you in once if you lose your second factor. " strong { "They are shown only now." } }
            ul.codes {
                @for c in codes { li { code { (c) } } }
            }
            @let text = format!("Doorman recovery codes\n\n{}\n", codes.join("\n"));
            p.code-actions {
                a.button download="doorman-recovery-codes.txt"
                    href=(format!("data:text/plain;charset=utf-8,{}", crate::web::encode(&text))) { "Download as a text file" }
                " "
                button.copy type="button" data-copy=(codes.join("\n")) hidden { "Copy codes" }
            }
            script src="/assets/enhance.js" defer {}
        }
    }
}

/// The Users page's "Reset second factors" button for one user (admins).
pub fn reset_button(csrf: &str, user: crate::model::UserId, back: &str) -> Markup {
    html! {
        form method="post" action=(format!("{}/reset", paths::SECOND_FACTORS))
            data-confirm="Remove every second factor of this user and sign them out everywhere?" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="user_id" value=(user.0);
            input type="hidden" name="back" value=(back);
            button.danger type="submit" { "Reset second factors" }
        }
    }
}
