//! An address as it is matched against the configured applications (SPEC §19): the
//! host and a path normalised the way the servers behind a proxy read it, so that no
//! spelling of a protected path falls outside its application's rules. Used by forward
//! auth and by the sign-in page's return address.

/// The longest address matched.
const MAX_URL: usize = 4096;

/// The request a proxy asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No original request was given.
    Unknown,
    /// The original request, normalised.
    At(Address),
    /// Given, but not safely matchable: it cannot be parsed, its path hides a separator
    /// (`%2F`, `%5C`, `%00`) or climbs above the root, or forwarding headers came from a
    /// peer that is not a trusted proxy.
    Ambiguous,
}

impl Target {
    /// The original URL as given (parsed), for the sign-in page to return to.
    pub fn url(&self) -> Option<&url::Url> {
        match self {
            Target::At(a) => Some(&a.url),
            _ => None,
        }
    }
}

/// An address as it is matched against applications: host and path only (the scheme
/// and the port do not make another application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The URL as given, parsed (the sign-in page returns here).
    pub url: url::Url,
    /// Lower-cased, without a trailing dot.
    pub host: String,
    /// Normalised: unreserved characters decoded, dot segments and repeated slashes
    /// collapsed, other escapes upper-cased, `;` parameters kept in their segment.
    pub path: String,
}

/// Parses and normalises an absolute http(s) URL (see [`Address`]); `None` when it
/// cannot be matched safely.
pub fn normalise(raw: &str) -> Option<Address> {
    if raw.len() > MAX_URL || raw.bytes().any(|b| b <= b' ' || b == b'\\' || b >= 0x7f) {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    if host.is_empty() || host.ends_with('.') {
        return None;
    }
    // The path as sent, not as the URL parser resolved it: a server behind the proxy
    // collapses `//` before it resolves `..`, and so must the match.
    let after_scheme = &raw[raw.find("://")? + 3..];
    let path_and_more = after_scheme
        .find(['/', '?', '#'])
        .map_or("", |i| &after_scheme[i..]);
    let path = path_and_more
        .find(['?', '#'])
        .map_or(path_and_more, |i| &path_and_more[..i]);
    let path = normalise_path(path)?;
    Some(Address { url, host, path })
}

/// Normalises a raw absolute path (see [`Address`]); `None` when a segment hides a
/// separator or a NUL, an escape is malformed, or `..` climbs above the root.
fn normalise_path(raw: &str) -> Option<String> {
    let mut segments: Vec<String> = Vec::new();
    for segment in raw.split('/') {
        let segment = decode_unreserved(segment)?;
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(raw.len().max(1));
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (raw.ends_with('/') && raw.len() > 1) {
        out.push('/');
    }
    Some(out)
}

/// Decodes percent-encoded unreserved characters (`%61` → `a`), upper-cases the other
/// escapes, and refuses an encoded `/`, `\` or NUL and a malformed escape.
fn decode_unreserved(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(char::from(bytes[i]));
            i += 1;
            continue;
        }
        let hex = segment.get(i + 1..i + 3)?;
        let value = u8::from_str_radix(hex, 16).ok()?;
        match value {
            b'/' | b'\\' | 0 => return None,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(value));
            }
            _ => {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
        }
        i += 3;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(url: &str) -> Option<(String, String)> {
        normalise(url).map(|a| (a.host, a.path))
    }

    #[test]
    fn addresses_are_normalised_as_servers_behind_read_them() {
        for (raw, host, p) in [
            (
                "https://Grafana.Example.TEST./x",
                "grafana.example.test",
                "/x",
            ),
            (
                "http://grafana.example.test:8443",
                "grafana.example.test",
                "/",
            ),
            ("https://h.test/%61dmin/x", "h.test", "/admin/x"),
            ("https://h.test//admin/x", "h.test", "/admin/x"),
            ("https://h.test/a//../admin", "h.test", "/admin"),
            ("https://h.test/x/%2e%2E/admin/", "h.test", "/admin/"),
            ("https://h.test/admin;x/s", "h.test", "/admin;x/s"),
            ("https://h.test/a%3bb?q=/admin#/admin", "h.test", "/a%3Bb"),
            ("https://h.test?x", "h.test", "/"),
        ] {
            assert_eq!(path(raw), Some((host.into(), p.into())), "{raw}");
        }
    }

    #[test]
    fn what_cannot_be_matched_safely_is_refused() {
        for raw in [
            "https://h.test/api%2Fadmin/users",
            "https://h.test/api%2fadmin",
            "https://h.test/admin%5Cx",
            "https://h.test/admin%00",
            "https://h.test/admin\\x",
            "https://h.test/%zz",
            "https://h.test/%4",
            "https://h.test/../admin",
            "https://user@h.test/",
            "ftp://h.test/",
            "not a url",
            "https://h.test/a b",
            "https://./x",
        ] {
            assert_eq!(path(raw), None, "{raw}");
        }
    }
}
