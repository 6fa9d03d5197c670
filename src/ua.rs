//! User-Agent → device, with woothee.

use std::borrow::Cow;

use crate::model::Device;

/// Longest User-Agent kept. Real ones stay far below; anything longer is cut so a hostile
/// header cannot bloat rows or slow parsing.
pub const MAX_USER_AGENT: usize = 512;

/// Turns raw header bytes into the text we store: lossy UTF-8, control characters
/// dropped, at most [`MAX_USER_AGENT`] bytes (cut on a character boundary).
pub fn clean_user_agent(raw: Option<&[u8]>) -> String {
    let text: Cow<'_, str> = String::from_utf8_lossy(raw.unwrap_or_default());
    let mut out = String::with_capacity(text.len().min(MAX_USER_AGENT));
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_USER_AGENT {
            break;
        }
        out.push(c);
    }
    out
}

pub fn parse(user_agent: &str) -> Device {
    let Some(r) = woothee::parser::Parser::new().parse(user_agent) else {
        return unknown();
    };
    let category = match r.category {
        "pc" => "Desktop",
        "smartphone" => "Smartphone",
        "mobilephone" => "Mobile phone",
        "appliance" => "Appliance",
        "crawler" => "Crawler",
        _ => "Unknown",
    };
    Device {
        category: category.into(),
        browser: known(r.name),
        browser_version: known(r.version),
        os: os_name(r.os),
        os_version: os_version(r.os, &r.os_version),
    }
}

fn unknown() -> Device {
    Device {
        category: "Unknown".into(),
        browser: "Unknown".into(),
        browser_version: String::new(),
        os: "Unknown".into(),
        os_version: String::new(),
    }
}

fn known(value: &str) -> String {
    if value == "UNKNOWN" {
        String::new()
    } else {
        value.to_string()
    }
}

/// woothee's names are from another era; show the ones people know today.
fn os_name(os: &str) -> String {
    match os {
        "Mac OSX" => "macOS".into(),
        "Windows UNKNOWN Ver" => "Windows".into(),
        "UNKNOWN" => "Unknown".into(),
        other => other.to_string(),
    }
}

/// woothee names desktop Windows by its release ("Windows 10") and gives the kernel
/// token ("NT 10.0") as the version, which would only repeat the release in the label.
fn os_version(os: &str, version: &str) -> String {
    if os.starts_with("Windows ") && os != "Windows Phone OS" {
        String::new()
    } else {
        known(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrome_on_mac() {
        let d = parse(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        );
        assert_eq!(d.label(), "Chrome 120 · macOS 10.15 · Desktop");
    }

    #[test]
    fn iphone_safari() {
        let d = parse(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(d.category, "Smartphone");
        assert_eq!(d.browser, "Safari");
        assert_eq!(d.os, "iPhone");
    }

    #[test]
    fn windows_release_is_not_repeated() {
        let d = parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        );
        assert_eq!(d.label(), "Firefox 121 · Windows 10 · Desktop");
        let d = parse("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)");
        assert_eq!(d.os, "Windows 7");
        assert_eq!(d.os_version, "");
    }

    #[test]
    fn garbage_is_unknown() {
        let d = parse("curl-ish \u{1F600} nonsense");
        assert_eq!(d.label(), "Unknown");
        assert_eq!(parse("").category, "Unknown");
    }

    #[test]
    fn cleaning_bounds_and_strips() {
        let long = vec![b'a'; 10_000];
        assert_eq!(clean_user_agent(Some(&long)).len(), MAX_USER_AGENT);
        assert_eq!(clean_user_agent(Some(b"a\xffb\n")), "a\u{FFFD}b");
        let multibyte = "é".repeat(400);
        let cleaned = clean_user_agent(Some(multibyte.as_bytes()));
        assert!(cleaned.len() <= MAX_USER_AGENT && cleaned.chars().all(|c| c == 'é'));
    }
}
