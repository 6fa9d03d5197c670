//! The one clock and every time format, for pages, the API, emails and the CLI alike.
//! Times are Unix seconds (UTC) everywhere inside Doorman.

use time::OffsetDateTime;

/// Now, in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A stored time as a date-time (the API's RFC 3339 values); out-of-range values are
/// the epoch rather than a panic.
pub fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// "2026-11-23 08:15:00 UTC".
pub fn utc(t: i64) -> String {
    let dt = at(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// "20261123T081500Z": ISO 8601 basic format, for file names (backups, kept copies).
pub fn compact_utc(t: i64) -> String {
    let dt = at(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// The Unix time of the start (00:00:00 UTC) of a day given as `YYYY-MM-DD` (an HTML
/// date field); None for anything else.
pub fn parse_day(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s.trim(), format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// The Unix time of a [`compact_utc`] string; None for anything else.
pub fn parse_compact_utc(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = time::PrimitiveDateTime::parse(s, &format).ok()?;
    Some(dt.assume_utc().unix_timestamp())
}

/// "just now", "5 minutes ago", "1 hour ago", "3 days ago".
pub fn relative(now: i64, t: i64) -> String {
    if now - t < 60 {
        return "just now".into();
    }
    format!("{} ago", span(now - t))
}

/// A length of time in words, in its largest whole unit: "5 minutes", "2 hours",
/// "3 days" ("less than a minute" below one).
pub fn span(secs: i64) -> String {
    let d = secs.max(0);
    let (n, unit) = match d {
        0..=59 => return "less than a minute".into(),
        60..=3599 => (d / 60, "minute"),
        3600..=86_399 => (d / 3600, "hour"),
        _ => (d / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(relative(1000, 1000), "just now");
        assert_eq!(relative(1000 + 300, 1000), "5 minutes ago");
        assert_eq!(relative(3600, 0), "1 hour ago");
        assert_eq!(relative(3 * 86_400, 0), "3 days ago");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(i64::MAX), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(compact_utc(1_795_421_700), "20261123T081500Z");
        assert_eq!(parse_compact_utc("20261123T081500Z"), Some(1_795_421_700));
        assert_eq!(parse_compact_utc("20261123T0815Z"), None);
        assert_eq!(parse_compact_utc("x20261123T081500Z"), None);
    }
}
